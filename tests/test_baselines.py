"""The non-learned baselines: registration, forward contract, each operator against values computed by hand from its
paper's formula, and that no two baselines are the same function under the zoo's metrics."""

import itertools

import numpy as np
import pytest
import torch

from zoo import metrics
from zoo.domains import to_ntire
from zoo.errors import ZooError
from zoo.factory import create_model
from zoo.registry import get_spec, list_models

BASELINES = ("identity", "inverse_gamma", "tone_cheat", "landis", "akyuz", "masia")


@pytest.fixture(scope="module")
def ldr() -> torch.Tensor:
    return torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(0))  # odd sizes on purpose


@pytest.mark.parametrize("name", BASELINES)
def test_registered_as_untrained_baselines(name):
    spec = get_spec(name)
    assert spec.is_baseline and spec.size_multiple == 1
    assert spec.recipe().stages == ()
    assert name in list_models() and name not in list_models(include_baselines=False)
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == 0
    assert model.state_dict() == {}  # nothing to save or load


@pytest.mark.parametrize("name", BASELINES)
def test_forward_shape_and_finite(name, ldr):
    out = create_model(name)(ldr)
    assert out.shape == ldr.shape and out.dtype == ldr.dtype
    assert torch.isfinite(out).all() and (out >= 0).all()


def test_recipe_options_are_rejected():
    with pytest.raises(TypeError):
        get_spec("landis").recipe(loss="l1")


def test_identity_is_exact(ldr):
    assert torch.equal(create_model("identity")(ldr), ldr)


def srgb_by_hand(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def test_inverse_gamma_is_the_srgb_eotf(ldr):
    expected = torch.tensor(np.vectorize(srgb_by_hand)(ldr.numpy()))
    torch.testing.assert_close(create_model("inverse_gamma")(ldr), expected.float(), rtol=1e-6, atol=1e-7)


def test_every_pair_of_baselines_scores_differently():
    """Two baselines that are the same function under the NTIRE encoding would tie in every table."""
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(3)) ** 1.5
    image[..., 10:20, 10:30] = 1.0  # a clipped highlight, where the expansion operators differ
    reference = (image[0].permute(1, 2, 0).numpy() ** 2.24 * 1.5) ** (1 / 2.24)
    scores = {}
    for name in BASELINES:
        out = to_ntire(create_model(name)(image), get_spec(name).output_domain)[0].permute(1, 2, 0).numpy()
        scores[name] = metrics.pu21_psnr(reference, out), metrics.psnr_mu(reference, out)
    for a, b in itertools.combinations(BASELINES, 2):
        assert abs(scores[a][0] - scores[b][0]) > 1e-3 or abs(scores[a][1] - scores[b][1]) > 1e-3, (a, b, scores)


def test_tone_cheat_is_scale_times_power():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = create_model("tone_cheat", scale=2.0, gamma=1.5)(x)
    torch.testing.assert_close(out, 2.0 * x**1.5)
    with pytest.raises(ZooError, match="tone_cheat: scale and gamma must be positive"):
        create_model("tone_cheat", gamma=0)


def test_akyuz_matches_the_formula_by_hand():
    """L_w = k·((L − L_min)/(L_max − L_min))^γ on display luminance, colour kept by the ratio."""
    x = torch.tensor([[0.2, 0.4, 0.6], [0.3, 0.5, 0.9]]).T.reshape(1, 3, 1, 2)  # two pixels
    rgb = np.vectorize(srgb_by_hand)(x[0, :, 0].numpy().T)  # 2 pixels × 3 channels, linear
    lum = rgb @ np.array([0.2126, 0.7152, 0.0722])
    expanded = 10.0 * (lum - lum.min()) / (lum.max() - lum.min())
    expected = rgb * (expanded / lum)[:, None]
    out = create_model("akyuz")(x)[0, :, 0].numpy().T
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_masia_gamma_follows_the_image_key():
    """γ = 10.44·k − 6.282 with k = (log L_avg − log L_min)/(log L_max − log L_min), clamped to [1, 10]."""
    x = torch.tensor([0.1, 0.95, 0.98, 1.0]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()  # grey pixels
    lum = np.vectorize(srgb_by_hand)(np.array([0.1, 0.95, 0.98, 1.0]))
    key = (np.log(lum).mean() - np.log(lum.min())) / (np.log(lum.max()) - np.log(lum.min()))
    gamma = np.clip(10.44 * key - 6.282, 1, 10)
    assert 1 < gamma < 10  # this image is bright enough for the fit to expand
    out = create_model("masia")(x)[0, 0].flatten().numpy()
    np.testing.assert_allclose(out, lum**gamma, rtol=1e-5)
    low_key = torch.tensor([0.05, 0.05, 0.06, 1.0]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()
    # mostly dark: the fit would compress or invert (γ < 1); clamped to γ = 1, the linearised input
    torch.testing.assert_close(create_model("masia")(low_key), create_model("inverse_gamma")(low_key))


def landis_by_hand(r, g, b, threshold=0.5, alpha=2.0, max_luminance=10.0):
    """The published formula, evaluated on one pixel: linear luminance L, L_w = (1−k)·L + k·Lmax·L above R."""
    rgb = [c**2.24 for c in (r, g, b)]
    lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    if lum < threshold:
        return rgb
    k = ((lum - threshold) / (1 - threshold)) ** alpha
    lum_w = (1 - k) * lum + k * max_luminance * lum
    return [c * lum_w / lum for c in rgb]


@pytest.mark.parametrize(
    "pixel, kwargs",
    [
        ((1.0, 1.0, 1.0), {}),  # saturated white: L = 1 → max_luminance
        ((0.95, 0.9, 0.8), {}),  # a bright colour above the threshold
        ((0.9, 0.2, 0.1), {}),  # a saturated red whose luminance is below the threshold
        ((0.3, 0.4, 0.5), {}),
        ((0.9, 0.85, 0.95), {"threshold": 0.3, "alpha": 1.0, "max_luminance": 4.0}),
    ],
)
def test_landis_matches_the_formula_by_hand(pixel, kwargs):
    x = torch.tensor(pixel, dtype=torch.float64).view(1, 3, 1, 1)
    out = create_model("landis", **kwargs)(x).view(3).tolist()
    assert out == pytest.approx(landis_by_hand(*pixel, **kwargs), rel=1e-12)


def test_landis_saturated_pixel_reaches_max_luminance():
    out = create_model("landis", max_luminance=7.0)(torch.ones(1, 3, 2, 2))
    torch.testing.assert_close(out, torch.full_like(out, 7.0))


def test_landis_equals_the_linearised_input_below_its_threshold():
    x = torch.linspace(0, 1, 256).view(1, 1, 16, 16).expand(1, 3, 16, 16)  # grey ramp: luminance = x**2.24
    out = create_model("landis")(x)
    linear = x**2.24
    below, above = linear < 0.5, linear > 0.5
    assert below.any() and above.any()
    torch.testing.assert_close(out[below], linear[below], rtol=0, atol=0)
    assert (out[above] > linear[above]).all()  # expanded above it


def test_landis_is_monotone_in_every_input_value(ldr):
    model = create_model("landis")
    ramp = torch.linspace(0, 1, 1001).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert (torch.diff(model(ramp), dim=-1) >= 0).all()  # grey ramp, through the threshold
    for channel in range(3):  # raising one channel of random pixels never lowers any output value
        brighter = ldr.clone()
        brighter[:, channel] = (brighter[:, channel] + 0.1).clamp(max=1)
        assert (model(brighter) >= model(ldr)).all()


def test_landis_rejects_bad_parameters():
    with pytest.raises(ZooError, match="landis"):
        create_model("landis", treshold=0.5)  # misspelled argument
    with pytest.raises(ZooError, match="threshold"):
        create_model("landis", threshold=1.0)
    with pytest.raises(ZooError, match="alpha"):
        create_model("landis", alpha=0.0)
    with pytest.raises(ZooError, match="max_luminance"):
        create_model("landis", max_luminance=0.5)
