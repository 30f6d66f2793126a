"""A disk cache of what ``zoo.tiling`` measures on a model, so ``zoo predict`` probes a model's weights once, not on
every call: its receptive field and its activation bytes per pixel.

Both are properties of an architecture, its code and its weights, not of the photo. Measuring the receptive field
costs a forward and backward pass on a ~600 px input (SingleHDR: about 12 s and 4 GB, more than its tiled 1900×1060
pass needs otherwise); measuring the bytes per pixel costs 2–3 s, most of it torch loading its dispatch-mode machinery
(``torch._dynamo``) on first use. The cache keys each result by a digest of everything it depends on: the module tree
(``repr``: layer types, channels, kernels), the source files of the module classes outside torch (the forward code),
the state dict (names, dtypes, shapes, values), the probe's own settings, and torch's major.minor version. Any change
to the weights or the model's code gives a new key.

Location: ``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/hdr-zoo``, else ``~/.cache/hdr-zoo``; one JSON file, written
atomically (temporary file + rename), so concurrent processes never see half a file. The cache is an optimisation
only: an unreadable or corrupt file is ignored (logged) and an unwritable folder leaves results uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

FILE_NAME = "probes.json"


def cache_dir() -> Path:
    """The cache folder (it need not exist yet)."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hdr-zoo"


def _source_files(model: nn.Module) -> list[str]:
    """The source files defining the module classes of ``model`` and their bases, outside torch (torch is keyed by
    its version)."""
    names = {cls.__module__ for module in model.modules() for cls in type(module).__mro__}
    files = {getattr(sys.modules.get(name), "__file__", None) for name in names if name.split(".")[0] != "torch"}
    return sorted(f for f in files if f)


def model_digest(model: nn.Module, settings: str) -> str:
    """sha256 of the module tree, its classes' source files, the state dict and ``settings`` (the probe's
    parameters), plus torch major.minor."""
    digest = hashlib.sha256()
    major_minor = ".".join(torch.__version__.split(".")[:2])
    digest.update(f"{type(model).__qualname__}\n{model!r}\n{settings}\ntorch {major_minor}\n".encode())
    for path in _source_files(model):
        digest.update(Path(path).read_bytes())
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
        log.warning("%s: unreadable probe cache (%s); measuring again", path, exc)
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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probes.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entries, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.info("probe result not cached (%s: %s)", folder, exc)


def measured(
    key: str, measure: Callable[[], dict[str, Any]], valid: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The entry cached under ``key`` when ``valid`` accepts it, else ``measure()``, stored under ``key``."""
    entry = lookup(key)
    if entry is None or not valid(entry):
        entry = measure()
        store(key, entry)
    return entry
