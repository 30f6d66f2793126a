"""Evaluation: predict every image of a frozen split, convert to the dataset's encoding, score.

This is the one place where model outputs meet metrics: ``zoo.domains.to_ntire`` converts every model's native output
(its spec's ``output_domain``) to the NTIRE encoding the datasets store, so no metric ever mixes encodings.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo import metrics
from zoo.domains import to_ntire
from zoo.registry import ModelSpec


@torch.inference_mode()
def predict_ntire(model: nn.Module, spec: ModelSpec, ldr: torch.Tensor) -> torch.Tensor:
    """LDR (B,3,H,W) in [0,1] → prediction in NTIRE encoding (B,3,H,W), ≥ 0."""
    return to_ntire(model(ldr), spec.output_domain)


def evaluate(model: nn.Module, spec: ModelSpec, dataset, device: torch.device) -> list[dict[str, Any]]:
    """Per-image rows: the image id, its degradation parameters (``dataset.describe``), every metric, seconds."""
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
        rows.append({"image": str(described.get("id", index)), **metrics.compute_all(reference, result),
                     "seconds": seconds})  # fmt: skip
    return rows
