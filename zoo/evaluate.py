"""Evaluation: predict every image of a frozen split, convert to the dataset's encoding, score.

This is the one place where model outputs meet metrics: ``zoo.domains.to_ntire`` converts every model's native output
(its spec's ``output_domain``) to the NTIRE encoding the datasets store, so no metric ever mixes encodings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo import metrics
from zoo.data import DataConfig, build_dataset
from zoo.domains import SCALE_RULE, to_ntire
from zoo.errors import ZooError
from zoo.preview import hdr_strip, save_hdr_preview, save_preview
from zoo.registry import ModelSpec

# A metric beyond zoo.metrics: (reference, prediction), NTIRE-encoded H×W×3 → a number.
ExtraMetric = Callable[[np.ndarray, np.ndarray], float]


@torch.inference_mode()
def predict_ntire(model: nn.Module, spec: ModelSpec, ldr: torch.Tensor) -> torch.Tensor:
    """LDR (B,3,H,W) in [0,1] → prediction in NTIRE encoding (B,3,H,W), ≥ 0."""
    return to_ntire(model(ldr), spec.output_domain)


def evaluate(
    model: nn.Module,
    spec: ModelSpec,
    dataset,
    device: torch.device,
    crops: list[np.ndarray] | None = None,
    first: list[np.ndarray] | None = None,
    extra: dict[str, ExtraMetric] | None = None,
) -> list[dict[str, Any]]:
    """Per-image rows: the image id, its degradation parameters (``dataset.describe``), every metric, seconds, and
    the reference's μ-law normalisation (``mu_norm``, so a viewer can tone-map crops as PSNR-μ sees them). With
    ``crops`` (a list), each image's linear [input | prediction | reference] highlight crop is appended to it; with
    ``first`` (a list), the first image's [LDR, reference, prediction] arrays are put in it (for its preview);
    ``extra``: further metrics by name, each a function of the NTIRE-encoded (reference, prediction), e.g.
    ColorVideoVDP."""
    model.eval()
    rows = []
    for index in range(len(dataset)):
        sample = dataset[index]
        ldr = sample["ldr"][None].to(device)
        tic = time.perf_counter()
        prediction = predict_ntire(model, spec, ldr)
        seconds = time.perf_counter() - tic
        result = prediction[0].permute(1, 2, 0).float().cpu().numpy()
        reference = sample["target"].permute(1, 2, 0).numpy().astype(np.float32)
        described = dataset.describe(index) if hasattr(dataset, "describe") else {"id": str(index)}
        rows.append(
            {
                "image": str(described.get("id", index)),
                **metrics.compute_all(reference, result),
                **{name: fn(reference, result) for name, fn in (extra or {}).items()},
                "seconds": seconds,
                "mu_norm": metrics.mu_norm(reference),
            }
        )
        ldr_image = sample["ldr"].permute(1, 2, 0).numpy()
        if crops is not None:
            crops.append(hdr_strip(ldr_image, reference, result))
        if first is not None and index == 0:
            first.extend([ldr_image, reference, result])
    return rows


def evaluate_split(
    model: nn.Module,
    spec: ModelSpec,
    data: DataConfig,
    device: torch.device,
    preview_for: Path | None = None,
    extra: dict[str, ExtraMetric] | None = None,
) -> dict[str, Any]:
    """Score ``model`` on the frozen eval split of ``data``: the row fields shared by ``zoo run`` and ``zoo eval``
    (mean of every metric, per-image metrics with each image's degradation record, timing, protocol). With
    ``preview_for`` (a row path), a preview image of the first evaluation image is written beside it. ``extra``:
    further per-image metrics (see ``evaluate``), averaged like the others."""
    eval_set = build_dataset(data, "eval")
    crops: list[np.ndarray] | None = [] if preview_for is not None else None
    first: list[np.ndarray] | None = [] if preview_for is not None else None
    tic = time.perf_counter()
    images = evaluate(model, spec, eval_set, device, crops, first, extra)
    eval_seconds = time.perf_counter() - tic
    metric_names = [k for k in images[0] if k in metrics.METRICS or k in (extra or {})] if images else []
    check_complete(images, metric_names)
    if preview_for is not None and len(eval_set):
        save_preview(preview_for, *first)
        save_hdr_preview(preview_for, crops)
    if hasattr(eval_set, "describe"):
        for i, image in enumerate(images):
            image["degradation"] = eval_set.describe(i)
    return {
        **{name: finite_mean([im[name] for im in images]) for name in metric_names},
        "n_images": len(images),
        "eval_seconds": eval_seconds,
        "seconds_per_image": float(np.mean([im["seconds"] for im in images])),
        "output_domain": spec.output_domain,
        "scale_rule": SCALE_RULE,
        "protocol": metrics.PROTOCOL,
        "images": images,
    }


def check_complete(images: list[dict[str, Any]], metric_names: list[str]) -> None:
    """A NaN metric means the prediction of that image was not finite: the evaluation is incomplete, and a mean over
    the other images would be a different benchmark. Fail the run instead of writing such metrics."""
    if not images:
        raise ZooError("the evaluation split is empty; expected at least one image (data.eval_count)")
    bad = [im["image"] for im in images if any(isinstance(im[n], float) and math.isnan(im[n]) for n in metric_names)]
    if bad:
        raise ZooError(
            f"evaluation incomplete: {len(bad)} of {len(images)} images gave NaN metrics (first: {bad[0]}); "
            f"the model's predictions are not finite, so no metrics are written"
        )


def finite_mean(values: list[float]) -> float:
    """Mean over images; an infinite value (identical images) is kept out of the mean and flagged by the report."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
