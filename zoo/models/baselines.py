"""Non-learned baselines: what a learned model must beat.

- ``identity``: the LDR input read as NTIRE gamma-encoded HDR (output domain ``ntire_gamma``): the photo left alone.
- ``inverse_gamma``: the input linearised with the **sRGB EOTF** (IEC 61966-2-1, ``linear_relative``), i.e. what
  "undo the display encoding" means for an sRGB photo. Until metrics v2 it used the NTIRE exponent 2.24, which made it
  the very same function as ``identity`` under the NTIRE encoding (x^2.24, then x^(1/2.24)), so two baselines tied in
  every table; with the sRGB curve it differs in the shadows (the linear toe) and mid-tones (≈ 2.2 vs 2.24).
- ``tone_cheat``: a global exposure and gamma, ``scale · x^gamma``, that reconstructs nothing: the kind of
  non-reconstructing operation that competes with deep methods on standard metrics (Eilertsen, Hajisharif, Hanji,
  Tsirikoglou, Mantiuk, Unger, "How to cheat with metrics in single-image HDR reconstruction", ICCVW 2021). Its two
  numbers are fitted once, without any evaluation reference, by ``python scripts/fit_tone_cheat.py`` (grid search of
  the mean PU21-PSNR on synthetic scenes of another data seed than the evaluation sets'); the values and the command's
  output are recorded below.
- ``landis``: Landis's expansion operator (2002), the classic global expansion of highlights.
- ``akyuz``: Akyüz et al. 2007: a linear (γ = 1) expansion of the normalised LDR values to a peak.
- ``masia``: Masia et al. 2009: a gamma expansion whose exponent follows the image key.

All take x (B,3,H,W) in [0,1] sRGB LDR of any size and work per image (global statistics) or per pixel, so no padding
is needed (size multiple 1). They have no parameters and no training (their recipe has no stages).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.domains import NTIRE_GAMMA
from zoo.errors import ZooError
from zoo.recipe import Recipe
from zoo.registry import ModelSpec, register

# BT.709 luminance weights, for the linearised input.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


class Identity(nn.Module):
    """Returns the input unchanged: LDR values in [0,1] read as NTIRE gamma-encoded relative HDR."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The sRGB EOTF (IEC 61966-2-1): linear toe below 0.04045, then ((x + 0.055) / 1.055)^2.4."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _luminance(linear: torch.Tensor) -> torch.Tensor:
    return sum(w * linear[:, c : c + 1] for c, w in enumerate(LUMINANCE_WEIGHTS))


class InverseGamma(nn.Module):
    """Linear relative HDR = the sRGB EOTF of the input, in [0, 1] for inputs in [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return srgb_to_linear(x)


# Fitted by `python scripts/fit_tone_cheat.py` (see its docstring): grid search over scale × gamma of the mean
# PU21-PSNR on 32 synthetic scenes of data seed 1 (the evaluation sets use seed 0 and the real scenes); it printed
# "best: scale 0.8409, gamma 1.6: mean PU21-PSNR 18.63 dB" against 17.91 dB for identity on the same scenes.
TONE_CHEAT_SCALE = 0.8409
TONE_CHEAT_GAMMA = 1.6


class ToneCheat(nn.Module):
    """``scale · x^gamma`` per pixel: a global exposure and tone change that reconstructs nothing (Eilertsen et al.
    2021). Output linear relative HDR in [0, scale]."""

    def __init__(self, scale: float = TONE_CHEAT_SCALE, gamma: float = TONE_CHEAT_GAMMA):
        super().__init__()
        if not (scale > 0 and gamma > 0):
            raise ZooError(f"tone_cheat: scale and gamma must be positive, got scale={scale}, gamma={gamma}")
        self.scale, self.gamma = scale, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.clamp(0, 1) ** self.gamma

    def extra_repr(self) -> str:
        return f"scale={self.scale}, gamma={self.gamma}"


class Akyuz(nn.Module):
    """Akyüz, Fleming, Riecke, Reinhard, Bülthoff, "Do HDR displays support LDR content? A psychophysical
    evaluation", SIGGRAPH 2007, written from the paper's formula:
        L_w = k · ((L_d − L_d,min) / (L_d,max − L_d,min))^γ
    with L_d the luminance of the LDR pixel, min and max over the image, k the peak and γ = 1 (the value the
    observers preferred: a linear expansion). L_d is taken on the sRGB-linearised input (the paper works on
    display luminance); colour is kept by scaling each pixel's linear RGB by L_w / L_d. ``peak`` is the expanded
    value of the brightest pixel relative to the input's clipping level (``linear_relative``); 10.0 as for
    ``landis``. A flat image (max = min) is returned linearised, unscaled.
    """

    def __init__(self, peak: float = 10.0, gamma: float = 1.0):
        super().__init__()
        if not (peak >= 1.0 and gamma > 0):
            raise ZooError(f"akyuz: peak must be ≥ 1 and gamma positive, got peak={peak}, gamma={gamma}")
        self.peak, self.gamma = peak, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear = srgb_to_linear(x)
        lum = _luminance(linear)
        low, high = lum.amin(dim=(2, 3), keepdim=True), lum.amax(dim=(2, 3), keepdim=True)
        span = (high - low).clamp_min(1e-6)
        expanded = self.peak * ((lum - low) / span).clamp(0, 1) ** self.gamma
        gain = torch.where(lum > 1e-6, expanded / lum.clamp_min(1e-6), torch.full_like(lum, self.peak))
        return torch.where(high - low > 1e-6, linear * gain, linear)

    def extra_repr(self) -> str:
        return f"peak={self.peak}, gamma={self.gamma}"


MASIA_A, MASIA_B = 10.44, -6.282  # Masia et al. 2009, the linear fit γ(k) = a·k + b to their observers


class Masia(nn.Module):
    """Masia, Agustin, Fleming, Sorkine, Gutierrez, "Evaluation of reverse tone mapping through varying exposure
    conditions", SIGGRAPH Asia 2009, written from the paper's formulas: the image key
        k = (log L_avg − log L_min) / (log L_max − log L_min)
    (L_avg the log-average luminance, min and max over the image, on the sRGB-linearised input) sets the exponent
    γ = 10.44·k − 6.282, and each pixel's luminance becomes L^γ (colour kept by the per-pixel ratio). Our choices:
    luminances are floored at 1e-4 before the logs (a black pixel has no logarithm), and γ is clamped to [1, 10]: the
    fit gives γ < 1 for dark (low-key) images and even γ < 0 below k ≈ 0.6, which would compress or invert instead
    of expanding (the limitation Masia et al. 2017 address). Output linear relative HDR in [0, 1].
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear = srgb_to_linear(x)
        lum = _luminance(linear).clamp_min(1e-4)
        log_lum = lum.log()
        log_avg = log_lum.mean(dim=(2, 3), keepdim=True)
        log_min, log_max = log_lum.amin(dim=(2, 3), keepdim=True), log_lum.amax(dim=(2, 3), keepdim=True)
        key = ((log_avg - log_min) / (log_max - log_min).clamp_min(1e-6)).clamp(0, 1)
        gamma = (MASIA_A * key + MASIA_B).clamp(1.0, 10.0)
        return linear * lum ** (gamma - 1)


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
        luminance = _luminance(linear)
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
    "identity",
    Identity,
    "ntire_gamma",
    "none (baseline: LDR input as HDR)",
    "LDR input read as NTIRE gamma-encoded HDR; no reconstruction",
)
INVERSE_GAMMA = _baseline(
    "inverse_gamma",
    InverseGamma,
    "linear_relative",
    "none (baseline: the sRGB EOTF, IEC 61966-2-1)",
    "LDR input linearised with the sRGB EOTF (differs from identity: sRGB toe and exponent, not the NTIRE 2.24)",
)
TONE_CHEAT = _baseline(
    "tone_cheat",
    ToneCheat,
    "linear_relative",
    "Eilertsen et al., How to cheat with metrics in single-image HDR reconstruction, ICCVW 2021",
    "global exposure and gamma fitted once without evaluation references: reconstructs nothing",
)
AKYUZ = _baseline(
    "akyuz",
    Akyuz,
    "linear_relative",
    "Akyüz et al., Do HDR displays support LDR content?, SIGGRAPH 2007",
    "classic expansion operator: linear expansion of the normalised luminance to a peak",
)
MASIA = _baseline(
    "masia",
    Masia,
    "linear_relative",
    "Masia et al., Evaluation of reverse tone mapping through varying exposure conditions, SIGGRAPH Asia 2009",
    "classic expansion operator: gamma expansion with the exponent set by the image key",
)
LANDIS = _baseline(
    "landis",
    Landis,
    "linear_relative",
    "Landis, Production-ready global illumination, SIGGRAPH 2002 Course Notes 16 (formula as in Banterle et al., "
    "CGF 2009)",
    "classic expansion operator: linearise, expand luminance above a threshold with a power fall-off",
)
