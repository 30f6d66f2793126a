"""One run: build the model, train it with its recipe, evaluate it on the frozen split, write one result row.

``run(cfg)`` takes the plain typed config (``zoo.config.RunConfig``); the Hydra app in ``zoo.cli`` only composes and
converts it. Re-running the same config skips a finished run (``force`` reruns it) and resumes an interrupted one from
``<checkpoint_dir>/<run_id>/last.pt``.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo import metrics, results
from zoo.config import RunConfig
from zoo.data import build_dataset
from zoo.domains import SCALE_RULE
from zoo.errors import ZooError
from zoo.evaluate import evaluate
from zoo.io import atomic_write
from zoo.registry import create_model, get_spec
from zoo.train import FitState, StageOptim, fit, rng_state, seed_everything, set_rng_state
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


def _save_resume_state(path: Path, nets: nn.ModuleDict, state: FitState, stage: str, optim: StageOptim) -> None:
    payload = {
        "nets": nets.state_dict(),
        "step": state.step,
        "history": state.history,
        "train_seconds": state.train_seconds,
        "optim": {"stage": stage, "optimizers": [o.state_dict() for o in optim.optimizers],
                  "schedulers": [s.state_dict() for s in optim.schedulers]},  # fmt: skip
        "rng": rng_state(),
    }
    # temp file + rename: the previous checkpoint stays intact until the new one is complete
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def run(cfg: RunConfig) -> dict[str, Any]:
    """Train and evaluate one configuration; returns the row (also written to ``cfg.results_dir``)."""
    config = config_dict(cfg)
    rid = results.run_id(config)
    existing = results.row_path(cfg.results_dir, rid)
    if existing.is_file() and not cfg.force:
        row = results.read_row(existing)
        if row.get("status") == "ok":
            log.info("run %s already finished (%s); skipping (force=true reruns it)", rid, existing)
            return row
    base = {"run_id": rid, "model": cfg.model.name, "data": cfg.data.name, "seed": cfg.seed, "tag": cfg.tag,
            "config": results.semantic_config(config), "git_commit": results.git_commit()}  # fmt: skip
    tic = time.perf_counter()
    try:
        row = {**base, **_train_and_evaluate(cfg, rid), "status": "ok", "error": ""}
    except Exception as exc:
        message = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
        row = {**base, "status": "failed", "error": message.splitlines()[0] if message else type(exc).__name__}
        row["wall_seconds"] = time.perf_counter() - tic
        results.write_row(cfg.results_dir, row)
        raise
    row["wall_seconds"] = time.perf_counter() - tic
    path = results.write_row(cfg.results_dir, row)
    log.info("wrote %s", path)
    return row


def _train_and_evaluate(cfg: RunConfig, rid: str) -> dict[str, Any]:
    torch.set_num_threads(max(1, cfg.train.threads))
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.seed)
    spec = get_spec(cfg.model.name)
    model = create_model(cfg.model.name, **cfg.model.args)
    if cfg.model.weights:
        load_weights(model, cfg.model.weights)
    try:
        recipe = spec.recipe(**cfg.model.recipe)
    except TypeError as exc:
        raise ZooError(f"model.recipe: bad option for {spec.name!r} ({exc})") from None
    nets = nn.ModuleDict({"model": model, **{name: make() for name, make in recipe.aux_modules.items()}}).to(device)

    run_dir = Path(cfg.checkpoint_dir) / rid
    resume_path = run_dir / "last.pt"
    state, optim_state = FitState(), None
    if resume_path.is_file() and not cfg.force:
        saved = torch.load(resume_path, map_location=device, weights_only=False)  # our own file, written above
        nets.load_state_dict(saved["nets"])
        state = FitState(step=saved["step"], history=saved["history"], train_seconds=saved["train_seconds"])
        optim_state = saved["optim"]
        set_rng_state(saved["rng"])
        log.info("resuming run %s at step %d from %s", rid, state.step, resume_path)

    train_set = None
    if recipe.stages and cfg.train.steps > 0:
        train_set = build_dataset(cfg.data, "train")
        missing = [k for k in recipe.needs if k not in train_set[0]]
        if missing:
            raise ZooError(f"data={cfg.data.name!r} does not provide {', '.join(missing)}, which {spec.name!r} "
                           f"training needs; use data=synthetic or data=folder")  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    state = fit(
        nets, recipe, train_set, total_steps=cfg.train.steps, batch_size=cfg.train.batch_size, seed=cfg.seed,
        device=device, lr_scale=cfg.train.lr_scale, log_every=cfg.train.log_every, num_workers=cfg.data.num_workers,
        progress=cfg.train.progress, nan_policy=cfg.train.nan_policy, state=state, optim_state=optim_state,
        checkpoint_every=cfg.train.checkpoint_every,
        save_checkpoint=lambda st, stage, optim: _save_resume_state(resume_path, nets, st, stage, optim),
    )  # fmt: skip
    weights_path = save_checkpoint(run_dir / "model.pt", model, run_id=rid, step=state.step)

    eval_set = build_dataset(cfg.data, "eval")
    tic = time.perf_counter()
    images = evaluate(model, spec, eval_set, device)
    eval_seconds = time.perf_counter() - tic
    if hasattr(eval_set, "describe"):
        for i, image in enumerate(images):
            image["degradation"] = eval_set.describe(i)
    metric_names = [k for k in images[0] if k in metrics.METRICS] if images else []
    means = {name: _finite_mean([im[name] for im in images]) for name in metric_names}
    return {
        **means,
        "n_images": len(images),
        "params": sum(p.numel() for p in model.parameters()),
        "steps": state.step,
        "train_seconds": state.train_seconds,
        "eval_seconds": eval_seconds,
        "seconds_per_image": float(np.mean([im["seconds"] for im in images])) if images else float("nan"),
        "output_domain": spec.output_domain,
        "scale_rule": SCALE_RULE,
        "protocol": metrics.PROTOCOL,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "torch": torch.__version__,
        "weights": str(weights_path),
        "recipe_notes": recipe.notes,
        "history": state.history,
        "images": images,
    }


def _finite_mean(values: list[float]) -> float:
    """Mean over images; an infinite value (identical images) is kept out of the mean and flagged by the report."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
