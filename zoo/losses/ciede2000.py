"""Differentiable CIEDE2000 colour difference (Sharma, Wu & Dalal 2005) and sRGB → CIELAB, in torch.

No torch library provides ΔE2000 (docs/environment.md), hence this module. Values follow scikit-image exactly:
``srgb_to_lab`` matches ``skimage.color.rgb2lab`` (D65, 2° observer, the same matrix and the CIE-approximate
constants 0.008856 / 7.787), ``delta_e_ciede2000`` matches ``skimage.color.deltaE_ciede2000`` (and colour-science's
``delta_E(method="CIE 2000")``), including the zero-chroma conventions (hue 0; Δh = 0 and h̄ = h1 + h2 when
C1'·C2' = 0).

Gradients. CIEDE2000 has points where autograd would produce NaN or inf: sqrt at 0 (chroma of a grey or black pixel,
the final ΔE of identical colours, the (C̄^7 / (C̄^7 + 25^7))^½ terms) and atan2 at (0, 0) (hue of a zero-chroma
colour). The value is always computed exactly; only the *backward* pass goes through guarded stand-ins:
sqrt(x) is differentiated as sqrt(x + eps) (finite, and non-zero near 0), and the hue is differentiated as a constant
where the squared chroma is below ``eps``. Near those points the true derivative is infinite or undefined, so any
finite choice is a surrogate; away from them (squared chroma, ΔE² ≥ ~eps) the gradient is the exact one.

Inputs outside [0, 1] are allowed (HDR values in the NTIRE gamma encoding go above 1): the sRGB curve and the Lab
cube root are continued as the formulas are, exactly as scikit-image does.
"""

from __future__ import annotations

import math

import torch

# sRGB (D65) → XYZ and the D65 2° white point, as in skimage.color (xyz_from_rgb, illuminant "D65", observer "2").
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_TWO_PI = 2 * math.pi
_25_POW_7 = 25.0**7
DEFAULT_EPS = 1e-8


def _srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    # The clamp keeps the unselected branch finite for negative inputs (a NaN there would poison the where's gradient).
    return torch.where(c > 0.04045, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, c / 12.92)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.008856, t.clamp_min(0.008856) ** (1 / 3), 7.787 * t + 16 / 116)


def srgb_to_lab(rgb: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """CIELAB (L in [0, 100] for inputs in [0, 1]; a, b roughly ±100) of sRGB-encoded ``rgb``, channels on ``dim``
    (e.g. (B, 3, H, W) with dim 1). Same shape and dtype as the input."""
    r, g, b = (_srgb_to_linear(c) for c in rgb.unbind(dim))
    x, y, z = ((m[0] * r + m[1] * g + m[2] * b) / white for m, white in zip(_XYZ_FROM_RGB, _WHITE_D65, strict=True))
    fx, fy, fz = _lab_f(x), _lab_f(y), _lab_f(z)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=dim)


def _sqrt(x: torch.Tensor, eps: float) -> torch.Tensor:
    """sqrt(max(x, 0)) exactly in value; differentiated as sqrt(max(x, 0) + eps) (finite at 0)."""
    x = x.clamp_min(0)
    smooth = torch.sqrt(x + eps)
    return smooth + (torch.sqrt(x) - smooth).detach()


def _hue(a: torch.Tensor, b: torch.Tensor, chroma_sq: torch.Tensor, eps: float) -> torch.Tensor:
    """Hue angle in [0, 2π) (0 for a = b = 0, as atan2(0, 0)); no gradient where the squared chroma is below eps."""
    small = chroma_sq < eps
    exact = torch.atan2(b, a).detach()
    guarded = torch.atan2(torch.where(small, torch.zeros_like(b), b), torch.where(small, torch.ones_like(a), a))
    hue = guarded + (exact - guarded).detach()
    return torch.where(hue < 0, hue + _TWO_PI, hue)


def delta_e_ciede2000(
    lab1: torch.Tensor,
    lab2: torch.Tensor,
    dim: int = 1,
    k_l: float = 1.0,
    k_c: float = 1.0,
    k_h: float = 1.0,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """CIEDE2000 ΔE between CIELAB colours (channels L, a, b on ``dim``); the result drops ``dim``. Symmetric,
    0 for identical colours, about 1 for a just-noticeable difference. ``eps`` only shapes gradients (module
    docstring)."""
    l1, a1, b1 = lab1.unbind(dim)
    l2, a2, b2 = lab2.unbind(dim)

    # a' stretches a by (1 + G), G from the mean chroma; C', h' are polar coordinates of (a', b).
    c_mean = 0.5 * (_sqrt(a1 * a1 + b1 * b1, eps) + _sqrt(a2 * a2 + b2 * b2, eps))
    c7 = c_mean**7
    g = 0.5 * (1 - _sqrt(c7 / (c7 + _25_POW_7), eps))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1_sq, c2_sq = a1p * a1p + b1 * b1, a2p * a2p + b2 * b2
    c1, c2 = _sqrt(c1_sq, eps), _sqrt(c2_sq, eps)
    h1, h2 = _hue(a1p, b1, c1_sq, eps), _hue(a2p, b2, c2_sq, eps)

    # Lightness.
    l_mean = 0.5 * (l1 + l2)
    l_off = (l_mean - 50) ** 2
    s_l = 1 + 0.015 * l_off / torch.sqrt(20 + l_off)
    l_term = (l2 - l1) / (k_l * s_l)

    # Chroma.
    cp_mean = 0.5 * (c1 + c2)
    s_c = 1 + 0.045 * cp_mean
    c_term = (c2 - c1) / (k_c * s_c)

    # Hue: Δh wrapped to [-π, π], 0 (and h̄ = h1 + h2) when either chroma is zero.
    h_diff = h2 - h1
    h_sum = h1 + h2
    chroma_product = c1 * c2
    achromatic = (c1_sq == 0) | (c2_sq == 0)
    dh = torch.where(h_diff > math.pi, h_diff - _TWO_PI, torch.where(h_diff < -math.pi, h_diff + _TWO_PI, h_diff))
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    big_h_term = 2 * _sqrt(chroma_product, eps) * torch.sin(dh / 2)
    wrap = (~achromatic) & (h_diff.abs() > math.pi)
    h_mean = torch.where(wrap & (h_sum < _TWO_PI), h_sum + _TWO_PI, torch.where(wrap, h_sum - _TWO_PI, h_sum))
    h_mean = torch.where(achromatic, h_mean, 0.5 * h_mean)
    t = (
        1
        - 0.17 * torch.cos(h_mean - math.radians(30))
        + 0.24 * torch.cos(2 * h_mean)
        + 0.32 * torch.cos(3 * h_mean + math.radians(6))
        - 0.20 * torch.cos(4 * h_mean - math.radians(63))
    )
    s_h = 1 + 0.015 * cp_mean * t
    h_term = big_h_term / (k_h * s_h)

    # Hue rotation (matters for blues around h̄ = 275°).
    cp7 = cp_mean**7
    r_c = 2 * _sqrt(cp7 / (cp7 + _25_POW_7), eps)
    d_theta = math.radians(30) * torch.exp(-(((torch.rad2deg(h_mean) - 275) / 25) ** 2))
    r_term = -torch.sin(2 * d_theta) * r_c * c_term * h_term

    return _sqrt(l_term**2 + c_term**2 + h_term**2 + r_term, eps)


def ciede2000_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Mean CIEDE2000 ΔE between two sRGB-encoded images (B, 3, H, W), compared as sRGB colours (values above 1 are
    extrapolated, as scikit-image's rgb2lab does). A scalar ≥ 0, in ΔE units (0–~100)."""
    return delta_e_ciede2000(srgb_to_lab(prediction), srgb_to_lab(target), dim=1, eps=eps).mean()
