"""Image-quality metrics, each tied to the protocol it belongs to (docs/evaluation.md).

Every metric takes ``(reference, result)`` in that order: H×W×3 float images (numpy arrays or torch tensors) in the
**NTIRE 2021 encoding**, i.e. relative HDR gamma-encoded with exponent 1/2.24 (linear = x**2.24; values above 1 are
normal). Inputs are converted to numpy float32 first, as the organizer's read rule produces float32, so float64 and
torch inputs score exactly like the organizer's files. Each returns a Python float (dB for the PSNRs).

Metric keys carry their protocol (``psnr_mu_ntire``, ``pu21_psnr_rgb``) and ``PROTOCOL`` holds the parameters that
every results row must record, because protocols in circulation differ by 10 dB or more on the same images.

Conventions shared by all metrics:
- the reference must be finite, ≥ 0 and not all zero, and for the μ-law metrics have a positive 99th percentile
  (otherwise ``ZooError``);
- negative result values are clamped to 0 before any fractional power (the organizer code gives NaN there, and
  HDRUNet's validation clamps the same way); PSNR-L uses the values as they are, like the organizer;
- a result containing NaN/inf is a broken model, not a user error: it scores NaN rather than raising;
- identical images give +inf for the PSNRs (returned, never a crash).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import correlate1d

from zoo.crf_correction import RGB_TO_XYZ, crf_correct
from zoo.domains import NTIRE_GAMMA
from zoo.errors import ZooError

Image = np.ndarray | torch.Tensor

NTIRE_PERCENTILE = 99
NTIRE_MU = 5000.0

# PU21 'banding_glare' parameters p1…p7 (Mantiuk & Azimi, PCS 2021; gfxdisp/pu21), and the luminance range it encodes.
PU21_BANDING_GLARE = (
    0.353487901,
    0.3734658629,
    8.277049286e-05,
    0.9062562627,
    0.09150303166,
    0.9099517204,
    596.3148142,
)
PU21_MIN_LUMINANCE = 0.005  # cd/m²
PU21_MAX_LUMINANCE = 10000.0  # cd/m²
PU21_PSNR_PEAK = 256.0  # the peak used by pu21_metric.m: PU21 maps 100 cd/m² to ≈ 256
PU21_PEAK_LUMINANCE = 4000.0  # cd/m², display peak of the SI-HDR example script

# SSIM (Wang et al. 2004): 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1.
MIN_SIDE = 11  # the smallest image side every metric can score (one SSIM window)
LUMINANCE_WEIGHTS = tuple(float(w) for w in RGB_TO_XYZ[1])  # Rec. 709 Y row (0.212656, ...), as pu21_metric.m
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1, SSIM_K2 = 0.01, 0.03

PROTOCOL: dict[str, str | float | int | bool] = {
    "metrics_version": 2,
    "input_encoding": "ntire_gamma",
    "ntire_gamma": NTIRE_GAMMA,
    "ntire_percentile": NTIRE_PERCENTILE,
    "ntire_percentile_of": "reference",
    "ntire_mu": NTIRE_MU,
    "ntire_tonemap": "log(1+mu*tanh(x/p))/log(1+mu)",
    "psnr_l_norm": "max(reference)",
    "result_clamp": "result >= 0 before powers (psnr_mu, ssim_mu, pu21)",
    "ssim": "gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, range 1, valid window, mean of per-channel SSIM",
    "pu21_params": "banding_glare",
    "pu21_encoding": "rgb per channel",
    "pu21_psnr_peak": PU21_PSNR_PEAK,
    "pu21_scale_rule": "reference_peak",  # linear·k with k = peak_luminance / max(reference linear), same k for both
    "pu21_peak_luminance": PU21_PEAK_LUMINANCE,
    "pu21_luminance_range": f"[{PU21_MIN_LUMINANCE}, {PU21_MAX_LUMINANCE:g}] cd/m2",
    "crf_correction": "none for pu21_*; *_crf: SI-HDR crf_correction.m defaults (deg 3, lambda 0.01, pq, luv)",
    "sihdr_luminance": f"Rec. 709 {LUMINANCE_WEIGHTS}",
    "pu21_ssim": "SSIM of PU21-encoded luminance, data range 256, valid windows",
}


# ------------------------------------------------------------------------------------------------- input checks


def _as_image(x: Image, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise ZooError(f"{name}: expected float values in the NTIRE gamma encoding, got a {x.dtype} tensor")
        x = x.detach().to("cpu", torch.float32).numpy()
    else:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise ZooError(
                f"{name}: expected float values in the NTIRE gamma encoding, got dtype {x.dtype} "
                "(a 16-bit NTIRE PNG must be divided by its alignratio first)"
            )
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ZooError(f"{name}: expected an H×W×3 image (channels last), got shape {tuple(x.shape)}")
    return x.astype(np.float32, copy=False)


def _pair(reference: Image, result: Image) -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 (reference, result)."""
    ref = _as_image(reference, "reference")
    res = _as_image(result, "result")
    if ref.shape != res.shape:
        raise ZooError(f"result: shape {res.shape} differs from the reference shape {ref.shape}")
    if not np.isfinite(ref).all():
        raise ZooError("reference: contains NaN or inf values; expected finite NTIRE-encoded values")
    if ref.min() < 0:
        raise ZooError(f"reference: contains negative values (min {ref.min():g}); expected NTIRE-encoded values ≥ 0")
    if ref.max() <= 0:
        raise ZooError("reference: is all zero; expected an image with a positive maximum")
    return ref, res


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean(np.square(a - b), dtype=np.float64))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse) if math.isfinite(mse) else math.nan


def _linear(x: np.ndarray) -> np.ndarray:
    """NTIRE encoding → linear relative radiance, negatives clamped to 0 (a fractional power of them is NaN)."""
    return np.maximum(x, 0) ** NTIRE_GAMMA


# ------------------------------------------------------------------------------------------------- NTIRE 2021


def psnr_l(reference: Image, result: Image) -> float:
    """NTIRE 2021 "PSNR-L" (organizer ``normalized_psnr``), in dB, peak 1.

    Both images are NTIRE gamma-encoded H×W×3 (relative HDR, linear = x**2.24), divided by the reference maximum
    over all values; no linearisation and no clipping ("L" does not mean linear). Protocol ``psnr_l_ntire``.
    """
    ref, res = _pair(reference, result)
    norm = ref.max()
    return _psnr(ref / norm, res / norm)


def ntire_mu_tonemap(image: Image, reference: Image) -> np.ndarray:
    """The NTIRE 2021 μ-law tone map of ``image``, with the normalisation taken from ``reference``.

    Both are NTIRE gamma-encoded H×W×3. With p the 99th percentile of reference**2.24 over all values (NumPy's
    linear interpolation), returns log(1 + 5000·tanh(x/p)) / log(1 + 5000) for x = max(image, 0)**2.24: float
    values in [0, 1). This is the image pair PSNR-μ and SSIM-μ compare.
    """
    ref, img = _pair(reference, image)
    return _tonemap(_linear(img), _percentile(ref**NTIRE_GAMMA))


def mu_norm(reference: Image) -> float:
    """The normalisation of the NTIRE μ-law for ``reference`` (its linear 99th percentile), as ``psnr_mu`` uses it."""
    return float(_percentile(_as_image(reference, "reference").astype(np.float32) ** NTIRE_GAMMA))


def _percentile(ref_linear: np.ndarray) -> np.floating:
    """99th percentile of the reference's linear values over all values: the μ-law's normalisation."""
    norm = np.percentile(ref_linear, NTIRE_PERCENTILE)
    if not norm > 0:
        raise ZooError(
            "reference: its 99th percentile is 0 (over 99 % of the values are black); the NTIRE mu-law "
            "tone map needs a positive percentile"
        )
    return norm


def _tonemap(linear: np.ndarray, norm: np.floating) -> np.ndarray:
    return np.log(1 + NTIRE_MU * np.tanh(linear / norm)) / np.log(1 + NTIRE_MU)


def psnr_mu(reference: Image, result: Image) -> float:
    """NTIRE 2021 "PSNR-μ" (organizer ``psnr_tanh_norm_mu_tonemap``, percentile 99, gamma 2.24), in dB, peak 1.

    Both images are NTIRE gamma-encoded H×W×3, linearised with **2.24 and tone-mapped by the tanh μ-law (μ = 5000)
    normalised by the 99th percentile of the *reference* only (``ntire_mu_tonemap``). Deviation: the result is
    clamped ≥ 0 before the power; the organizer code returns NaN for any negative value. Protocol ``psnr_mu_ntire``.
    """
    ref, res = _pair(reference, result)
    ref_linear = ref**NTIRE_GAMMA
    norm = _percentile(ref_linear)
    return _psnr(_tonemap(ref_linear, norm), _tonemap(_linear(res), norm))


# ------------------------------------------------------------------------------------------------- SSIM


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    window = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return window / window.sum()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Separable 11×11 Gaussian mean over H and W, keeping only windows that lie inside the image (Wang et al.'s
    'valid' filtering; the same as scikit-image's crop of the padded border)."""
    window = _gaussian_window()
    x = correlate1d(correlate1d(x, window, axis=0), window, axis=1)
    r = SSIM_RADIUS
    return x[r:-r, r:-r]


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two H×W×C arrays: Gaussian window 11×11, σ 1.5, K1 0.01, K2 0.03, population
    (not sample) covariances, averaged over the valid windows of each channel, then over channels."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a), _filter_valid(b)
    var_a = _filter_valid(a * a) - mu_a**2
    var_b = _filter_valid(b * b) - mu_b**2
    cov = _filter_valid(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean(axis=(0, 1)).mean())


def ssim_mu(reference: Image, result: Image) -> float:
    """SSIM on the NTIRE μ-law tone-mapped images (``ntire_mu_tonemap``, percentile from the reference), in [−1, 1].

    Inputs are NTIRE gamma-encoded H×W×3 with H, W ≥ 11. SSIM is Wang et al.'s (``ssim``): Gaussian 11×11 window,
    σ 1.5, K1 0.01, K2 0.03, data range 1 (the tone map's range), computed per RGB channel and averaged. It matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=1, channel_axis=-1)``. Not an organizer metric; protocol ``ssim_mu_ntire``.
    """
    ref, res = _pair(reference, result)
    if min(ref.shape[:2]) < 2 * SSIM_RADIUS + 1:
        raise ZooError(
            f"reference: SSIM needs images of at least {MIN_SIDE}×{MIN_SIDE} pixels, got "
            f"{ref.shape[0]}×{ref.shape[1]}"
        )
    ref_linear = ref**NTIRE_GAMMA
    norm = _percentile(ref_linear)
    return ssim(_tonemap(ref_linear, norm), _tonemap(_linear(res), norm))


# ------------------------------------------------------------------------------------------------- PU21


def pu21_encode(luminance: Image) -> Image:
    """PU21 encoding (``banding_glare`` parameters) of absolute luminance in cd/m², any shape, numpy or torch.

    Values are clamped to [0.005, 10000] cd/m² first; the output is in PU units, ≈ 0 at 0.005 cd/m², ≈ 256 at
    100 cd/m² and ≈ 595 at 10000 cd/m² (monotone). Torch inputs stay differentiable.
    """
    p1, p2, p3, p4, p5, p6, p7 = PU21_BANDING_GLARE
    if isinstance(luminance, torch.Tensor):
        y = luminance.clamp(PU21_MIN_LUMINANCE, PU21_MAX_LUMINANCE) ** p4
        return (p7 * (((p1 + p2 * y) / (1 + p3 * y)) ** p5 - p6)).clamp_min(0)
    y = np.clip(np.asarray(luminance, np.float64), PU21_MIN_LUMINANCE, PU21_MAX_LUMINANCE) ** p4
    return np.maximum(p7 * (((p1 + p2 * y) / (1 + p3 * y)) ** p5 - p6), 0)


def to_absolute(
    reference: Image, result: Image, peak_luminance: float = PU21_PEAK_LUMINANCE
) -> tuple[np.ndarray, np.ndarray]:
    """Map NTIRE gamma-encoded (reference, result) to absolute linear luminance in cd/m² (float64, unclamped).

    Scale rule ``reference_peak``: both are linearised (x**2.24, result clamped ≥ 0) and multiplied by the same
    factor, chosen so that the reference's maximum over all values equals ``peak_luminance``. The result is never
    used to choose the scale, so it cannot improve its score by its own exposure.
    """
    if not peak_luminance > 0:
        raise ZooError(f"peak_luminance: expected a positive luminance in cd/m², got {peak_luminance}")
    ref, res = _pair(reference, result)
    ref_linear = ref.astype(np.float64) ** NTIRE_GAMMA
    scale = peak_luminance / ref_linear.max()
    return ref_linear * scale, _linear(res.astype(np.float64)) * scale


def pu21_psnr(reference: Image, result: Image, peak_luminance: float = PU21_PEAK_LUMINANCE) -> float:
    """PU21-PSNR ('PSNR' variant of ``pu21_metric.m``: every RGB channel PU21-encoded, peak 256), in dB.

    Inputs are NTIRE gamma-encoded H×W×3 relative HDR. They are mapped to absolute luminance by ``to_absolute``
    (reference peak = ``peak_luminance`` cd/m², same factor for the result), clamped to [0.005, 10000] cd/m² and
    encoded with ``pu21_encode``. No CRF correction. Protocol ``pu21_psnr_rgb`` (record the peak and scale rule).
    """
    ref_abs, res_abs = to_absolute(reference, result, peak_luminance)
    return _psnr(pu21_encode(ref_abs), pu21_encode(res_abs), peak=PU21_PSNR_PEAK)


# ------------------------------------------------------------------------------------------------- SI-HDR


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of H×W×3 linear RGB (the weights of ``pu21_metric.m``)."""
    return rgb @ np.asarray(LUMINANCE_WEIGHTS)


def _sihdr_scores(ref_abs: np.ndarray, res_abs: np.ndarray, suffix: str) -> dict[str, float]:
    """PU21-PSNR on RGB and on luminance, PU21-SSIM on luminance, of absolute (reference, result)."""
    pu_ref, pu_res = pu21_encode(luminance(ref_abs))[..., None], pu21_encode(luminance(res_abs))[..., None]
    return {
        f"pu21_psnr_rgb{suffix}": _psnr(pu21_encode(ref_abs), pu21_encode(res_abs), peak=PU21_PSNR_PEAK),
        f"pu21_psnr_y{suffix}": _psnr(pu_ref, pu_res, peak=PU21_PSNR_PEAK),
        f"pu21_ssim_y{suffix}": ssim(pu_ref, pu_res, data_range=PU21_PSNR_PEAK),
    }


def sihdr_metrics(reference: Image, result: Image, peak_luminance: float = PU21_PEAK_LUMINANCE) -> dict[str, float]:
    """The SI-HDR protocol (Hanji et al. 2022) on NTIRE gamma-encoded H×W×3 (reference, result), H, W ≥ 11.

    Both are mapped to absolute linear RGB by ``to_absolute`` (reference peak = ``peak_luminance`` cd/m², the same
    factor for the result), PU21-encoded (``banding_glare``) per RGB channel (``pu21_psnr_rgb``) or on Rec. 709
    luminance (``pu21_psnr_y``, ``pu21_ssim_y``: SSIM with data range 256, as ``pu21_metric.m``; the zoo's SSIM uses
    valid windows where MATLAB's pads), then scored as they are and after the CRF correction of the result against the
    reference (``zoo.crf_correction``; keys ``*_crf``). A non-finite result scores NaN everywhere.
    """
    ref_abs, res_abs = to_absolute(reference, result, peak_luminance)
    if min(ref_abs.shape[:2]) < MIN_SIDE:
        raise ZooError(
            f"reference: SSIM needs images of at least {MIN_SIDE}×{MIN_SIDE} pixels, got "
            f"{ref_abs.shape[0]}×{ref_abs.shape[1]}"
        )
    if not np.isfinite(res_abs).all():
        return dict.fromkeys(SIHDR_KEYS, math.nan)
    return {**_sihdr_scores(ref_abs, res_abs, ""), **_sihdr_scores(ref_abs, crf_correct(ref_abs, res_abs), "_crf")}


def _sihdr(key: str) -> Callable[[Image, Image], float]:
    def metric(reference: Image, result: Image) -> float:
        return sihdr_metrics(reference, result)[key]

    metric.__name__ = key
    metric.__doc__ = f"``sihdr_metrics(reference, result)[{key!r}]`` (one key of the SI-HDR protocol)."
    return metric


# ------------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Metric:
    """A metric key, the function computing it from NTIRE-encoded (reference, result), and its protocol."""

    name: str
    fn: Callable[[Image, Image], float]
    protocol: str
    unit: str
    family: str = "ntire"  # the protocol family: "ntire" or "si-hdr"; a report table never mixes families
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("psnr_l_ntire", psnr_l, "NTIRE 2021 PSNR-L (gamma-encoded, / max(reference))", "dB"),
        Metric("psnr_mu_ntire", psnr_mu, "NTIRE 2021 PSNR-mu (tanh mu-law, reference p99)", "dB"),
        Metric("ssim_mu_ntire", ssim_mu, "SSIM on the NTIRE 2021 mu-law tone-mapped images", ""),
        Metric(
            "pu21_psnr_rgb",
            pu21_psnr,
            "PU21-PSNR RGB, reference peak -> 4000 cd/m2, no CRF correction",
            "dB",
            family="si-hdr",
        ),
        Metric(
            "pu21_psnr_y", _sihdr("pu21_psnr_y"), "PU21-PSNR on luminance, no CRF correction", "dB", family="si-hdr"
        ),
        Metric("pu21_ssim_y", _sihdr("pu21_ssim_y"), "PU21-SSIM on luminance, no CRF correction", "", family="si-hdr"),
        Metric(
            "pu21_psnr_rgb_crf",
            _sihdr("pu21_psnr_rgb_crf"),
            "PU21-PSNR RGB after SI-HDR CRF correction",
            "dB",
            family="si-hdr",
        ),
        Metric(
            "pu21_psnr_y_crf",
            _sihdr("pu21_psnr_y_crf"),
            "PU21-PSNR luminance after SI-HDR CRF correction",
            "dB",
            family="si-hdr",
        ),
        Metric(
            "pu21_ssim_y_crf",
            _sihdr("pu21_ssim_y_crf"),
            "PU21-SSIM luminance after SI-HDR CRF correction",
            "",
            family="si-hdr",
        ),
    )
}
SIHDR_KEYS = tuple(name for name, m in METRICS.items() if m.family == "si-hdr")


def compute_all(reference: Image, result: Image) -> dict[str, float]:
    """Every metric in ``METRICS`` for one NTIRE gamma-encoded H×W×3 (reference, result) pair, with ``PROTOCOL``'s
    parameters, as {key: value}. Inputs are converted to numpy float32 once and shared by the metrics."""
    ref, res = _pair(reference, result)
    values = {name: metric.fn(ref, res) for name, metric in METRICS.items() if metric.family == "ntire"}
    return {**values, **sihdr_metrics(ref, res)}  # one CRF fit for the three corrected scores
