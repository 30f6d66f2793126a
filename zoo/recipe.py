"""The training types: what a model's recipe is made of, and what its losses see each step.

A ``Recipe`` is data that the one training loop (``zoo.train.fit``) runs: stages in order, each with objectives (one
Adam optimiser and the loss it minimises). A loss is a plain function of a ``StepContext``: the training modules, the
batch, and ``shared``, the recipe's own typed record of tensors that one objective of a step computes for a later one
(two-stage: stage I's output, read by the discriminator and stage II). Objectives declare the fields they write and
read, and a ``Stage`` refuses an order in which a field is read before an earlier objective of the stage writes it, so
the order of objectives is a checked contract rather than an unwritten one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from torch import nn

Shared = TypeVar("Shared")


@dataclass
class StepContext(Generic[Shared]):
    """What the objectives of one training step see: ``nets`` (``nets["model"]`` plus the recipe's auxiliary modules,
    e.g. ``nets["discriminator"]``), this rank's ``batch``, and ``shared``, a fresh ``Recipe.shared()`` record per
    step (None for recipes without one)."""

    nets: nn.ModuleDict
    batch: dict[str, torch.Tensor]
    shared: Shared


# A loss returns the scalar to minimise and a dict of floats to log.
LossFn = Callable[[StepContext[Any]], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class Objective:
    """One optimiser (Adam) and the loss it minimises.

    ``params`` are dotted module paths inside ``nets`` (e.g. ``"model.stage1"``, ``"discriminator"``); the optimiser
    owns exactly their parameters. Objectives of a stage run in order every step: zero grad, loss, backward, step.
    ``writes``/``reads``: fields of the recipe's ``shared`` record this loss sets / uses.
    """

    name: str
    params: tuple[str, ...]
    loss: LossFn
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()


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

    def __post_init__(self) -> None:
        written: set[str] = set()
        for objective in self.objectives:
            unwritten = sorted(set(objective.reads) - written)
            if unwritten:
                raise ValueError(
                    f"stage {self.name!r}: objective {objective.name!r} reads {', '.join(unwritten)} "
                    "before an earlier objective of the stage writes it"
                )
            written |= set(objective.writes)


@dataclass(frozen=True)
class Recipe:
    """A model's training recipe: stages in order, training-only modules (e.g. a GAN discriminator), the sample keys
    its losses need beyond ``ldr``/``target`` (e.g. SingleHDR's intermediate targets), and ``shared``, the dataclass
    of tensors the objectives of one step pass on (None: nothing passed on). ``official_steps`` and
    ``official_batch_size`` are the published schedule's length, used by ``train=paper`` (steps/batch null)."""

    stages: tuple[Stage, ...]
    aux_modules: Mapping[str, Callable[[], nn.Module]] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    shared: Callable[[], Any] | None = None
    notes: str = ""
    official_steps: int | None = None
    official_batch_size: int | None = None

    def __post_init__(self) -> None:
        fields = {f.name for f in dataclasses.fields(self.shared)} if self.shared is not None else set()
        for stage in self.stages:
            for objective in stage.objectives:
                unknown = sorted(set(objective.reads + objective.writes) - fields)
                if unknown:
                    raise ValueError(
                        f"objective {objective.name!r}: {', '.join(unknown)} is not a field of the "
                        f"recipe's shared record"
                    )

    def step_context(self, nets: nn.ModuleDict, batch: dict[str, torch.Tensor]) -> StepContext[Any]:
        """The context of one step: a fresh shared record, so nothing leaks from one step into the next."""
        return StepContext(nets, batch, self.shared() if self.shared is not None else None)
