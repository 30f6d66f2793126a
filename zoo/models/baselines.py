"""Non-learned baselines, registered like the learned models so they run through the same evaluation (PROTOCOLS.md §5:
every table needs baselines, since non-reconstructing operations compete with deep methods on standard metrics).

- ``identity``: the LDR input read as NTIRE gamma-encoded HDR (output domain ``ntire_gamma``).
- ``inverse_gamma``: the input linearised with gamma 2.24 (``linear_relative``). Because the zoo's evaluation encodes
  linear outputs as x**(1/2.24) (``zoo.domains.to_ntire``), it scores the same as ``identity`` up to float rounding;
  it is kept because the two make different claims about the output (display-referred vs scene-linear) and would
  differ under a protocol that does not use the NTIRE encoding. The exponent is the NTIRE 2.24, not the sRGB EOTF, so
  that "no reconstruction" means the same thing in both domains.
- ``landis``: Landis's expansion operator (2002), the classic global expansion of highlights.

All take x (B,3,H,W) in [0,1] sRGB LDR of any size and work per pixel, so no padding is needed (size multiple 1).
They have no parameters and no training (their recipe has no stages).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.domains import NTIRE_GAMMA
from zoo.errors import ZooError
from zoo.registry import ModelSpec, Recipe, register

# BT.709 luminance weights, for the linearised input.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


class Identity(nn.Module):
    """Returns the input unchanged: LDR values in [0,1] read as NTIRE gamma-encoded relative HDR."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class InverseGamma(nn.Module):
    """Linear relative HDR = max(x, 0)**2.24 (the NTIRE gamma), in [0,1] for inputs in [0,1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0) ** NTIRE_GAMMA


class Landis(nn.Module):
    """Landis's expansion operator (H. Landis, "Production-ready global illumination", SIGGRAPH 2002 course notes),
    in the form given by Banterle et al. (CGF 2009, "High dynamic range imaging and low dynamic range expansion for
    generating HDR content", and their book "Advanced High Dynamic Range Imaging"), written here from that formula.

    With L the luminance of the linearised input (x**2.24, BT.709 weights), in [0, 1]:
        L_w = L                                    if L < threshold
        L_w = (1 − k)·L + k·max_luminance·L        otherwise, with k = ((L − threshold) / (1 − threshold))**alpha
    so pixels below the threshold keep their linear value, and the expansion grows smoothly (k = 0 at the threshold,
    continuous there) to max_luminance at L = 1. Colour is kept by scaling the linear RGB of each pixel by L_w / L.

    Args:
        threshold: linear luminance R above which pixels are expanded; 0.5, the value Banterle et al. report for
            Landis's original.
        alpha: fall-off exponent of the expansion; 2.0, the value commonly used for this operator (we could not
            check it against the 2002 course notes themselves).
        max_luminance: the expanded value of a fully saturated pixel (L = 1), relative to the input's clipping
            level, since the zoo's linear outputs are aligned to the input exposure (``linear_relative``). 10.0
            (≈ 3.3 stops) is our choice, near the peak of NTIRE 2021 frames (gamma ≈ 3, linear ≈ 12); in Banterle's
            formulation it is the maximum the user wants for the expanded image, with no fixed default.

    Input x is clamped to [0, 1] (the LDR range). Output: linear relative HDR, (B,3,H,W), in [0, max_luminance];
    monotone in every input value.
    """

    def __init__(self, threshold: float = 0.5, alpha: float = 2.0, max_luminance: float = 10.0):
        super().__init__()
        if not 0.0 <= threshold < 1.0:
            raise ZooError(f"landis: threshold must be in [0, 1), got {threshold}")
        if not alpha > 0:
            raise ZooError(f"landis: alpha must be positive, got {alpha}")
        if not max_luminance >= 1.0:
            raise ZooError(f"landis: max_luminance must be ≥ 1 (an expansion), got {max_luminance}")
        self.threshold = threshold
        self.alpha = alpha
        self.max_luminance = max_luminance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear = x.clamp(0, 1) ** NTIRE_GAMMA
        luminance = sum(w * linear[:, c : c + 1] for c, w in enumerate(LUMINANCE_WEIGHTS))
        # L_w / L = 1 + k·(max_luminance − 1): a per-pixel gain, so a black pixel needs no division by zero.
        k = ((luminance - self.threshold).clamp_min(0) / (1 - self.threshold)) ** self.alpha
        return linear * (1 + k * (self.max_luminance - 1))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, alpha={self.alpha}, max_luminance={self.max_luminance}"


def no_training() -> Recipe:
    """Baselines have nothing to learn: a recipe without stages (the loop then only evaluates)."""
    return Recipe(stages=(), notes="non-learned baseline: no training")


def _baseline(name: str, build, output_domain: str, paper: str, description: str) -> ModelSpec:
    return register(
        ModelSpec(
            name=name,
            build=build,
            output_domain=output_domain,
            size_multiple=1,
            paper=paper,
            code_licence="MIT (this implementation)",
            weights_licence="none (no weights)",
            recipe=no_training,
            is_baseline=True,
            description=description,
        )
    )


IDENTITY = _baseline(
    "identity", Identity, "ntire_gamma", "none (baseline: LDR input as HDR)",
    "LDR input read as NTIRE gamma-encoded HDR; no reconstruction",
)  # fmt: skip
INVERSE_GAMMA = _baseline(
    "inverse_gamma", InverseGamma, "linear_relative", "none (baseline: inverse gamma 2.24)",
    "LDR input linearised with the NTIRE gamma 2.24; scores as identity under the NTIRE encoding",
)  # fmt: skip
LANDIS = _baseline(
    "landis", Landis, "linear_relative",
    "Landis, Production-ready global illumination, SIGGRAPH 2002 Course Notes 16 (formula as in Banterle et al., "
    "CGF 2009)",
    "classic expansion operator: linearise, expand luminance above a threshold with a power fall-off",
)  # fmt: skip
