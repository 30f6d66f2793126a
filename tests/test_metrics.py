"""zoo.metrics against independent float64 re-derivations of the published formulas (docs/evaluation.md)."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from zoo.errors import ZooError
from zoo.metrics import (
    METRICS,
    PROTOCOL,
    compute_all,
    ntire_mu_tonemap,
    psnr_l,
    psnr_mu,
    pu21_encode,
    pu21_psnr,
    ssim_mu,
)

H, W = 48, 64
DB_TOLERANCE = 1e-3  # docs/evaluation.md: float32 vs float64 differences are ≪ 0.01 dB

PU21 = (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627, 0.09150303166, 0.9099517204, 596.3148142)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """An NTIRE-like reference (gamma-encoded, smooth, a highlight reaching ≈ 3) and a noisy result with some
    negative values, both float32 H×W×3."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W] / np.array([H, W]).reshape(2, 1, 1)
    base = 0.2 + 0.6 * xx[..., None] * np.array([1.0, 0.8, 0.6]) + 0.1 * yy[..., None]
    highlight = 2.2 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.3) ** 2) / 0.01)[..., None]
    reference = (base + highlight + 0.05 * rng.random((H, W, 3))).astype(np.float32)
    result = (reference * 0.9 + 0.08 * rng.standard_normal((H, W, 3))).astype(np.float32)
    result[:3, :3] = -0.05  # negatives, as unclamped model outputs have
    return reference, result


def ref_psnr(a, b, peak=1.0):
    return 10 * np.log10(peak**2 / np.mean((np.float64(a) - np.float64(b)) ** 2))


def ref_tonemap(image, reference):
    """Float64 NTIRE μ-law with the reference's 99th percentile of the linear values."""
    p = np.percentile(np.float64(reference) ** 2.24, 99)
    linear = np.maximum(np.float64(image), 0) ** 2.24
    return np.log(1 + 5000 * np.tanh(linear / p)) / np.log(1 + 5000)


def ref_pu21(y):
    p1, p2, p3, p4, p5, p6, p7 = PU21
    y = np.clip(np.float64(y), 0.005, 10000)
    return np.maximum(p7 * (((p1 + p2 * y**p4) / (1 + p3 * y**p4)) ** p5 - p6), 0)


# ------------------------------------------------------------------------------------------------- PSNR-L


def test_psnr_l_matches_float64_formula(pair):
    reference, result = pair
    m = np.float64(reference).max()
    assert psnr_l(reference, result) == pytest.approx(ref_psnr(reference / m, result / m), abs=DB_TOLERANCE)


def test_psnr_l_known_mse_gives_known_db():
    reference = np.full((8, 8, 3), 2.0, np.float32)  # max 2: errors are halved by the normalisation
    result = reference - 0.2  # normalised error 0.1 everywhere → MSE 0.01 → 20 dB
    assert psnr_l(reference, result) == pytest.approx(20.0, abs=1e-4)


def test_psnr_l_uses_gamma_values_unclipped(pair):
    """No clamping: a negative result value counts with its full error, unlike in PSNR-μ."""
    reference, result = pair
    clamped = np.maximum(result, 0)
    assert psnr_l(reference, result) != pytest.approx(psnr_l(reference, clamped), abs=1e-6)
    assert psnr_mu(reference, result) == pytest.approx(psnr_mu(reference, clamped), abs=1e-9)


# ------------------------------------------------------------------------------------------------- PSNR-μ


def test_psnr_mu_matches_float64_formula(pair):
    reference, result = pair
    expected = ref_psnr(ref_tonemap(reference, reference), ref_tonemap(result, reference))
    assert psnr_mu(reference, result) == pytest.approx(expected, abs=DB_TOLERANCE)


def test_tonemap_maps_the_percentile_to_tanh_one(pair):
    reference, _ = pair
    p = np.percentile(np.float64(reference) ** 2.24, 99)
    image = np.full((4, 4, 3), p ** (1 / 2.24))
    reference_small = reference[:4, :4].copy()
    reference_small[...] = image  # the reference percentile is then p itself
    expected = np.log(1 + 5000 * np.tanh(1.0)) / np.log(5001)
    np.testing.assert_allclose(ntire_mu_tonemap(image, reference_small), expected, rtol=1e-5)


def test_psnr_mu_percentile_comes_from_the_reference(pair):
    reference, result = pair
    swapped = psnr_mu(result.clip(0), reference)
    assert abs(psnr_mu(reference, result.clip(0)) - swapped) > 0.01
    # the swapped call is the formula with the percentile of the (clamped) result
    expected = ref_psnr(ref_tonemap(result.clip(0), result.clip(0)), ref_tonemap(reference, result.clip(0)))
    assert swapped == pytest.approx(expected, abs=DB_TOLERANCE)


def test_keyword_arguments_follow_the_positional_order(pair):
    reference, result = pair
    assert psnr_mu(result=result, reference=reference) == psnr_mu(reference, result)
    assert psnr_l(result=result, reference=reference) == psnr_l(reference, result)


def test_negative_results_are_clamped_not_nan(pair):
    reference, result = pair
    assert (result < 0).any()
    for name in ("psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb"):
        assert math.isfinite(METRICS[name].fn(reference, result)), name


def test_identical_images_give_inf_without_warnings(pair):
    reference, _ = pair
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = compute_all(reference, reference.copy())
    assert scores["psnr_l_ntire"] == math.inf
    assert scores["psnr_mu_ntire"] == math.inf
    assert scores["pu21_psnr_rgb"] == math.inf
    assert scores["ssim_mu_ntire"] == pytest.approx(1.0, abs=1e-12)
    assert all(isinstance(v, float) for v in scores.values())


# ------------------------------------------------------------------------------------------------- SSIM-μ


def test_ssim_mu_matches_skimage_on_tonemapped_images(pair):
    reference, result = pair
    expected = structural_similarity(
        ref_tonemap(reference, reference),
        ref_tonemap(result, reference),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1,
    )
    value = ssim_mu(reference, result)
    assert value == pytest.approx(expected, abs=1e-4)
    assert 0 < value < 1


# ------------------------------------------------------------------------------------------------- PU21


def test_pu21_anchor_values():
    assert pu21_encode(100.0) == pytest.approx(256.4, abs=0.05)
    assert pu21_encode(0.005) == pytest.approx(0.0, abs=1e-6)
    assert pu21_encode(1e-6) == pu21_encode(0.005)  # clamped below
    assert pu21_encode(1e6) == pu21_encode(10000.0)  # clamped above
    y = np.geomspace(0.005, 10000, 200)
    np.testing.assert_allclose(pu21_encode(y), ref_pu21(y), rtol=1e-12)
    assert np.all(np.diff(pu21_encode(y)) > 0)


def test_pu21_encode_torch_matches_numpy_and_has_gradients():
    y = torch.tensor([0.001, 0.5, 100.0, 3000.0], dtype=torch.float64, requires_grad=True)
    encoded = pu21_encode(y)
    np.testing.assert_allclose(encoded.detach().numpy(), pu21_encode(y.detach().numpy()), rtol=1e-12)
    encoded.sum().backward()
    assert y.grad[0] == 0 and (y.grad[1:] > 0).all()  # clamped below 0.005 cd/m²: no gradient


def test_pu21_psnr_matches_float64_formula(pair):
    reference, result = pair
    ref_linear = np.float64(reference) ** 2.24
    scale = 4000.0 / ref_linear.max()
    res_linear = np.maximum(np.float64(result), 0) ** 2.24
    expected = ref_psnr(ref_pu21(ref_linear * scale), ref_pu21(res_linear * scale), peak=256)
    assert pu21_psnr(reference, result) == pytest.approx(expected, abs=1e-6)
    scale_1000 = 1000.0 / ref_linear.max()
    expected_1000 = ref_psnr(ref_pu21(ref_linear * scale_1000), ref_pu21(res_linear * scale_1000), peak=256)
    assert pu21_psnr(reference, result, peak_luminance=1000.0) == pytest.approx(expected_1000, abs=1e-6)


def test_pu21_scale_follows_the_reference_peak(pair):
    """Scaling both images together does not change the score; scaling the result alone does."""
    reference, result = pair
    base = pu21_psnr(reference, result)
    assert pu21_psnr(reference * 1.7, result * 1.7) == pytest.approx(base, abs=1e-3)
    assert abs(pu21_psnr(reference, result * 1.7) - base) > 0.1


# ------------------------------------------------------------------------------------------------- registry, inputs


def test_compute_all_equals_the_individual_metrics(pair):
    reference, result = pair
    scores = compute_all(reference, result)
    assert (
        set(scores)
        == set(METRICS)
        == {
            "psnr_l_ntire",
            "psnr_mu_ntire",
            "ssim_mu_ntire",
            "pu21_psnr_rgb",
            "pu21_psnr_y",
            "pu21_ssim_y",
            "pu21_psnr_rgb_crf",
            "pu21_psnr_y_crf",
            "pu21_ssim_y_crf",
        }
    )
    for key in ("pu21_psnr_y", "pu21_ssim_y", "pu21_psnr_rgb_crf", "pu21_psnr_y_crf", "pu21_ssim_y_crf"):
        assert scores[key] == METRICS[key].fn(reference, result), key  # one shared CRF fit, same values
    assert scores["psnr_l_ntire"] == psnr_l(reference, result)
    assert scores["psnr_mu_ntire"] == psnr_mu(reference, result)
    assert scores["ssim_mu_ntire"] == ssim_mu(reference, result)
    assert scores["pu21_psnr_rgb"] == pu21_psnr(reference, result, peak_luminance=PROTOCOL["pu21_peak_luminance"])


def test_protocol_is_flat_and_row_ready():
    assert all(isinstance(v, (str, int, float, bool)) for v in PROTOCOL.values())
    assert all(m.protocol and m.fn.__doc__ for m in METRICS.values())


def test_torch_and_float64_inputs_score_like_float32_numpy(pair):
    reference, result = pair
    expected = compute_all(reference, result)
    as_torch = compute_all(torch.from_numpy(reference), torch.from_numpy(result).requires_grad_())
    as_float64 = compute_all(np.float64(reference), np.float64(result))
    assert as_torch == expected
    assert as_float64 == expected


@pytest.mark.parametrize(
    "reference, result, words",
    [
        (np.ones((8, 8, 3), np.float32), np.ones((8, 9, 3), np.float32), ["result", "shape"]),
        (np.ones((8, 8), np.float32), np.ones((8, 8), np.float32), ["reference", "H×W×3"]),
        (np.ones((3, 8, 8), np.float32), np.ones((3, 8, 8), np.float32), ["reference", "channels last"]),
        (np.ones((8, 8, 4), np.float32), np.ones((8, 8, 4), np.float32), ["reference", "H×W×3"]),
        (np.ones((8, 8, 3), np.float32), np.ones((8, 8, 4), np.float32), ["result", "H×W×3"]),
        (np.full((8, 8, 3), np.nan, np.float32), np.ones((8, 8, 3), np.float32), ["reference", "NaN"]),
        (np.full((8, 8, 3), np.inf, np.float32), np.ones((8, 8, 3), np.float32), ["reference", "inf"]),
        (np.zeros((8, 8, 3), np.float32), np.ones((8, 8, 3), np.float32), ["reference", "all zero"]),
        (-np.ones((8, 8, 3), np.float32), np.ones((8, 8, 3), np.float32), ["reference", "negative"]),
        (np.ones((8, 8, 3), np.uint16), np.ones((8, 8, 3), np.float32), ["reference", "uint16", "alignratio"]),
        (np.ones((8, 8, 3), np.float32), torch.ones(8, 8, 3, dtype=torch.uint8), ["result", "torch.uint8"]),
    ],
)
def test_bad_inputs_raise_one_line_zoo_errors(reference, result, words):
    for metric in METRICS.values():
        with pytest.raises(ZooError) as info:
            metric.fn(reference, result)
        message = str(info.value)
        assert "\n" not in message
        assert all(w in message for w in words), message


def test_ssim_mu_rejects_images_smaller_than_its_window():
    with pytest.raises(ZooError, match="11×11"):
        ssim_mu(np.ones((8, 20, 3), np.float32), np.ones((8, 20, 3), np.float32))


def test_mu_law_rejects_a_reference_with_a_zero_percentile():
    reference = np.zeros((16, 16, 3), np.float32)
    reference[0, 0] = 1.0  # positive maximum, but the 99th percentile is 0
    for fn in (psnr_mu, ssim_mu):
        with pytest.raises(ZooError, match="99th percentile"):
            fn(reference, reference)


def test_pu21_rejects_non_positive_peak(pair):
    reference, result = pair
    with pytest.raises(ZooError, match="peak_luminance"):
        pu21_psnr(reference, result, peak_luminance=0.0)
