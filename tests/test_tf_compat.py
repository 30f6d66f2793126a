"""TF1 semantics of the SingleHDR port (zoo/models/tf_compat.py): fixture ops, padding rules, Sobel, soft histograms,
``apply_rf`` edges and the monotonic curve fix ``increase``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zoo import tf_compat as tc


def nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def linearization_fixture(fixtures_dir):
    return np.load(fixtures_dir / "singlehdr_linearization_tf_seed0.npz", allow_pickle=False)


@pytest.mark.fixtures
def test_legacy_resize_bilinear_matches_tf(linearization_fixture):
    d = linearization_fixture
    out = tc.resize_bilinear_x2(nchw(d["op/resize_bilinear_in"]))
    torch.testing.assert_close(out, nchw(d["op/resize_bilinear_out"]), atol=1e-6, rtol=0)


@pytest.mark.fixtures
def test_unet_average_pool_drops_odd_trailing_row(linearization_fixture):
    d = linearization_fixture
    out = F.avg_pool2d(nchw(d["op/avgpool_in"]), 2)  # what the U-Nets use
    torch.testing.assert_close(out, nchw(d["op/avgpool_out"]), atol=1e-6, rtol=0)


def test_resize_bilinear_rule_and_difference_from_pytorch():
    x = torch.rand(2, 3, 5, 4)
    out = tc.resize_bilinear_x2(x)
    assert out.shape == (2, 3, 10, 8)
    torch.testing.assert_close(out[:, :, ::2, ::2], x, atol=0, rtol=0)  # out[2k] = in[k]
    torch.testing.assert_close(out[:, :, 1:-1:2, ::2], (x[:, :, :-1] + x[:, :, 1:]) / 2, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, :, -1], out[:, :, -2], atol=0, rtol=0)  # the last row repeats in[n-1]
    half_pixel = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert (half_pixel - out).abs().max() > 1e-2  # the PyTorch default samples elsewhere


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (64, 7, 2, (2, 3)),
        (45, 7, 2, (3, 3)),
        (32, 3, 2, (0, 1)),
        (23, 3, 2, (1, 1)),
        (16, 1, 2, (0, 0)),
        (17, 1, 2, (0, 0)),
        (24, 3, 1, (1, 1)),
        (5, 2, 2, (0, 1)),
    ],
)
def test_same_padding_puts_the_extra_pixel_after(size, kernel, stride, expected):
    assert tc.same_padding(size, kernel, stride) == expected
    before, after = expected
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)  # TF 'SAME' output size


def test_max_pool_same_never_selects_padding():
    x = -torch.rand(1, 2, 6, 6) - 1.0  # all negative: a zero pad would win
    out = tc.max_pool_same(x, 3, 2)
    assert out.shape == (1, 2, 3, 3)
    assert out.max() < -1.0
    assert torch.equal(out[..., -1, -1], x[..., 4:, 4:].amax(dim=(-2, -1)))  # window 4..5 plus one -inf row/column


@pytest.mark.parametrize(("h", "w", "pads"), [(5, 7, (2, 3, 0, 4)), (3, 2, (7, 5, 6, 9)), (4, 4, (0, 0, 0, 0))])
def test_pad_symmetric_matches_numpy(h, w, pads):
    x = torch.rand(2, 3, h, w)
    top, bottom, left, right = pads
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode="symmetric")
    np.testing.assert_array_equal(tc.pad_symmetric(x, top, bottom, left, right).numpy(), expected)


def test_sobel_layout_and_reflect_border():
    rows = torch.arange(6.0).view(6, 1).expand(6, 5)  # red: vertical ramp, slope 1
    cols = 2 * torch.arange(5.0).view(1, 5).expand(6, 5)  # green: horizontal ramp, slope 2
    image = torch.stack([rows, cols, torch.zeros(6, 5)]).unsqueeze(0)
    edges = tc.sobel_edges(image)
    assert edges.shape == (1, 6, 6, 5)  # R_dy, R_dx, G_dy, G_dx, B_dy, B_dx
    assert torch.all(edges[0, 0, 1:-1] == 8) and torch.all(edges[0, 1] == 0)  # vertical ramp: dy only
    assert torch.all(edges[0, 0, 0] == 0) and torch.all(edges[0, 0, -1] == 0)  # reflect: row -1 = row 1
    assert torch.all(edges[0, 3, :, 1:-1] == 16) and torch.all(edges[0, 2] == 0)  # horizontal ramp (slope 2): dx
    assert torch.all(edges[0, 4:] == 0)


def test_soft_histogram_votes_and_layout():
    x = torch.rand(2, 3, 8, 9)
    for bins in (4, 8, 16):
        h = tc.soft_histogram(x, bins)
        assert h.shape == (2, 3 * (bins + 1), 8, 9)
        votes = h.view(2, bins + 1, 3, 8, 9)  # bin-major, RGB inside each bin
        torch.testing.assert_close(votes.sum(dim=1), torch.ones(2, 3, 8, 9), atol=1e-6, rtol=0)
        assert ((votes > 0).sum(dim=1) <= 2).all()  # a value votes for its two nearest bins
    at_bin = torch.full((1, 3, 1, 1), 0.25)
    assert torch.allclose(tc.soft_histogram(at_bin, 4)[0, 3:6, 0, 0], torch.ones(3))  # bin 1 (centre 1/4), all channels


def test_apply_rf_edges_and_saturation():
    samples = tc.CURVE_SAMPLES
    grid = torch.linspace(0, 1, samples)
    rf = torch.stack([grid**0.5, grid**2.0])  # two images, two curves
    eps = 1e-4
    values = torch.tensor([0.0, 1.0, 1023 / 1023, 1 - eps, 1 + eps, -0.5, 2.0, 512 / 1023])
    y = tc.apply_rf(values.view(1, 1, 1, 8).repeat(2, 1, 1, 1), rf)[:, 0, 0]
    for i in range(2):
        assert y[i, 0] == rf[i, 0] and y[i, 1] == rf[i, -1] and y[i, 2] == rf[i, -1]
        assert rf[i, -2] <= y[i, 3] <= rf[i, -1]
        assert y[i, 4] == rf[i, -1] and y[i, 6] == rf[i, -1] and y[i, 5] == rf[i, 0]  # saturates outside [0, 1]
        torch.testing.assert_close(y[i, 7], rf[i, 512], atol=1e-6, rtol=0)
    assert not torch.allclose(y[0], y[1])  # each image uses its own curve


def test_apply_rf_interpolates_linearly_and_passes_gradients():
    rf = torch.rand(1, tc.CURVE_SAMPLES, requires_grad=True)
    x = torch.tensor([[[[10.25 / 1023]]]], requires_grad=True)
    y = tc.apply_rf(x, rf)
    torch.testing.assert_close(y.reshape(()), 0.75 * rf[0, 10] + 0.25 * rf[0, 11], atol=1e-5, rtol=0)
    y.sum().backward()
    assert rf.grad[0, 10] == pytest.approx(0.75, abs=1e-3) and rf.grad[0, 11] == pytest.approx(0.25, abs=1e-3)
    assert x.grad.abs().sum() > 0


def test_increase_is_monotone_from_0_to_1():
    generator = torch.Generator().manual_seed(0)
    grid = torch.linspace(0, 1, tc.CURVE_SAMPLES)
    wiggly = grid**0.45 + 0.05 * torch.randn(8, tc.CURVE_SAMPLES, generator=generator)  # many negative slopes
    out = tc.increase(wiggly)
    assert (torch.diff(wiggly, dim=1) < 0).any()
    assert out.shape == wiggly.shape
    assert torch.all(out[:, 0] == 0)
    torch.testing.assert_close(out[:, -1], torch.ones(8), atol=1e-6, rtol=0)
    assert torch.all(torch.diff(out, dim=1) >= 0)


def test_increase_keeps_a_valid_curve_and_works_per_image():
    grid = torch.linspace(0, 1, tc.CURVE_SAMPLES)
    valid = grid**2.2
    bad = valid.flip(0)  # decreasing: must not change the other curve in the batch
    out = tc.increase(torch.stack([valid, bad]))
    torch.testing.assert_close(out[0], valid, atol=2e-6, rtol=0)
    assert torch.all(torch.diff(out[1]) >= 0)
