"""The one training loop. It runs any ``Recipe``: stages in order, each with one or more objectives (optimisers).

The loop is deterministic given (seed, step): batches are drawn by step index (``StepBatchSampler``), so a run
resumed from a checkpoint at step k sees exactly the batches an uninterrupted run sees after step k.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from zoo.errors import ZooError
from zoo.registry import Recipe, Stage

log = logging.getLogger(__name__)


class StepBatchSampler(Sampler[list[int]]):
    """Batch indices for steps ``start..stop-1``: a pure function of (seed, step), so resuming needs only the step."""

    def __init__(self, length: int, batch_size: int, seed: int, start: int, stop: int):
        self.length, self.batch_size, self.seed, self.start, self.stop = length, batch_size, seed, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            rng = np.random.default_rng([self.seed, step])
            yield rng.integers(0, self.length, size=self.batch_size).tolist()

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def batch_stream(dataset: Dataset, batch_size: int, seed: int, start: int, stop: int, num_workers: int = 0):
    sampler = StepBatchSampler(len(dataset), batch_size, seed, start, stop)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, persistent_workers=False)


def stage_bounds(stages: tuple[Stage, ...], total_steps: int) -> list[tuple[int, int]]:
    """[start, stop) step ranges of each stage, proportional to ``Stage.fraction``; every stage gets at least one step
    when the budget allows (smoke runs must exercise every stage)."""
    fractions = np.array([s.fraction for s in stages], dtype=float)
    counts = np.floor(fractions / fractions.sum() * total_steps).astype(int)
    if total_steps >= len(stages):
        counts = np.maximum(counts, 1)
    while counts.sum() > total_steps:
        counts[np.argmax(counts)] -= 1
    counts[np.argmax(fractions)] += total_steps - counts.sum()
    stops = np.cumsum(counts)
    return [(int(stop - n), int(stop)) for n, stop in zip(counts, stops)]


def _params(nets: nn.ModuleDict, paths: tuple[str, ...]) -> list[nn.Parameter]:
    params: list[nn.Parameter] = []
    for path in paths:
        params += [p for p in nets.get_submodule(path).parameters() if p.requires_grad]
    return params


def _set_train_mode(nets: nn.ModuleDict, stage: Stage) -> None:
    if not stage.train_modules:
        nets.train()
        return
    nets.eval()
    for path in stage.train_modules:
        nets.get_submodule(path).train()


@dataclass
class StageOptim:
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]


def build_stage_optim(nets: nn.ModuleDict, stage: Stage, n_steps: int, lr_scale: float) -> StageOptim:
    optimizers, schedulers = [], []
    milestones = sorted({max(1, round(m * n_steps)) for m in stage.milestones})
    for obj in stage.objectives:
        opt = torch.optim.Adam(_params(nets, obj.params), lr=obj.lr * lr_scale, betas=obj.betas,
                               weight_decay=obj.weight_decay)  # fmt: skip
        optimizers.append(opt)
        schedulers.append(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=stage.gamma))
    return StageOptim(optimizers, schedulers)


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FitState:
    """Where a run is: the next step to run and the per-step log so far."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


def _describe_nonfinite(loss: torch.Tensor, logs: dict[str, float]) -> str:
    bad = [f"{k}={v}" for k, v in logs.items() if not math.isfinite(v)]
    return ", ".join(bad) if bad else f"total={float(loss)}"


def fit(
    nets: nn.ModuleDict,
    recipe: Recipe,
    dataset: Dataset | None,
    *,
    total_steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    lr_scale: float = 1.0,
    log_every: int = 25,
    num_workers: int = 0,
    progress: bool = False,
    nan_policy: str = "stop",
    state: FitState | None = None,
    optim_state: dict[str, Any] | None = None,
    checkpoint_every: int = 0,
    save_checkpoint: Callable[[FitState, str, StageOptim], None] | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> FitState:
    """Train ``nets`` (``nets["model"]`` + the recipe's aux modules) for ``total_steps`` steps of ``recipe``.

    ``state``/``optim_state`` resume a run: the loop restarts at ``state.step`` inside its stage, with that stage's
    optimiser and scheduler state. ``save_checkpoint(state, stage_name, optim)`` is called every ``checkpoint_every`` steps.
    """
    if nan_policy not in ("stop", "skip"):
        raise ZooError(f"train.nan_policy: expected 'stop' or 'skip', got {nan_policy!r}")
    state = state or FitState()
    if not recipe.stages or total_steps <= 0:
        return state
    if dataset is None:
        raise ValueError("a recipe with stages needs a training dataset")
    bounds = stage_bounds(recipe.stages, total_steps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=state.step, desc="train", dynamic_ncols=True, leave=False)
    for stage, (start, stop) in zip(recipe.stages, bounds):
        if state.step >= stop or start == stop:
            continue
        optim = build_stage_optim(nets, stage, stop - start, lr_scale)
        if optim_state is not None and optim_state.get("stage") == stage.name:
            for opt, saved in zip(optim.optimizers, optim_state["optimizers"]):
                opt.load_state_dict(saved)
            for sched, saved in zip(optim.schedulers, optim_state["schedulers"]):
                sched.load_state_dict(saved)
        _set_train_mode(nets, stage)
        begin = max(start, state.step)
        tic = time.perf_counter()
        for batch in batch_stream(dataset, batch_size, seed, begin, stop, num_workers):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            cache: dict[str, Any] = {}
            logs: dict[str, float] = {}
            skipped = False
            for obj, opt in zip(stage.objectives, optim.optimizers):
                opt.zero_grad(set_to_none=True)
                loss, obj_logs = obj.loss(nets, batch, cache)
                obj_logs = {f"{obj.name}/{k}": v for k, v in obj_logs.items()}
                if not torch.isfinite(loss):
                    where = f"step {state.step} (stage {stage.name!r}, objective {obj.name!r})"
                    if nan_policy == "stop":
                        raise ZooError(f"non-finite loss at {where}: {_describe_nonfinite(loss, obj_logs)}")
                    log.warning("skipping %s: non-finite loss %s", where, _describe_nonfinite(loss, obj_logs))
                    skipped = True
                    break
                loss.backward()
                opt.step()
                logs.update(obj_logs)
                logs[f"{obj.name}/loss"] = float(loss.detach())
            for opt in optim.optimizers:
                opt.zero_grad(set_to_none=True)
            for sched in optim.schedulers:
                sched.step()
            state.step += 1
            if bar is not None:
                bar.update(1)
            if not skipped and (state.step % max(1, log_every) == 0 or state.step == stop):
                entry = {"step": state.step, "stage": stage.name, **logs}
                entry["lr"] = optim.optimizers[0].param_groups[0]["lr"]
                state.history.append(entry)
                if on_log is not None:
                    on_log(entry)
                if bar is not None:
                    bar.set_postfix_str(f"{stage.name} " + " ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in logs.items() if k.endswith("/loss")))
            if save_checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0 and state.step < total_steps:
                state.train_seconds += time.perf_counter() - tic
                tic = time.perf_counter()
                save_checkpoint(state, stage.name, optim)
        state.train_seconds += time.perf_counter() - tic
    if bar is not None:
        bar.close()
    nets.eval()
    return state
