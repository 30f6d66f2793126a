"""Pixel losses on NTIRE gamma-encoded HDR values (HDRUNet's Table 2 ablation).

``tanh_*`` compress highlights smoothly before the distance (tanh of values around 1–3 saturates), which is why
HDRUNet's authors chose Tanh-L1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

HDRUNET_LOSSES = ("l1", "l2", "tanh_l1", "tanh_l2")


def pixel_loss(kind: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind.startswith("tanh_"):
        prediction, target = torch.tanh(prediction), torch.tanh(target)
        kind = kind[len("tanh_") :]
    if kind == "l1":
        return F.l1_loss(prediction, target)
    if kind == "l2":
        return F.mse_loss(prediction, target)
    raise ValueError(f"unknown pixel loss {kind!r}; expected one of {HDRUNET_LOSSES}")
