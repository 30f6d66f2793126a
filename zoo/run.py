"""One run: build the model, train it with its recipe, evaluate it on the frozen split, write one result row.

``run(cfg)`` takes the plain typed config (``zoo.config.RunConfig``); the Hydra app in ``zoo.cli`` only composes and
converts it. Re-running the same config skips a finished run (``force`` reruns it) and resumes an interrupted one from
``<checkpoint_dir>/<run_id>/last.pt`` (also with ``force``: resuming gives the same weights as starting over; delete
the folder to start over anyway). ``last.pt`` is removed once the run's row is written; the final weights stay in
``model.pt``.

Under ``torchrun`` every rank trains (``zoo.distributed``); only rank 0 writes checkpoints, weights and the row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from zoo import distributed, results
from zoo.config import RunConfig
from zoo.data import build_dataset
from zoo.errors import ZooError
from zoo.evaluate import evaluate_split
from zoo.factory import create_model
from zoo.io import check_writable_folder
from zoo.recipe import Recipe
from zoo.registry import ModelSpec, get_spec
from zoo.train import (
    FitState,
    check_schedule,
    first_nonfinite,
    fit,
    read_resume_state,
    recalibrate_batchnorm,
    seed_everything,
    write_resume_state,
)
from zoo.weights import load_weights, save_checkpoint

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ZooError(f"train.device: expected 'auto', 'cpu' or 'cuda[:N]', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ZooError(f"train.device={name!r} but no CUDA device is available")
    return device


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def run(cfg: RunConfig) -> dict[str, Any]:
    """Train and evaluate one configuration; returns the row (also written to ``cfg.results_dir``)."""
    rid = results.run_id(config_dict(cfg))
    existing = results.row_path(cfg.results_dir, rid)
    prior = results.read_row(existing) if existing.is_file() else None
    if prior is not None and not cfg.force and prior.get("status") == "ok":
        log.info("run %s already finished (%s); skipping (force=true reruns it)", rid, existing)
        return _add_tag(cfg.results_dir, prior, cfg.tag)
    base = row_base(cfg, prior)
    tic = time.perf_counter()
    try:
        if distributed.env_rank() == 0:  # before the process group is up
            check_writable(cfg.results_dir, "results_dir")
            check_writable(cfg.checkpoint_dir, "checkpoint_dir")
        outcome = _train_and_evaluate(cfg, rid)
    except Exception as exc:  # not Preempted (a SystemExit): a pre-empted run has not failed and writes no row
        message = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
        row = {**base, "status": "failed", "error": message.splitlines()[0] if message else type(exc).__name__}
        row["wall_seconds"] = time.perf_counter() - tic
        if distributed.is_main():
            try:
                results.write_row(cfg.results_dir, row)
            except (ZooError, OSError) as write_error:  # e.g. a read-only results folder: report the first error
                log.error("could not record the failed run: %s", write_error)
        _release_cuda_memory()
        raise
    if outcome is None:  # ranks other than 0 under torchrun: rank 0 evaluates and writes the row
        return {}
    row = {**base, **outcome, "status": "ok", "error": ""}
    row["wall_seconds"] = time.perf_counter() - tic
    path = results.write_row(cfg.results_dir, row)
    log.info("wrote %s", path)
    resume_path(cfg, rid).unlink(missing_ok=True)  # the row and model.pt now hold everything
    return row


def check_writable(folder: str, key: str) -> None:
    """Fail in a second, not after the training: the output folders must accept new files."""
    check_writable_folder(folder, f"{key}={folder}")


def resume_path(cfg: RunConfig, rid: str) -> Path:
    return Path(cfg.checkpoint_dir) / rid / "last.pt"


def _release_cuda_memory() -> None:
    """After a failed run (e.g. out of memory), so the next run of a sweep in this process starts with a clean GPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@dataclasses.dataclass
class Setup:
    """What a run trains and where: built from the config before any training step."""

    spec: ModelSpec
    model: nn.Module
    recipe: Recipe
    nets: nn.ModuleDict
    device: torch.device
    steps: int
    batch_size: int
    run_dir: Path


def _train_and_evaluate(cfg: RunConfig, rid: str) -> dict[str, Any] | None:
    setup = set_up(cfg, rid)
    train_set, state = train(cfg, rid, setup)
    if not distributed.is_main():
        return None
    weights_path = finish_weights(cfg, rid, setup, train_set, state)
    evaluation = evaluate_split(setup.model, setup.spec, cfg.data, setup.device, results.row_path(cfg.results_dir, rid))
    return row_fields(setup, state, evaluation, weights_path)


def set_up(cfg: RunConfig, rid: str) -> Setup:
    """Threads, device, seed, the model (with ``model.weights``), its recipe and schedule."""
    # Threads per process, set explicitly: torchrun sets OMP_NUM_THREADS=1, and bit-exact resume on CPU needs the same
    # thread count before and after the interruption.
    torch.set_num_threads(max(1, cfg.train.threads))
    device = distributed.setup(resolve_device(cfg.train.device))
    seed_everything(cfg.seed)
    spec = get_spec(cfg.model.name)
    model = create_model(cfg.model.name, **cfg.model.args)
    if cfg.model.weights:
        load_weights(model, cfg.model.weights)
        bad = first_nonfinite(model)
        if bad is not None:
            raise ZooError(f"model.weights={cfg.model.weights}: {bad} holds NaN or inf values; expected finite weights")
    try:
        recipe = spec.recipe(**cfg.model.recipe)
    except TypeError as exc:
        raise ZooError(f"model.recipe: bad option for {spec.name!r} ({exc})") from None
    steps, batch_size = schedule(cfg, recipe)
    nets = nn.ModuleDict({"model": model, **{name: make() for name, make in recipe.aux_modules.items()}}).to(device)
    return Setup(spec, model, recipe, nets, device, steps, batch_size, Path(cfg.checkpoint_dir) / rid)


def train(cfg: RunConfig, rid: str, setup: Setup) -> tuple[Dataset | None, FitState]:
    """``fit`` on the training split, resumed from ``last.pt`` when an earlier attempt left one."""
    last = resume_path(cfg, rid)
    resume = None
    if last.is_file():
        resume = read_resume_state(last, setup.steps)
        log.info("resuming run %s at step %d of %d from %s", rid, resume["step"], setup.steps, last)
    train_set = None
    if setup.recipe.stages and setup.steps > 0:
        train_set = build_dataset(cfg.data, "train")
        missing = [k for k in setup.recipe.needs if k not in train_set[0]]
        if missing:
            raise ZooError(
                f"data={cfg.data.name!r} does not provide {', '.join(missing)}, which "
                f"{setup.spec.name!r} training needs; use data=synthetic or data=folder"
            )
    if distributed.is_main():
        setup.run_dir.mkdir(parents=True, exist_ok=True)
    with scalar_logger(cfg.train.tensorboard, setup.run_dir / "tb") as on_log:
        state = fit(
            setup.nets,
            setup.recipe,
            train_set,
            total_steps=setup.steps,
            batch_size=setup.batch_size,
            seed=cfg.seed,
            device=setup.device,
            lr_scale=cfg.train.lr_scale,
            log_every=cfg.train.log_every,
            num_workers=cfg.data.num_workers,
            progress=cfg.train.progress,
            nan_policy=cfg.train.nan_policy,
            resume=resume,
            checkpoint_every=cfg.train.checkpoint_every,
            on_log=on_log,
            save_checkpoint=lambda payload: write_resume_state(last, payload),
        )
    return train_set, state


def finish_weights(cfg: RunConfig, rid: str, setup: Setup, train_set: Dataset | None, state: FitState) -> Path:
    """BatchNorm statistics recomputed on training batches, then the final weights (``model.pt``)."""
    if train_set is not None and state.step > 0:
        layers = recalibrate_batchnorm(
            setup.model,
            train_set,
            batches=cfg.train.bn_recalibration_batches,
            batch_size=setup.batch_size,
            seed=cfg.seed,
            start_step=setup.steps,
            device=setup.device,
        )
        if layers:
            log.info(
                "recomputed the running statistics of %d BatchNorm layers on %d training batches",
                layers,
                cfg.train.bn_recalibration_batches,
            )
    bad = first_nonfinite(setup.model)
    if bad is not None:  # fit refuses such checkpoints; this covers recipes without training stages
        raise ZooError(f"refusing to save final weights of run {rid}: {bad} is not finite")
    return save_checkpoint(setup.run_dir / "model.pt", setup.model, run_id=rid, config_hash=rid, step=state.step)


def row_fields(setup: Setup, state: FitState, evaluation: dict[str, Any], weights_path: Path) -> dict[str, Any]:
    """What the run adds to the row: the evaluation's metrics, then the training's facts."""
    images = evaluation.pop("images")
    return {
        **evaluation,
        "params": sum(p.numel() for p in setup.model.parameters()),
        "steps": state.step,
        "train_seconds": state.train_seconds,
        "device": str(setup.device),
        "threads": torch.get_num_threads(),
        "world_size": distributed.world_size(),
        "host": platform.node(),
        "torch": torch.__version__,
        "weights": str(weights_path),
        "recipe_notes": setup.recipe.notes,
        "skipped_steps": state.skipped_steps,
        "history": state.history,
        "images": images,
    }


def schedule(cfg: RunConfig, recipe: Recipe) -> tuple[int, int]:
    """(steps, batch size): the configured ones, or the recipe's official ones where the config says null."""
    steps = recipe.official_steps if cfg.train.steps is None else cfg.train.steps
    batch_size = recipe.official_batch_size if cfg.train.batch_size is None else cfg.train.batch_size
    if steps is None or batch_size is None:
        steps, batch_size = steps or 0, batch_size or 1  # recipes without training (baselines)
    check_schedule(steps, batch_size)
    return steps, batch_size


@contextlib.contextmanager
def scalar_logger(enabled: bool, folder: Path):
    """The ``on_log`` callback of ``fit``: TensorBoard scalars under ``folder`` when enabled, else None."""
    if not enabled or not distributed.is_main():
        yield None
        return
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ZooError(
            "train.tensorboard=true needs the tensorboard package (pip install 'hdr-zoo[tensorboard]')"
        ) from None
    writer = SummaryWriter(log_dir=str(folder))

    def on_log(entry: dict[str, float]) -> None:
        for key, value in entry.items():
            if key not in ("step", "stage") and isinstance(value, (int, float)):
                writer.add_scalar(key, value, entry["step"])

    try:
        yield on_log
    finally:
        writer.close()


# ----------------------------------------------------------------------------------------------------------------------
# Tags: the run id ignores the tag, so a finished run reached again by another sweep (an ablation's default variant is
# the zoo sweep's run; baselines are in every sweep) is not rerun; it gains that sweep's tag instead, so every table
# that lists it finds it. ``tags`` holds every tag a row was reached with, ``tag`` the one it was computed with.


def row_base(cfg: RunConfig, prior: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields every row of ``cfg`` has, finished or failed."""
    config = config_dict(cfg)
    return {
        "run_id": results.run_id(config),
        "model": cfg.model.name,
        "data": cfg.data.name,
        "seed": cfg.seed,
        "tag": cfg.tag,
        "tags": _merged_tags(prior, cfg.tag),
        "config": results.semantic_config(config),
        "git_commit": results.git_commit(),
    }


def record_failure(cfg: RunConfig, error: str, wall_seconds: float) -> Path:
    """Write a ``failed`` row for ``cfg`` (for a job that could not write its own: killed by a signal)."""
    existing = results.row_path(cfg.results_dir, results.run_id(config_dict(cfg)))
    prior = results.read_row(existing) if existing.is_file() else None
    row = {**row_base(cfg, prior), "status": "failed", "error": error, "wall_seconds": wall_seconds}
    return results.write_row(cfg.results_dir, row)


def _merged_tags(prior: dict[str, Any] | None, tag: str) -> list[str]:
    tags = list(prior.get("tags", [prior.get("tag", "")])) if prior else []
    return tags if tag in tags else [*tags, tag]


def _add_tag(results_dir: str, row: dict[str, Any], tag: str) -> dict[str, Any]:
    tags = _merged_tags(row, tag)
    if tags != row.get("tags"):
        row = {**row, "tags": tags}
        results.write_row(results_dir, row)
    return row
