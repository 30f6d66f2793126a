"""The one training loop. It runs any ``Recipe``: stages in order, each with one or more objectives (optimisers).

The loop is deterministic given (seed, step): batches are drawn by step index (``StepBatchSampler``), so a run
resumed from a checkpoint at step k sees exactly the batches an uninterrupted run sees after step k. A checkpoint
(``checkpoint_payload``) holds everything else the next step depends on: the weights of every module, the optimiser
and scheduler state of the current stage, the RNG states of torch/numpy/python (of every rank), the step, the training
curve so far and the training time. Resuming from it gives bit-identical weights on CPU with the same thread count
(tests/test_resume.py); on GPUs, up to the non-determinism of the CUDA kernels themselves.

Pre-emption: while ``fit`` runs, SIGTERM/SIGUSR1/SIGUSR2 only set a flag (``PreemptionGuard``); at the end of the
current step the loop writes a checkpoint and leaves with ``Preempted`` (exit status ``PREEMPTED_EXIT_CODE``), so the
requeued job resumes from that step.

Guards: a non-finite loss or gradient stops the run with an error naming the step, stage, objective and loss term
(``nan_policy="stop"``) or drops the step (``"skip"``: the objective and the later ones of that step are not applied,
buffers such as BatchNorm statistics are put back, objectives before it in the step stay applied; at most
``max_skips_in_a_row`` in a row); a checkpoint whose weights or buffers are not finite is refused, so it never replaces
the last good one.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from zoo import distributed
from zoo.errors import ZooError
from zoo.recipe import Recipe, Stage
from zoo.sample_noise import SAMPLE_KEY

log = logging.getLogger(__name__)

RESUME_FORMAT = "hdr-zoo-resume/1"
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, run the same command again to go on
PREEMPT_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")  # SLURM pre-emption/time limit (--signal), submitit's USR2


class StepBatchSampler(Sampler[list[int]]):
    """Batch indices for steps ``start..stop-1``: a pure function of (seed, step), so resuming needs only the step.

    Under ``torchrun`` each of the ``world_size`` ranks yields its own contiguous slice of the step's global batch.
    """

    def __init__(
        self, length: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world_size: int = 1
    ):
        self.length, self.batch_size, self.seed, self.start, self.stop = length, batch_size, seed, start, stop
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        per_rank = self.batch_size // self.world_size
        for step in range(self.start, self.stop):
            rng = np.random.default_rng([self.seed, step])
            indices = rng.integers(0, self.length, size=self.batch_size).tolist()
            yield indices[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """``StepBatchSampler``'s batches as (epoch, index) pairs. The pool of ``length`` samples is drawn afresh every
    epoch; the epoch of a step is the number of samples drawn before it divided by ``length`` (so it, too, is a pure
    function of the step, and a resumed run sees the same samples)."""

    def __init__(self, steps: StepBatchSampler):
        self.steps = steps

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step, indices in zip(range(self.steps.start, self.steps.stop), self.steps):
            epoch = step * self.steps.batch_size // self.steps.length
            yield [(epoch, index) for index in indices]

    def __len__(self) -> int:
        return len(self.steps)


class EpochedDataset(Dataset):
    """Item ``(epoch, index)`` is item ``index`` of ``dataset`` after ``dataset.set_epoch(epoch)``: set on every access,
    so each DataLoader worker process draws exactly the sample the main process would. A dict item also carries its
    identity, ``SAMPLE_KEY`` = (seed, epoch, index): a recipe that needs randomness per sample (a GAN's noisy labels)
    seeds it from there, so the draw does not depend on which process of a data-parallel run holds the sample."""

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        item = self.dataset[index]
        if isinstance(item, dict):
            item = {**item, SAMPLE_KEY: torch.tensor([self.seed, epoch, index], dtype=torch.int64)}
        return item


def batch_stream(dataset: Dataset, batch_size: int, seed: int, start: int, stop: int, num_workers: int = 0):
    """Batches of steps ``start..stop-1`` (this rank's share under torchrun), each epoch of ``len(dataset)`` samples
    drawn afresh (``EpochBatchSampler``). The loader gets its own generator so starting a stream never draws from the
    global torch RNG (which a resumed run restores exactly)."""
    steps = StepBatchSampler(len(dataset), batch_size, seed, start, stop, distributed.rank(), distributed.world_size())
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        EpochedDataset(dataset, seed),
        batch_sampler=EpochBatchSampler(steps),
        num_workers=num_workers,
        persistent_workers=False,
        generator=generator,
    )


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


def set_train_mode(nets: nn.ModuleDict, stage: Stage) -> None:
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
        opt = torch.optim.Adam(
            _params(nets, obj.params), lr=obj.lr * lr_scale, betas=obj.betas, weight_decay=obj.weight_decay
        )
        optimizers.append(opt)
        schedulers.append(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=stage.gamma))
    return StageOptim(optimizers, schedulers)


# ----------------------------------------------------------------------------------------------------------------------
# RNG state, as plain tensors/ints so a checkpoint loads with torch.load(weights_only=True)


def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class FitState:
    """Where a run is: the next step to run (= steps done), the per-step log so far, the training time, and the
    1-based steps dropped by ``nan_policy="skip"``."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    skipped_steps: list[int] = field(default_factory=list)


def first_nonfinite(module: nn.Module) -> str | None:
    """Name of the first parameter or floating buffer holding NaN/inf, or None when all are finite."""
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def checkpoint_payload(
    nets: nn.ModuleDict, state: FitState, stage_index: int, stage: Stage, optim: StageOptim, total_steps: int
) -> dict[str, Any]:
    """Everything the next step depends on. Collective under torchrun (gathers every rank's RNG state)."""
    return {
        "format": RESUME_FORMAT,
        "step": state.step,
        "total_steps": total_steps,
        "history": state.history,
        "train_seconds": state.train_seconds,
        "skipped_steps": state.skipped_steps,
        "nets": nets.state_dict(),
        "optim": {
            "stage_index": stage_index,
            "stage": stage.name,
            "optimizers": [o.state_dict() for o in optim.optimizers],
            "schedulers": [s.state_dict() for s in optim.schedulers],
        },
        "rng": distributed.gather_objects(rng_state()),
    }


def write_resume_state(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: the previous checkpoint stays until this one is complete (``zoo.weights.save_torch``)."""
    from zoo.weights import save_torch

    return save_torch(path, payload)


def read_resume_state(path: str | Path, total_steps: int) -> dict[str, Any]:
    """Load a checkpoint written by ``write_resume_state`` (tensors on the CPU; no unpickling of Python objects)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(f"{path}: unreadable resume checkpoint ({type(exc).__name__}); delete it to start the run over")
    if not isinstance(payload, dict) or payload.get("format") != RESUME_FORMAT:
        raise ZooError(f"{path}: not a zoo resume checkpoint (expected format {RESUME_FORMAT!r})")
    if payload["total_steps"] != total_steps:
        raise ZooError(f"{path}: checkpoint of a {payload['total_steps']}-step run, but train.steps={total_steps}")
    return payload


def _restore(nets: nn.ModuleDict, resume: dict[str, Any]) -> FitState:
    nets.load_state_dict(resume["nets"])
    rng = resume["rng"]
    set_rng_state(rng[distributed.rank() % len(rng)])
    return FitState(
        step=resume["step"],
        history=list(resume["history"]),
        train_seconds=resume["train_seconds"],
        skipped_steps=list(resume["skipped_steps"]),
    )


# ----------------------------------------------------------------------------------------------------------------------
# Pre-emption


class Preempted(SystemExit):
    """The run stopped on a pre-emption signal after writing its checkpoint; run the same command again to resume.

    A ``SystemExit`` rather than an ``Exception``: nothing on the way out mistakes it for a failed run (no "failed"
    row is written, a sweep does not go on to its next job), and the process exits with ``PREEMPTED_EXIT_CODE``.
    """

    def __init__(self, message: str):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PreemptionGuard:
    """While active (``with`` around the loop), SIGTERM/SIGUSR1/SIGUSR2 only record that the job must stop; the loop
    asks ``requested()`` at the end of each step, writes its checkpoint and calls ``stop``.

    Signal handlers can only be installed from the main thread; elsewhere the guard is inert.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread():
            for name in PREEMPT_SIGNALS:
                if hasattr(signal, name):
                    sig = getattr(signal, name)
                    self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _record(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            log.warning("received %s: stopping at the end of this step", signal.Signals(signum).name)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def requested(self) -> bool:
        """True on every rank once any rank was signalled (ranks must stop at the same step)."""
        return distributed.agree(self.signum is not None)

    def stop(self, step: int, saved: bool) -> NoReturn:
        """Leave after the checkpoint: put the previous handlers back and hand the signal to the one it had (e.g.
        submitit's, which requeues the job and exits); if that returns, or there was none, raise ``Preempted``."""
        name = signal.Signals(self.signum).name if self.signum else "a signal to another rank"
        where = "checkpoint written" if saved else "no checkpoint (none requested)"
        message = f"pre-empted by {name} after step {step}; {where}; run the same command again to resume"
        log.warning(message)
        previous = self._previous.get(self.signum) if self.signum else None
        self._restore()
        self._previous = {}
        if callable(previous):
            previous(self.signum, None)
        raise Preempted(message)


# ----------------------------------------------------------------------------------------------------------------------
# The loop


def _describe_nonfinite(loss: torch.Tensor, logs: dict[str, float]) -> str:
    bad = [f"{k}={v}" for k, v in logs.items() if not math.isfinite(v)]
    return ", ".join(bad) if bad else f"total={float(loss)}"


def _snapshot_buffers(nets: nn.ModuleDict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(b, b.detach().clone()) for b in nets.buffers() if b.is_floating_point()]


@torch.no_grad()
def _grad_norm(params: list[nn.Parameter]) -> float:
    """The L2 norm of all gradients together: NaN or inf when some gradient is (or so large that the norm overflows:
    diverged either way). One fused pass over them, both the finiteness check and the logged figure."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0


@torch.no_grad()
def _restore_buffers(snapshot: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for buffer, saved in snapshot:
        buffer.copy_(saved)


def train_step(
    nets: nn.ModuleDict,
    recipe: Recipe,
    stage: Stage,
    optim: StageOptim,
    batch: dict[str, torch.Tensor],
    where: str = "",
) -> tuple[dict[str, float], str | None]:
    """One step of every objective of ``stage``, in order: zero grad, loss, backward, gradient average over ranks,
    optimiser step. Returns (logs, problem): ``problem`` describes a non-finite loss or gradient (agreed over all
    ranks), in which case this objective and the later ones of the step were not applied."""
    context = recipe.step_context(nets, batch)
    logs: dict[str, float] = {}
    for obj, opt in zip(stage.objectives, optim.optimizers):
        opt.zero_grad(set_to_none=True)
        loss, obj_logs = obj.loss(context)
        obj_logs = {f"{obj.name}/{k}": float(v) for k, v in obj_logs.items()}
        if distributed.agree(not bool(torch.isfinite(loss))):
            return logs, f"non-finite loss at {where}, objective {obj.name!r}: {_describe_nonfinite(loss, obj_logs)}"
        loss.backward()
        params = [p for group in opt.param_groups for p in group["params"]]
        distributed.average_gradients(params)
        # the norm of the (rank-averaged) gradient about to be applied: a data-parallel run at the same global batch
        # must log the single-process value (Adam's scale invariance would hide summed gradients in the losses)
        grad_norm = _grad_norm(params)
        if distributed.agree(not math.isfinite(grad_norm)):
            return logs, f"non-finite gradient at {where}, objective {obj.name!r} (loss {float(loss.detach()):.4g})"
        opt.step()
        logs.update(obj_logs)
        logs[f"{obj.name}/loss"] = float(loss.detach())
        logs[f"{obj.name}/grad_norm"] = grad_norm
    return logs, None


@dataclass(frozen=True)
class FitOptions:
    """How ``fit`` runs, beside what it trains (see ``fit``)."""

    total_steps: int
    batch_size: int
    seed: int
    device: torch.device
    lr_scale: float = 1.0
    log_every: int = 25
    num_workers: int = 0
    progress: bool = False
    nan_policy: str = "stop"
    max_skips_in_a_row: int = 20
    checkpoint_every: int = 0


def fit(
    nets: nn.ModuleDict,
    recipe: Recipe,
    dataset: Dataset | None,
    *,
    resume: dict[str, Any] | None = None,
    save_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    **options: Any,
) -> FitState:
    """Train ``nets`` (``nets["model"]`` + the recipe's aux modules) for ``total_steps`` steps of ``recipe``.

    ``options`` are the fields of ``FitOptions``. ``batch_size`` is the global batch (under torchrun each rank takes
    ``batch_size / world_size`` of it). ``resume`` (a ``read_resume_state`` payload) restores the weights, RNG
    states, step, stage, optimisers and schedulers, and the loop goes on at ``resume["step"]``.
    ``save_checkpoint(payload)`` (called on rank 0 only) gets a ``checkpoint_payload`` every ``checkpoint_every``
    steps, at the end of training and when a pre-emption signal arrives; after the latter the loop raises
    ``Preempted``.
    """
    opts = FitOptions(**options)
    check_options(opts)
    state = _restore(nets, resume) if resume is not None else FitState()
    if not recipe.stages or opts.total_steps <= 0:
        return state
    if dataset is None:
        raise ValueError("a recipe with stages needs a training dataset")
    _start_ranks(nets, opts, resumed=resume is not None)
    progress = Progress(opts, state, on_log)
    skips = SkipCounter(opts, state)
    with PreemptionGuard() as guard:
        for index, stage, start, stop in stages_left(recipe, opts.total_steps, state.step):
            optim = build_stage_optim(nets, stage, stop - start, opts.lr_scale)
            if resume is not None and resume["optim"]["stage_index"] == index:
                load_stage_optim(optim, resume["optim"])
            set_train_mode(nets, stage)
            tic = time.perf_counter()
            for batch in batch_stream(
                dataset, opts.batch_size, opts.seed, max(start, state.step), stop, opts.num_workers
            ):
                batch = {k: v.to(opts.device, non_blocking=True) for k, v in batch.items()}
                where = f"step {state.step + 1}/{opts.total_steps} (stage {stage.name!r})"
                buffers = _snapshot_buffers(nets) if opts.nan_policy == "skip" else []
                logs, problem = train_step(nets, recipe, stage, optim, batch, where)
                for opt in optim.optimizers:
                    opt.zero_grad(set_to_none=True)
                if problem is not None:
                    _restore_buffers(buffers)  # e.g. BatchNorm statistics the bad forward pass already updated
                skips.record(problem)  # raises under nan_policy="stop" or after too many skips in a row
                step_schedulers(optim)  # a skipped step still counts: the schedule follows the step index
                state.step += 1
                if problem is None:
                    progress.step(state, stage, logs, optim, last_of_stage=state.step == stop)
                else:
                    progress.advance()
                preempted = guard.requested()
                periodic = bool(opts.checkpoint_every) and state.step % opts.checkpoint_every == 0
                if save_checkpoint is not None and (periodic or preempted or state.step == opts.total_steps):
                    state.train_seconds += time.perf_counter() - tic
                    tic = time.perf_counter()
                    _checkpoint(nets, state, index, stage, optim, opts.total_steps, save_checkpoint)
                if preempted:
                    progress.close()
                    guard.stop(state.step, saved=save_checkpoint is not None)
            state.train_seconds += time.perf_counter() - tic
    progress.close()
    nets.eval()
    return state


def check_options(opts: FitOptions) -> None:
    if opts.nan_policy not in ("stop", "skip"):
        raise ZooError(f"train.nan_policy: expected 'stop' or 'skip', got {opts.nan_policy!r}")
    check_schedule(opts.total_steps, opts.batch_size)


def _start_ranks(nets: nn.ModuleDict, opts: FitOptions, resumed: bool) -> None:
    """Same weights on every rank; independent randomness per rank (dropout, label noise) from here on, rank 0
    keeping the single-process stream (a resumed run restored each rank's own RNG state instead)."""
    distributed.check_batch_size(opts.batch_size)
    distributed.broadcast_module(nets)
    if not resumed and distributed.rank() > 0:
        seed_everything(int(np.random.SeedSequence([opts.seed, distributed.rank()]).generate_state(1)[0]))


def stages_left(recipe: Recipe, total_steps: int, step: int) -> Iterator[tuple[int, Stage, int, int]]:
    """(index, stage, start, stop) of each stage that still has steps to run after ``step``."""
    for index, (stage, (start, stop)) in enumerate(zip(recipe.stages, stage_bounds(recipe.stages, total_steps))):
        if step < stop and start < stop:
            yield index, stage, start, stop


def load_stage_optim(optim: StageOptim, saved: dict[str, Any]) -> None:
    for opt, state in zip(optim.optimizers, saved["optimizers"]):
        opt.load_state_dict(state)
    for sched, state in zip(optim.schedulers, saved["schedulers"]):
        sched.load_state_dict(state)


def step_schedulers(optim: StageOptim) -> None:
    with warnings.catch_warnings():  # a skipped step did not call optimizer.step(); the schedule goes on regardless
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
        for sched in optim.schedulers:
            sched.step()


class SkipCounter:
    """``nan_policy``: "stop" turns a problem into an error; "skip" records the step as skipped and allows at most
    ``max_skips_in_a_row`` in a row (counted on from a checkpoint, whose skipped steps it restores)."""

    def __init__(self, opts: FitOptions, state: FitState):
        self.opts, self.state, self.in_a_row = opts, state, 0
        while state.step - self.in_a_row in state.skipped_steps:
            self.in_a_row += 1

    def record(self, problem: str | None) -> None:
        if problem is None:
            self.in_a_row = 0
            return
        if self.opts.nan_policy == "stop":
            raise ZooError(f"{problem}; the last checkpoint is kept (train.nan_policy=skip drops such steps)")
        log.warning("skipping %s", problem)
        self.state.skipped_steps.append(self.state.step + 1)
        self.in_a_row += 1
        if self.in_a_row >= self.opts.max_skips_in_a_row:
            raise ZooError(
                f"{self.in_a_row} steps in a row had non-finite values (last: {problem}); the training " "has diverged"
            )


class Progress:
    """The training curve (``FitState.history``, every ``log_every`` steps and at the end of each stage), the
    ``on_log`` callback, and what the user sees: a tqdm bar (``progress``) or one log line per entry."""

    def __init__(self, opts: FitOptions, state: FitState, on_log: Callable[[dict[str, float]], None] | None):
        self.opts, self.on_log = opts, on_log
        self.meter = StepMeter(state.step, opts.total_steps)
        self.bar = None
        if opts.progress and distributed.is_main():
            from tqdm import tqdm

            self.bar = tqdm(total=opts.total_steps, initial=state.step, desc="train", dynamic_ncols=True, leave=False)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def step(
        self, state: FitState, stage: Stage, logs: dict[str, float], optim: StageOptim, last_of_stage: bool
    ) -> None:
        self.advance()
        if state.step % max(1, self.opts.log_every) and not last_of_stage:
            return
        entry = {"step": state.step, "stage": stage.name, **distributed.mean_values(logs)}
        entry["lr"] = optim.optimizers[0].param_groups[0]["lr"]
        state.history.append(entry)
        if not distributed.is_main():
            return
        if self.on_log is not None:
            self.on_log(entry)
        if self.bar is None:
            log.info(self.meter.line(entry))
        else:
            losses = " ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in logs.items() if k.endswith("/loss"))
            self.bar.set_postfix_str(f"{stage.name} {losses}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def check_schedule(total_steps: int, batch_size: int) -> None:
    """Refuse a step budget or batch size that would "train" nothing and still look like a finished run."""
    if total_steps < 0:
        raise ZooError(f"train.steps: expected >= 0 (0 = no training), got {total_steps}")
    if batch_size < 1:
        raise ZooError(f"train.batch_size: expected >= 1, got {batch_size}")


class StepMeter:
    """Seconds per step and the time left, for the log line written every ``log_every`` steps without a bar."""

    def __init__(self, step: int, total_steps: int):
        self.step, self.total, self.tic = step, total_steps, time.perf_counter()

    def line(self, entry: dict[str, Any]) -> str:
        now = time.perf_counter()
        per_step = (now - self.tic) / max(1, entry["step"] - self.step)
        self.step, self.tic = entry["step"], now
        eta = per_step * (self.total - entry["step"])
        terms = " ".join(f"{k}={v:.4g}" for k, v in entry.items() if k not in ("step", "stage", "lr"))
        return (
            f"step {entry['step']}/{self.total} [{entry['stage']}] {terms} lr={entry['lr']:.3g} "
            f"{per_step:.3f} s/step ETA {_duration(eta)}"
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


# ----------------------------------------------------------------------------------------------------------------------
# BatchNorm statistics


def batchnorm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    dataset: Dataset,
    *,
    batches: int,
    batch_size: int,
    seed: int,
    start_step: int,
    device: torch.device,
) -> int:
    """Recompute every BatchNorm's running mean/variance as the plain average over ``batches`` training batches of
    the whole model's forward pass (what ``torch.optim.swa_utils.update_bn`` does), so the evaluated (eval-mode)
    model normalises as the trained (train-mode) one did.

    Why: SingleHDR's BN layers keep TF's moving averages (decay 0.999 in slim, 0.9 in TensorLayer); over a short
    budget the running statistics barely leave their initial (0, 1), and a sub-net trained in one stage sees other
    inputs once the stages are joined. The batches are those of steps ``start_step ..`` of the same deterministic
    stream (the steps after training), so the result is a pure function of the run. Returns the number of layers.
    """
    layers = batchnorm_layers(model)
    if not layers or batches <= 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: equal weight for every batch
    model.train()
    try:
        for batch in batch_stream(dataset, batch_size, seed, start_step, start_step + batches):
            model(batch["ldr"].to(device))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return len(layers)


def _checkpoint(
    nets: nn.ModuleDict,
    state: FitState,
    index: int,
    stage: Stage,
    optim: StageOptim,
    total_steps: int,
    save: Callable[[dict[str, Any]], None],
) -> None:
    bad = first_nonfinite(nets)
    if bad is not None:
        raise ZooError(
            f"refusing to save a checkpoint after step {state.step}: {bad} is not finite; the last "
            f"checkpoint is kept"
        )
    payload = checkpoint_payload(nets, state, index, stage, optim, total_steps)
    if distributed.is_main():
        save(payload)
