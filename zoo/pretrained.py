"""The shipped reference weights: ``zoo/pretrained/<model>.pt`` with its model card ``<model>.md`` and the card's data
``<model>.json`` (training budget, data and split, hardware, wall time, metrics with CIs, sha256, licence).

They are made by ``scripts/reference.py`` (``make reference``): trained by ``zoo run`` on the mixed synthetic +
real-scene data, evaluated by ``zoo eval``, and stored as a zoo checkpoint whose ``state_dict`` may be float16 (the
card states the measured output difference to float32). Loading is offline: the files are part of the package.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from zoo.errors import ZooError
from zoo.weights import load_weights


def folder() -> Path:
    return Path(str(resources.files("zoo") / "pretrained"))


def weights_path(name: str) -> Path:
    return folder() / f"{name}.pt"


def available() -> list[str]:
    """Models with shipped weights."""
    return sorted(p.stem for p in folder().glob("*.pt"))


def card(name: str) -> dict[str, Any]:
    """The model card's data (``<name>.json``), or {} when the model has no shipped weights."""
    path = folder() / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require(name: str) -> Path:
    """The shipped weights file of ``name``, or a ``ZooError`` saying which models have some."""
    path = weights_path(name)
    if not path.is_file():
        have = ", ".join(available()) or "none"
        raise ZooError(
            f"model {name!r} has no shipped pretrained weights (models with weights: {have}); "
            f"pass a weights file instead"
        )
    return path


def load_pretrained(model: nn.Module, name: str) -> nn.Module:
    """Load the shipped weights of ``name`` into ``model`` (float16 storage is cast to the model's dtype)."""
    return load_weights(model, require(name))
