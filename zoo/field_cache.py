"""A disk cache of measured receptive fields, so ``zoo predict`` probes a model's weights once, not on every call.

The receptive field (``zoo.tiling.receptive_field``) is a property of an architecture and its weights, not of the
photo, and measuring it costs a forward and backward pass on a ~600 px input (SingleHDR: about 12 s and 4 GB, more
than its tiled 1900×1060 pass needs otherwise). The cache keys each result by a digest of everything it depends on:
the module tree (``repr``: layer types, channels, kernels), the state dict (names, dtypes, shapes, values), the probe's
own settings, and torch's major.minor version. Any change to the weights gives a new key; nothing is ever stale.

Location: ``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/hdr-zoo``, else ``~/.cache/hdr-zoo``; one JSON file, written
atomically (temporary file + rename), so concurrent processes never see half a file. The cache is an optimisation
only: an unreadable or corrupt file is ignored (logged) and an unwritable folder leaves results uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

FILE_NAME = "receptive_fields.json"


def cache_dir() -> Path:
    """The cache folder (it need not exist yet)."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hdr-zoo"


def model_digest(model: nn.Module, settings: str) -> str:
    """sha256 of the module tree, the state dict and ``settings`` (the probe's parameters), plus torch major.minor."""
    digest = hashlib.sha256()
    major_minor = ".".join(torch.__version__.split(".")[:2])
    digest.update(f"{type(model).__qualname__}\n{model!r}\n{settings}\ntorch {major_minor}\n".encode())
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)  # memory format must not change the key
        digest.update(f"{name} {flat.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            entries = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable receptive-field cache (%s); measuring again", path, exc)
        return {}
    return entries if isinstance(entries, dict) else {}


def lookup(key: str) -> dict[str, Any] | None:
    """The cached entry for ``key``, or None."""
    entry = _read(cache_dir() / FILE_NAME).get(key)
    return entry if isinstance(entry, dict) else None


def store(key: str, entry: dict[str, Any]) -> None:
    """Add ``entry`` under ``key`` (read-modify-write, then an atomic rename; a failure is logged, not raised)."""
    folder = cache_dir()
    path = folder / FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = {**_read(path), key: entry}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".receptive_fields.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entries, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.info("receptive field not cached (%s: %s)", folder, exc)
