"""The SI-HDR protocol: CRF correction (zoo.crf_correction) and the PU21 metrics on luminance and RGB."""

import math

import cv2
import numpy as np
import pytest

from zoo import metrics
from zoo.crf_correction import crf_correct, pq_decode, pq_encode, rgb_to_yuv, yuv_to_rgb


def scene(seed: int = 0, height: int = 96, width: int = 128) -> np.ndarray:
    """A smooth NTIRE-encoded HDR scene with a bright light (linear peak ≈ 300× the mid-tones)."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 8, 3))
    linear = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0.001) ** 3 * 20
    linear[20:30, 40:70] = 300
    return linear ** (1 / 2.24)


def test_pq_and_colour_transforms_round_trip():
    luminance = np.geomspace(0.005, 1e4, 50)
    np.testing.assert_allclose(pq_decode(pq_encode(luminance)), luminance, rtol=1e-9)
    rgb = np.random.default_rng(0).random((7, 9, 3)) * 500 + 0.01
    np.testing.assert_allclose(yuv_to_rgb(rgb_to_yuv(rgb)), rgb, rtol=1e-9)


def test_an_exact_copy_scores_inf_and_one():
    ref = scene()
    values = metrics.sihdr_metrics(ref, ref.copy())
    assert set(values) == set(metrics.SIHDR_KEYS)
    assert all(values[k] == math.inf for k in values if "psnr" in k)
    assert all(values[k] == pytest.approx(1.0, abs=1e-12) for k in values if "ssim" in k)


def test_a_smooth_monotone_tone_curve_is_forgiven_by_the_correction():
    """The correction undoes what a viewer's tone adjustment would: a global power curve on the reference loses
    > 20 dB of PU21-PSNR-Y raw and keeps > 30 dB corrected."""
    ref = scene()
    toned = (0.3 * (ref**2.24) ** 0.7) ** (1 / 2.24)
    values = metrics.sihdr_metrics(ref, toned)
    assert values["pu21_psnr_y"] < 12 and values["pu21_psnr_y_crf"] > 30
    assert values["pu21_psnr_y_crf"] - values["pu21_psnr_y"] > 20
    assert values["pu21_psnr_rgb_crf"] - values["pu21_psnr_rgb"] > 10
    assert values["pu21_ssim_y_crf"] > values["pu21_ssim_y"] + 0.1


def test_the_correction_cannot_invent_missing_content():
    """A clipped highlight stays wrong after the correction: it is fitted globally, not per pixel."""
    ref = scene()
    clipped = np.minimum(ref, 1.0)  # the light (linear 300) clipped to 1
    values = metrics.sihdr_metrics(ref, clipped)
    assert values["pu21_psnr_y_crf"] < 30


def test_the_raw_rgb_key_is_the_existing_pu21_psnr_and_rows_carry_every_key():
    ref, res = scene(0), scene(1)
    assert metrics.sihdr_metrics(ref, res)["pu21_psnr_rgb"] == metrics.pu21_psnr(ref, res)
    assert set(metrics.compute_all(ref, res)) == set(metrics.METRICS)


def test_correction_fits_luminance_by_least_squares_and_chroma_towards_identity():
    """A pure exposure change in luminance (×0.5) is undone exactly by the luminance fit; chroma is untouched."""
    ref = scene() ** 2.24 * 10
    corrected = crf_correct(ref, ref * 0.5)
    yuv_ref, yuv_out = rgb_to_yuv(np.maximum(ref, 0.005)), rgb_to_yuv(corrected)
    assert np.median(np.abs(yuv_out[..., 0] / yuv_ref[..., 0] - 1)) < 0.02
    np.testing.assert_allclose(yuv_out[..., 1:], yuv_ref[..., 1:], atol=2e-3)


def test_a_non_finite_result_scores_nan_and_a_tiny_image_is_refused():
    ref = scene()
    bad = ref.copy()
    bad[0, 0, 0] = np.nan
    assert all(math.isnan(v) for v in metrics.sihdr_metrics(ref, bad).values())
    with pytest.raises(Exception, match="at least 11×11"):
        metrics.sihdr_metrics(ref[:8, :8], ref[:8, :8])
