"""TensorFlow 1.x semantics that a weight-exact port of SingleHDR needs (docs/models.md), in NCHW PyTorch.

Each function reproduces one TF behaviour that differs from the obvious PyTorch call: the legacy bilinear ×2 resize,
asymmetric 'SAME' padding of strided layers, numpy 'symmetric' padding, ``tf.image.sobel_edges``, SingleHDR's spatial
soft histogram, the per-image 1-D lookup ``apply_rf`` and the monotonic fix of the inverse response ``increase``.
All tensors are float32 (B, C, H, W) unless stated otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CURVE_SAMPLES = 1024  # inverse response curves are sampled at i/1023, i = 0..1023


def resize_bilinear_x2(x: torch.Tensor) -> torch.Tensor:
    """TF1 ``resize_bilinear`` to twice the size with align_corners=False, half_pixel_centers=False.

    The source coordinate is dst/2 with no half-pixel offset and the neighbour clamped at the border, so
    out[2k] = in[k], out[2k+1] = in[k] + (in[k+1] - in[k])·0.5, and the last row/column repeats in[n-1].
    PyTorch's ``interpolate`` (either align_corners) samples elsewhere. Width is interpolated before height, as TF does.
    """

    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        nxt = torch.cat([t.narrow(dim, 1, t.shape[dim] - 1), t.narrow(dim, t.shape[dim] - 1, 1)], dim)
        odd = t + (nxt - t) * 0.5
        return torch.stack([t, odd], dim + 1).flatten(dim, dim + 1)

    return along(along(x, 3), 2)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF 'SAME' along one dimension: the odd extra pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, H, W) as TF 'SAME' would for a square ``kernel`` and ``stride``; ``value=-inf`` for max-pooling."""
    top, bottom = same_padding(x.shape[2], kernel, stride)
    left, right = same_padding(x.shape[3], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """``tf.nn.max_pool(..., padding='SAME')``: padded cells are -inf, so they are never selected."""
    return F.max_pool2d(pad_same(x, kernel, stride, float("-inf")), kernel, stride)


def _symmetric_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Source indices of numpy 'symmetric' padding (mirror including the edge), valid for any pad width."""
    index = torch.arange(-before, n + after, device=device)
    period = torch.remainder(index, 2 * n)
    return torch.where(period < n, period, 2 * n - 1 - period)


def pad_symmetric(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """``np.pad(..., mode='symmetric')`` on the last two dims (the edge pixel is repeated; pads may exceed the size)."""
    rows = _symmetric_index(x.shape[-2], top, bottom, x.device)
    cols = _symmetric_index(x.shape[-1], left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """``tf.image.sobel_edges`` reshaped to channels: (B, C, H, W) -> (B, 2C, H, W) ordered C0_dy, C0_dx, C1_dy, ….

    Cross-correlation with dy = [[-1,-2,-1],[0,0,0],[1,2,1]] and dx = dyᵀ after REFLECT padding by one pixel.
    """
    dy = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], dtype=x.dtype, device=x.device)
    kernels = torch.stack([dy, dy.t()]).unsqueeze(1)  # (2, 1, 3, 3): dy then dx
    channels = x.shape[1]
    weight = kernels.repeat(channels, 1, 1, 1)  # depthwise: channel c -> outputs 2c (dy), 2c+1 (dx)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, groups=channels)


def soft_histogram(x: torch.Tensor, bins: int) -> torch.Tensor:
    """SingleHDR's spatial soft histogram: for i = 0..K, relu(1 - |x - i/K|·K), per pixel and channel.

    Returns (B, (K+1)·C, H, W), bin-major: bin 0 for every channel, then bin 1, …, as the official concatenation.
    Values are in [0, 1]; a pixel votes for the two bins nearest to its value.
    """
    return torch.cat([soft_vote(x, i, bins) for i in range(bins + 1)], dim=1)


def soft_vote(x: torch.Tensor, i: int, bins: int) -> torch.Tensor:
    """Bin ``i`` of ``soft_histogram(x, bins)``: relu(1 - |x - i/K|·K), same shape as x."""
    return torch.relu(1.0 - torch.abs(x - i / float(bins)) * float(bins))


def apply_rf(x: torch.Tensor, rf: torch.Tensor) -> torch.Tensor:
    """Map ``x`` (B, ...) through each image's own response curve ``rf`` (B, K) sampled at i/(K-1).

    Linear interpolation as the official ``apply_rf``: pos = (K-1)·x, i0 = floor(pos), i1 = i0 + 1, weights i1 - pos
    and pos - i0 taken *before* the indices are clipped to [0, K-1]. So x = 1 gives rf[K-1] and values outside [0, 1]
    saturate at the end values. Differentiable in ``x`` and ``rf``.
    """
    batch, samples = rf.shape
    pos = float(samples - 1) * x.reshape(batch, -1)
    i0 = torch.floor(pos)
    i1 = i0 + 1.0
    w0, w1 = i1 - pos, pos - i0
    v0 = torch.gather(rf, 1, i0.long().clamp(0, samples - 1))
    v1 = torch.gather(rf, 1, i1.long().clamp(0, samples - 1))
    return (w0 * v0 + w1 * v1).reshape(x.shape)


def increase(rf: torch.Tensor) -> torch.Tensor:
    """The official monotonic fix of an inverse response (B, K) -> (B, K).

    Per curve: take the K-1 differences, lift them all by relu(-min) so none is negative, normalise them to sum 1,
    integrate (cumulative sum) and prepend 0. The result starts at exactly 0, ends at 1 up to float rounding and is
    non-decreasing. It divides by zero only for a constant curve.
    """
    diff = rf[:, 1:] - rf[:, :-1]
    diff = diff + torch.relu(-diff.min(dim=1, keepdim=True).values)
    diff = diff / diff.sum(dim=1, keepdim=True)
    return F.pad(torch.cumsum(diff, dim=1), (1, 0))
