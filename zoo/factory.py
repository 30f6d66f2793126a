"""The front door: ``create_model`` builds a registered model (optionally with its shipped weights) and
``create_model_from_checkpoint`` rebuilds the model a zoo checkpoint was saved from.

It sits above the registry, the weights readers and the shipped weights, so none of those imports another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from zoo.errors import ZooError
from zoo.pretrained import load_pretrained
from zoo.registry import get_spec
from zoo.weights import checkpoint_architecture, load_weights, read_checkpoint


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build a registered model with its paper-default architecture. ``None``-valued overrides are dropped, so an
    unset CLI/config value never replaces a model's own default (as timm does). ``pretrained=True`` loads the
    shipped reference weights (``zoo.pretrained``; offline, part of the package); baselines have none to load."""
    spec = get_spec(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    try:
        model = spec.build(**kwargs)
    except TypeError as exc:
        raise ZooError(f"model {name!r}: bad argument ({exc})") from None
    model.zoo_spec = spec  # lets load_weights/evaluate find the spec from the module
    model.zoo_args = kwargs  # saved in zoo checkpoints, so a checkpoint rebuilds its own architecture
    if pretrained and not spec.is_baseline:
        load_pretrained(model, name)
    return model


def create_model_from_checkpoint(path: str | Path, **overrides: Any) -> nn.Module:
    """The model a zoo checkpoint was saved from, with its weights: architecture from the file's registry name and
    model arguments (``overrides`` replace single arguments). An official layout names no model: ``ZooError`` saying
    to use ``create_model(name)`` + ``load_weights``."""
    source = read_checkpoint(path)
    found = checkpoint_architecture(source, str(path))
    if found is None:
        raise ZooError(
            f"{path}: not a zoo checkpoint (an official layout names no model); use "
            "zoo.create_model(name) and zoo.load_weights(model, path)"
        )
    name, args = found
    model = create_model(name, **{**args, **overrides})
    return load_weights(model, source, origin=str(path))
