"""Compute cost of a registered model, counted from its code rather than quoted from a paper.

``gmacs`` runs one forward pass on a *meta* tensor (shapes only, no arithmetic, no memory) under
``torch.utils.flop_counter.FlopCounterMode`` and halves its FLOP count: multiply-accumulates of convolutions and matrix
products, the convention papers use for "MACs". Element-wise operations are not counted, so the non-learned baselines
count 0. Padding to the model's size multiple is included, since the model really computes it.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from zoo.factory import create_model

log = logging.getLogger(__name__)

NTIRE_FRAME = (1060, 1900)  # height, width of an NTIRE 2021 frame: the size GMACs are quoted at


def gmacs(
    name: str, args: dict[str, Any] | None = None, height: int = NTIRE_FRAME[0], width: int = NTIRE_FRAME[1]
) -> float:
    """Giga multiply-accumulates of one forward pass of ``create_model(name, **args)`` on a 1×3×height×width input;
    NaN (with a logged warning) when the model cannot run on the meta device."""
    return _cached(name, json.dumps(args or {}, sort_keys=True, default=str), height, width)


@functools.lru_cache(maxsize=None)
def _cached(name: str, args_json: str, height: int, width: int) -> float:
    args = json.loads(args_json)
    try:
        return _count(name, args, height, width, build_on_meta=True)
    except Exception:  # a module that creates CPU tensors in __init__: build it for real, then move it to meta
        pass
    try:
        return _count(name, args, height, width, build_on_meta=False)
    except Exception as exc:
        log.warning("GMACs of %s %s not counted: %s", name, args or "", str(exc).splitlines()[0] if str(exc) else exc)
        return float("nan")


def _count(name: str, args: dict[str, Any], height: int, width: int, build_on_meta: bool) -> float:
    if build_on_meta:
        with torch.device("meta"):
            model = create_model(name, **args)
    else:
        model = create_model(name, **args).to("meta")
    x = torch.zeros(1, 3, height, width, device="meta")
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2e9
