"""MS-SSIM (zoo.losses.msssim) and differentiable CIEDE2000 (zoo.losses.ciede2000), checked against independent
references: a float64 numpy/scipy MS-SSIM written here, scikit-image's SSIM, scikit-image and colour-science ΔE2000."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from zoo.losses.ciede2000 import ciede2000_loss, delta_e_ciede2000, srgb_to_lab
from zoo.losses.msssim import MSSSIM_WEIGHTS, ms_ssim, ms_ssim_terms, ssim_terms

skimage_color = pytest.importorskip("skimage.color")
skimage_metrics = pytest.importorskip("skimage.metrics")
colour = pytest.importorskip("colour")

# --------------------------------------------------------------------------------------------------------------------
# MS-SSIM


def _np_ssim_terms(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> tuple[float, float]:
    """SSIM and cs of two 2-D float64 images: 2-D Gaussian (σ 1.5, min(11, H, W) taps, peak at size // 2), valid."""
    size = min(11, *x.shape)
    taps = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * 1.5**2))
    window = np.outer(taps, taps) / np.outer(taps, taps).sum()

    def blur(a: np.ndarray) -> np.ndarray:  # correlation = convolution with the flipped window
        return fftconvolve(a, window[::-1, ::-1], mode="valid")

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    cs = (2 * cov + c2) / (vx + vy + c2)
    ssim = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return ssim.mean(), cs.mean()


def _np_ms_ssim(x: np.ndarray, y: np.ndarray, official_bug: bool = False, normalize: bool = True) -> float:
    """MS-SSIM of (B, C, H, W) arrays: per image and channel, averaged; 2×2 mean pooling that drops odd rows;
    ``normalize``: ssim and cs mapped through (x+1)/2 first (the official two-stage code)."""
    values = []
    for xi, yi in zip(x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:])):
        ssims, css = [], []
        for level in range(5):
            if level:
                h, w = xi.shape[0] // 2, xi.shape[1] // 2
                xi = xi[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
                yi = yi[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
            ssim, cs = _np_ssim_terms(xi, yi)
            if normalize:
                ssim, cs = (ssim + 1) / 2, (cs + 1) / 2
            ssims.append(ssim)
            css.append(cs)
        value = np.prod([c**w for c, w in zip(css[:4], MSSSIM_WEIGHTS[:4])])
        value *= ssims[4] ** (MSSSIM_WEIGHTS[4] * (4 if official_bug else 1))
        values.append(value)
    return float(np.mean(values))


def _image_pair(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-ish image and a noisy, slightly darker copy (positive cs at every scale), float64."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator, dtype=torch.float64)
    x = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    y = (0.9 * x + 0.05 * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("shape", [(1, 2, 176, 176), (2, 3, 64, 97)])
@pytest.mark.parametrize("official_bug", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_ms_ssim_matches_numpy_reference(shape, official_bug, normalize):
    x, y = _image_pair(shape)
    expected = _np_ms_ssim(x.numpy(), y.numpy(), official_bug, normalize)
    value = ms_ssim(x, y, official_bug=official_bug, normalize=normalize).item()
    assert value == pytest.approx(expected, abs=1e-10)
    assert ms_ssim(x.float(), y.float(), official_bug=official_bug, normalize=normalize).item() == pytest.approx(
        expected, abs=1e-5
    )
    assert 0.3 < expected < 0.999  # a meaningful, non-degenerate comparison


def test_ms_ssim_is_normalized_by_default_as_the_official_code():
    """normalize=True (default) maps each term through (x+1)/2: the loss 1 - MS-SSIM is then close to half the raw
    one (it weighs about half as much in the stage-I objective as the unnormalised form)."""
    x, y = _image_pair((2, 3, 64, 64), seed=4)
    ssim, cs = ms_ssim_terms(x, y)
    w = torch.tensor(MSSSIM_WEIGHTS, dtype=x.dtype).view(-1, 1, 1)
    mapped = (torch.prod(((cs[:-1] + 1) / 2) ** w[:-1], dim=0) * ((ssim[-1] + 1) / 2) ** w[-1]).mean()
    assert ms_ssim(x, y).item() == pytest.approx(mapped.item(), rel=1e-12)
    raw_loss, loss = 1 - ms_ssim(x, y, normalize=False).item(), 1 - ms_ssim(x, y).item()
    assert 0.4 < loss / raw_loss < 0.6


def test_single_scale_ssim_matches_scikit_image():
    x, y = _image_pair((1, 3, 48, 40), seed=3)
    ssim, _ = ssim_terms(x, y)
    reference = skimage_metrics.structural_similarity(
        x[0].numpy(),
        y[0].numpy(),
        channel_axis=0,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim.mean().item() == pytest.approx(reference, abs=1e-9)


def test_ms_ssim_identity_is_one_and_differs_otherwise():
    x, y = _image_pair((2, 3, 32, 48), seed=1)
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(x, x, official_bug=True).item() == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(x, y).item() < 0.99


def test_official_bug_is_the_fourfold_coarsest_ssim():
    """Documented relation, per image and channel: bug = standard · ssim_5^(3·w5) (normalised ssim_5 by default)."""
    x, y = _image_pair((1, 1, 64, 64), seed=2)
    ssim, _ = ms_ssim_terms(x, y)
    standard = ms_ssim(x, y, normalize=False).item()
    bugged = ms_ssim(x, y, official_bug=True, normalize=False).item()
    assert bugged == pytest.approx(standard * ssim[-1].item() ** (3 * MSSSIM_WEIGHTS[-1]), rel=1e-12)
    normalized = ms_ssim(x, y, official_bug=True).item()
    assert normalized == pytest.approx(
        ms_ssim(x, y).item() * ((ssim[-1].item() + 1) / 2) ** (3 * MSSSIM_WEIGHTS[-1]), rel=1e-12
    )
    assert abs(bugged - standard) > 1e-3


def test_ms_ssim_small_inputs():
    x, y = _image_pair((1, 3, 16, 16))
    value = ms_ssim(x, y)  # coarsest scale 1×1 with a 1-tap window: cs = 1 there
    assert torch.isfinite(value) and 0 < value.item() < 1
    with pytest.raises(ValueError, match="16"):
        ms_ssim(x[..., :15, :], y[..., :15, :])


def test_ms_ssim_gradient_is_finite():
    x, y = _image_pair((2, 3, 32, 32), seed=4)
    x = x.float().requires_grad_(True)
    (1 - ms_ssim(x, y.float())).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------------------------
# CIEDE2000


def _random_lab_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random colours (from random sRGB), close pairs, and the edge cases: zero chroma, black, opposite hues, blues."""
    rng = np.random.default_rng(seed)
    lab1 = skimage_color.rgb2lab(rng.random((n, 3)))
    lab2 = skimage_color.rgb2lab(rng.random((n, 3)))
    close = lab1 + rng.normal(0, 1.5, lab1.shape)
    special1 = np.array([[50, 0, 0], [50, 0, 0], [0, 0, 0], [60, 30, 0], [40, -20, -45], [55, 0, 25], [70, 0, 0]])
    special2 = np.array(
        [[60, 0, 0], [50, 20, -5], [100, 0, 0], [60, -30, 0.5], [45, 10, -50], [55, 0, -25], [70, 1e-3, 0]]
    )
    return np.concatenate([lab1, lab1, special1]), np.concatenate([lab2, close, special2])


@pytest.mark.parametrize(
    ("dtype", "scale", "atol"),
    [
        (torch.float64, 1.0, 1e-8),
        (torch.float64, 3.0, 1e-8),  # HDR values above 1: the sRGB curve and cube root are extrapolated
        (torch.float32, 1.0, 1e-4),
        (torch.float32, 3.0, 5e-4),  # float32 cancellation in a = 500·(fx − fy) at large fx
    ],
)
def test_srgb_to_lab_matches_scikit_image(dtype, scale, atol):
    rng = np.random.default_rng(1)
    rgb = np.concatenate([rng.random((2000, 3)) * scale, [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [0.01, 0.02, 0.03]]])
    lab = srgb_to_lab(torch.tensor(rgb, dtype=dtype), dim=-1).double().numpy()
    np.testing.assert_allclose(lab, skimage_color.rgb2lab(rgb), atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ciede2000_matches_scikit_image_and_colour_science(dtype):
    lab1, lab2 = _random_lab_pairs(3000)
    ours = delta_e_ciede2000(torch.tensor(lab1, dtype=dtype), torch.tensor(lab2, dtype=dtype), dim=-1).double().numpy()
    np.testing.assert_allclose(ours, skimage_color.deltaE_ciede2000(lab1, lab2), atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours, colour.delta_E(lab1, lab2, method="CIE 2000"), atol=1e-4, rtol=0)
    swapped = delta_e_ciede2000(torch.tensor(lab2, dtype=dtype), torch.tensor(lab1, dtype=dtype), dim=-1)
    np.testing.assert_allclose(swapped.double().numpy(), ours, atol=1e-4, rtol=0)


def test_ciede2000_image_layout():
    rng = np.random.default_rng(2)
    a, b = rng.random((2, 3, 5, 7)), rng.random((2, 3, 5, 7))
    reference = skimage_color.deltaE_ciede2000(
        skimage_color.rgb2lab(a.transpose(0, 2, 3, 1)), skimage_color.rgb2lab(b.transpose(0, 2, 3, 1))
    )
    ours = delta_e_ciede2000(srgb_to_lab(torch.tensor(a)), srgb_to_lab(torch.tensor(b)))
    assert ours.shape == (2, 5, 7)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-8, rtol=0)
    assert ciede2000_loss(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(reference.mean(), abs=1e-8)


def test_ciede2000_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand(1, 3, 2, 3, generator=generator, dtype=torch.float64).requires_grad_(True)
    target = torch.rand(1, 3, 2, 3, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: ciede2000_loss(p, target), (prediction,), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ciede2000_gradients_finite_at_grey_and_black(dtype):
    """Grey and black predictions (zero or near-zero chroma) against colours and greys: finite, non-zero gradients;
    identical pixels: zero loss and zero gradient."""
    pairs = [  # (prediction, target) sRGB
        ([0.5, 0.5, 0.5], [0.7, 0.2, 0.3]),  # grey vs colour
        ([0.0, 0.0, 0.0], [0.2, 0.5, 0.1]),  # black (exactly zero chroma) vs colour
        ([0.4, 0.4, 0.4], [0.6, 0.6, 0.6]),  # grey vs grey
        ([0.0, 0.0, 0.0], [0.3, 0.3, 0.3]),  # black vs grey
        ([0.3, 0.6, 0.9], [0.0, 0.0, 0.0]),  # colour vs black
        ([1.8, 1.2, 0.4], [2.5, 2.5, 2.5]),  # HDR values above 1
    ]
    prediction = torch.tensor([p for p, _ in pairs], dtype=dtype).T.reshape(1, 3, 1, -1).requires_grad_(True)
    target = torch.tensor([t for _, t in pairs], dtype=dtype).T.reshape(1, 3, 1, -1)
    delta_e = delta_e_ciede2000(srgb_to_lab(prediction), srgb_to_lab(target))
    delta_e.sum().backward()
    grad = prediction.grad[0, :, 0]  # (3, pixels)
    assert torch.isfinite(grad).all()
    assert (grad.abs().sum(dim=0) > 1e-3).all()
    assert (delta_e > 1).all()

    same = torch.tensor([[[[0.5]], [[0.5]], [[0.5]]], [[[0.0]], [[0.0]], [[0.0]]]], dtype=dtype).requires_grad_(True)
    loss = ciede2000_loss(same, same.detach().clone())
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(same.grad).all() and (same.grad == 0).all()
