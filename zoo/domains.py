"""Output domains and the one place where model outputs are converted for evaluation and writing.

Domains (docs/models.md):
- ``ntire_gamma``: NTIRE 2021 encoding: relative HDR, gamma-encoded with exponent 1/2.24 (linear = x**2.24).
  Values above 1 are normal (peaks around 3 on NTIRE data). HDRUNet and the two-stage net output this.
- ``linear_relative``: linear relative radiance, aligned to the exposure of the LDR input (1.0 ≈ the level where the
  input clips). SingleHDR outputs this.

Every dataset in the zoo stores its target in ``ntire_gamma`` encoding, so every metric compares like with like:
``to_ntire`` is the function evaluation calls on every model output.
"""

from __future__ import annotations

import numpy as np
import torch

NTIRE_GAMMA = 2.24
DOMAINS = ("ntire_gamma", "linear_relative")

Array = np.ndarray | torch.Tensor


def _clamp0(x: Array) -> Array:
    return x.clamp_min(0) if isinstance(x, torch.Tensor) else np.maximum(x, 0)


def to_linear(x: Array, domain: str) -> Array:
    """Linear relative radiance from ``domain``; negatives are clamped to 0 first (a fractional power of a negative
    number is NaN, and negative radiance is meaningless)."""
    x = _clamp0(x)
    if domain == "ntire_gamma":
        return x**NTIRE_GAMMA
    if domain == "linear_relative":
        return x
    raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")


def from_linear(x: Array, domain: str) -> Array:
    x = _clamp0(x)
    if domain == "ntire_gamma":
        return x ** (1.0 / NTIRE_GAMMA)
    if domain == "linear_relative":
        return x
    raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")


def to_ntire(x: Array, domain: str) -> Array:
    """Convert a model output from its declared domain to the NTIRE encoding the datasets and metrics use.

    For ``linear_relative`` outputs the scale rule is ``aligned``: the output is assumed to be already aligned with
    the input exposure (what the zoo's training targets are), so it is encoded with no rescaling and no oracle
    information from the reference. Negatives are clamped to 0 in every case.
    """
    return from_linear(to_linear(x, domain), "ntire_gamma")


SCALE_RULE = "aligned"  # recorded in every results row (docs/evaluation.md: record the scale rule)
