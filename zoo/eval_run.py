"""``zoo eval``: score a model with given weights on a dataset's frozen eval split, without training; one row each.

``eval_run(cfg)`` takes the plain typed ``zoo.config.EvalConfig``. The row has the metric keys of ``zoo run`` rows
(``psnr_l_ntire``, ``psnr_mu_ntire``, ``ssim_mu_ntire``, ``pu21_psnr_rgb``, ... with per-image values and degradation
records) and is keyed by a hash of (model name and arguments, the sha256 of the weights file's *contents*, the
evaluation data config, the seed): replacing a weights file gives a new row, never stale metrics; weights are read
in place, never copied. The default weights are the model's shipped pretrained weights (``zoo.pretrained``).
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

from zoo import pretrained, results
from zoo.config import EvalConfig
from zoo.cvvdp import cvvdp_jod
from zoo.data import DataConfig
from zoo.data.common import check_config
from zoo.data.config import TRAIN_ONLY_KEYS
from zoo.domains import NTIRE_GAMMA
from zoo.errors import ZooError
from zoo.evaluate import evaluate_split
from zoo.factory import create_model
from zoo.metrics import PROTOCOL
from zoo.registry import get_spec
from zoo.run import check_writable, resolve_device
from zoo.train import first_nonfinite
from zoo.weights import checkpoint_architecture, load_weights, read_checkpoint

log = logging.getLogger(__name__)

EVAL_FORMAT = "hdr-zoo-eval/1"


def resolve_weights(cfg: EvalConfig) -> tuple[Path | None, str]:
    """(weights file or None, what they are): the given file, the shipped weights, or none for a baseline."""
    spec = get_spec(cfg.model.name)
    if cfg.model.weights:
        path = Path(cfg.model.weights)
        if not path.is_file():
            raise ZooError(f"model.weights={cfg.model.weights}: no such weights file")
        return path, "file"
    if spec.is_baseline:
        return None, "none (baseline)"
    return pretrained.require(cfg.model.name), "pretrained"


def eval_config(cfg: EvalConfig, weights_sha256: str) -> dict[str, Any]:
    """What the row's metrics depend on (its id is a hash of this)."""
    data = {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in TRAIN_ONLY_KEYS}
    config = {
        "kind": "eval",
        "model": {"name": cfg.model.name, "args": dict(cfg.model.args), "weights_sha256": weights_sha256},
        "data": data,
        "seed": cfg.seed,
    }
    if cfg.cvvdp:  # only when on, so the ids of rows without it stay what they were
        config["cvvdp"] = True
    return config


def ntire_cvvdp_jod(reference: np.ndarray, result: np.ndarray) -> float:
    """ColorVideoVDP (JOD) of two NTIRE-encoded H×W×3 images, on their linear values (zoo.cvvdp)."""
    linear = lambda x: np.maximum(x, 0) ** NTIRE_GAMMA  # noqa: E731
    return cvvdp_jod(linear(reference), linear(result), peak_luminance=float(PROTOCOL["pu21_peak_luminance"]))


def eval_id(config: dict[str, Any]) -> str:
    return "eval-" + results.config_hash(config)


SIHDR_CLIP = 0.05  # the default evaluation camera: SI-HDR's clip_95 (5 % of the pixels saturated)
REAL_NEGATIVES = "fill"  # conf/data/real.yaml: the shipped scenes' ringing pixels are filled (docs/evaluation.md)


def default_tag(data: DataConfig) -> str:
    """``eval-<data>``; at another clipping level than the default clip_95, ``eval-<data>-clip_NN`` (SI-HDR's names:
    clip_97 = 3 % saturated), so each level gets its own report table; the shipped real scenes under another
    ``data.negative_values`` policy than their ``fill`` get ``-<policy>`` appended (e.g. ``eval-real-clamp``)."""
    tag = f"eval-{data.name}"
    if data.name == "real" and data.negative_values != REAL_NEGATIVES:
        tag += f"-{data.negative_values}"
    fraction = data.camera.eval_clip_fraction
    if abs(fraction - SIHDR_CLIP) < 1e-9:
        return tag
    return f"{tag}-clip_{round(100 * (1 - fraction)):d}"


def eval_run(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate one (model, weights, dataset); returns the row (also written to ``cfg.results_dir``)."""
    torch.set_num_threads(max(1, cfg.threads))
    check_config(cfg.data, "eval")
    path, kind = resolve_weights(cfg)
    sha = pretrained.sha256_of(path) if path is not None else "none"
    config = eval_config(cfg, sha)
    rid = eval_id(config)
    tag = cfg.tag or default_tag(cfg.data)
    existing = results.row_path(cfg.results_dir, rid)
    if existing.is_file() and not cfg.force:
        prior = results.read_row(existing)
        if prior.get("status") == "ok":
            log.info("%s: already evaluated (%s); skipping (force=true re-evaluates)", rid, existing)
            return prior
    base = {
        "run_id": rid,
        "format": EVAL_FORMAT,
        "model": cfg.model.name,
        "data": cfg.data.name,
        "seed": cfg.seed,
        "tag": tag,
        "tags": [tag],
        "config": config,
        "weights": str(path) if path else "",
        "weights_kind": kind,
        "weights_sha256": sha,
        "git_commit": results.git_commit(),
    }
    results_dir = Path(cfg.results_dir)
    check_writable(cfg.results_dir, "results_dir")
    tic = time.perf_counter()
    device = resolve_device(cfg.device)
    spec = get_spec(cfg.model.name)
    checkpoint = read_checkpoint(path) if path is not None else None
    recorded = checkpoint_architecture(checkpoint, str(path)) if checkpoint is not None else None
    # a zoo checkpoint's own model arguments (ablation variants) come first; model.args overrides single ones
    model = create_model(cfg.model.name, **{**(recorded[1] if recorded else {}), **cfg.model.args})
    if checkpoint is not None:
        load_weights(model, checkpoint, origin=str(path))
        bad = first_nonfinite(model)
        if bad is not None:
            raise ZooError(f"{path}: {bad} holds NaN or inf values; expected finite weights")
    model = model.to(device).eval()
    extra = {"cvvdp_jod": ntire_cvvdp_jod} if cfg.cvvdp else None
    evaluation = evaluate_split(model, spec, cfg.data, device, results.row_path(results_dir, rid), extra)
    images = evaluation.pop("images")
    row = {
        **base,
        **evaluation,
        "status": "ok",
        "error": "",
        "params": sum(p.numel() for p in model.parameters()),
        "steps": _trained_steps(checkpoint),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "torch": torch.__version__,
        "wall_seconds": time.perf_counter() - tic,
        "images": images,
    }
    written = results.write_row(results_dir, row)
    log.info("wrote %s", written)
    return row


def _trained_steps(checkpoint: Any) -> int:
    """Training steps recorded in a zoo checkpoint (0 for none or an official file that does not say)."""
    step = checkpoint.get("step", 0) if isinstance(checkpoint, dict) else 0
    return int(step) if isinstance(step, int) else 0
