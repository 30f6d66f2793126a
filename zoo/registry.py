"""The model registry: one ``ModelSpec`` per published method, looked up by name.

A spec is data: how to build the network, what its output means (``output_domain``), which input sizes it needs,
where it comes from, and how it is trained (``recipe``, a ``zoo.recipe.Recipe``). Models register themselves where
they are defined (``zoo/models/<name>/__init__.py``); ``zoo/__init__`` imports ``zoo.models`` once, so this module
imports no model. The front door that builds models is ``zoo.factory.create_model``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.recipe import Recipe


@dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one published model.

    ``output_domain``: ``"ntire_gamma"`` (NTIRE 2021 gamma-2.24 encoded relative HDR) or ``"linear_relative"``.
    ``size_multiple``: what the network itself needs; ``model(x)`` pads and crops so callers can pass any size.
    ``recipe(**options)`` builds the training recipe (options select ablations, e.g. ``loss="l1"``).
    ``convert_official(obj)`` turns an official checkpoint object into a zoo state dict, or returns None when the
    object is not in an official layout it recognises.
    ``float32_modules``: names of submodules that stay in float32 when inference runs in reduced precision
    (``zoo.optimize_for_inference(precision="bfloat16")``): the numerically sensitive parts, found by
    benchmarks/precision.py (SingleHDR's Linearization-Net: in bf16 it costs 2.3 dB PU21-PSNR, in float32 nothing).
    """

    name: str
    build: Callable[..., nn.Module]
    output_domain: str
    size_multiple: int
    paper: str
    code_licence: str
    weights_licence: str
    recipe: Callable[..., Recipe]
    convert_official: Callable[[Any], dict[str, torch.Tensor] | None] | None = None
    has_global_branch: bool = False
    float32_modules: tuple[str, ...] = ()
    is_baseline: bool = False
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
DOMAINS = ("ntire_gamma", "linear_relative")


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    if spec.output_domain not in DOMAINS:
        raise ValueError(f"model {spec.name!r}: output_domain must be one of {DOMAINS}, got {spec.output_domain!r}")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(include_baselines: bool = True) -> list[str]:
    """Registered model names, sorted; ``include_baselines=False`` keeps the learned models only."""
    return sorted(n for n, s in _REGISTRY.items() if include_baselines or not s.is_baseline)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ZooError(f"unknown model {name!r}{hint}; known models: {', '.join(known)}") from None


def spec_of(model: nn.Module) -> ModelSpec:
    spec = getattr(model, "zoo_spec", None)
    if spec is None:
        raise ZooError("model was not created with zoo.create_model (it has no zoo_spec attribute)")
    return spec
