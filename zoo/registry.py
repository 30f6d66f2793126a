"""The model registry: one ``ModelSpec`` per published method, one front door (``create_model``).

A spec is data: how to build the network, what its output means (``output_domain``), which input sizes it needs,
where it comes from, and how it is trained (``recipe``). The training loop in ``zoo.train`` runs any recipe; staged
recipes (SingleHDR) and multi-optimiser recipes (two-stage + GAN) are data, not subclasses.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError

# A loss takes the training modules (``nets["model"]`` plus the recipe's auxiliary modules), a batch of samples and a
# per-step cache shared by the objectives of one step (so later objectives reuse earlier outputs), and returns the
# scalar to minimise and a dict of floats to log.
LossFn = Callable[[nn.ModuleDict, dict[str, torch.Tensor], dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class Objective:
    """One optimiser (Adam) and the loss it minimises.

    ``params`` are dotted module paths inside ``nets`` (e.g. ``"model.stage1"``, ``"discriminator"``); the optimiser
    owns exactly their parameters. Objectives of a stage run in order every step: zero grad, loss, backward, step.
    """

    name: str
    params: tuple[str, ...]
    loss: LossFn
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Stage:
    """A phase of training. ``fraction`` is its share of the run's step budget; learning rates are multiplied by
    ``gamma`` at each of ``milestones`` (fractions of the stage, MultiStepLR). ``train_modules`` lists module paths
    put in train mode (others stay in eval mode, e.g. frozen sub-nets); empty means all."""

    name: str
    objectives: tuple[Objective, ...]
    fraction: float = 1.0
    milestones: tuple[float, ...] = ()
    gamma: float = 0.5
    train_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """A model's training recipe: stages in order, training-only modules (e.g. a GAN discriminator), and the sample
    keys its losses need beyond ``ldr``/``target`` (e.g. SingleHDR's intermediate targets). ``official_steps`` and
    ``official_batch_size`` are the published schedule's length, used by ``train=paper`` (steps/batch null)."""

    stages: tuple[Stage, ...]
    aux_modules: Mapping[str, Callable[[], nn.Module]] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    notes: str = ""
    official_steps: int | None = None
    official_batch_size: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one published model.

    ``output_domain``: ``"ntire_gamma"`` (NTIRE 2021 gamma-2.24 encoded relative HDR) or ``"linear_relative"``.
    ``size_multiple``: what the network itself needs; ``model(x)`` pads and crops so callers can pass any size.
    ``recipe(**options)`` builds the training recipe (options select ablations, e.g. ``loss="l1"``).
    ``convert_official(obj)`` turns an official checkpoint object into a zoo state dict, or returns None when the
    object is not in an official layout it recognises.
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


def _ensure_loaded() -> None:
    import zoo.models  # noqa: F401  (explicit imports register the models)


def list_models(include_baselines: bool = True) -> list[str]:
    """Registered model names, sorted; ``include_baselines=False`` keeps the learned models only."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if include_baselines or not s.is_baseline)


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ZooError(f"unknown model {name!r}{hint}; known models: {', '.join(known)}") from None


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
        from zoo.pretrained import load_pretrained  # function-level: zoo.weights imports this module

        load_pretrained(model, name)
    return model


def spec_of(model: nn.Module) -> ModelSpec:
    spec = getattr(model, "zoo_spec", None)
    if spec is None:
        raise ZooError("model was not created with zoo.create_model (it has no zoo_spec attribute)")
    return spec
