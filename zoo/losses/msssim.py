"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) as a differentiable training loss.

Standard definition: 5 scales with weights [0.0448, 0.2856, 0.3001, 0.2363, 0.1333], Gaussian window 11 with σ 1.5,
'valid' filtering (no padding), K1 = 0.01, K2 = 0.03, a fixed data range (1 for images in [0,1]), 2×2 average pooling
between scales; contrast-structure terms cs_1..cs_4 and the full SSIM at the coarsest scale:

    MS-SSIM = cs_1^w1 · cs_2^w2 · cs_3^w3 · cs_4^w4 · ssim_5^w5

computed per image and channel, then averaged over channels and the batch (as pytorch-msssim does).

Normalisation (``normalize``, default True = the official two-stage code's ``normalize=True``): each ssim_s and cs_s
is mapped through (x + 1) / 2 before the powers, so every factor lies in [0, 1] and the product never takes a
fractional power of a negative value. The mapped value is closer to 1 than the raw one (1 − (x+1)/2 = (1 − x)/2), so
the loss 1 − MS-SSIM is about half the raw definition's; ``normalize=False`` gives the raw Wang et al. form.

Small inputs. With an 11-tap window at every scale the coarsest scale needs 11 px, so the standard needs H, W ≥ 176.
Like the two-stage repo's MS-SSIM (``loss/pytorch_msssim``), the window shrinks to min(11, H_s, W_s) at each scale s
instead of refusing: on the official 128×128 training patches the scales are 128, 64, 32, 16, 8 px and the last one
uses an 8-tap window. A shrunk even-sized window keeps the official off-centre peak (at index size // 2). Below 16 px
the coarsest scale would be empty, so smaller inputs raise ``ValueError``.

``official_bug=True`` reproduces the two-stage repo's combination (inherited from upstream pytorch-msssim), which
multiplies cs_i^w_i · ssim_5^w5 for i = 1..4: the coarsest SSIM enters four times (ssim_5^(4·w5)) and cs_5 never does.
Other details of that code are *not* reproduced, on purpose: it averages cs/ssim over the whole batch before taking
powers, infers the data range from the prediction (255 if max > 128, else 1; a [0,1] prediction gives 1, as here),
and takes fractional powers of negative values (NaN). Without normalisation, negative terms are clamped to a small
positive floor (pytorch-msssim clamps them to 0), which also keeps gradients finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
_FLOOR = 1e-6  # lower clamp of cs/ssim before fractional powers (finite values and gradients)


def gaussian_window(
    size: int, sigma: float = WINDOW_SIGMA, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps centred at index ``size // 2`` (shape (size,), sums to 1)."""
    positions = torch.arange(size, dtype=torch.float64) - size // 2
    window = torch.exp(-(positions**2) / (2 * sigma**2))
    return (window / window.sum()).to(dtype=dtype, device=device)


def ssim_terms(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = WINDOW_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term over the valid region, per image and channel.

    ``x``, ``y``: (B, C, H, W) in [0, data_range]. The window is min(window_size, H, W) taps (see module docstring).
    Returns (ssim, cs), each (B, C).
    """
    if x.shape != y.shape or x.dim() != 4:
        shapes = f"{tuple(x.shape)} and {tuple(y.shape)}"
        raise ValueError(f"ssim_terms expects two (B, C, H, W) tensors of one shape, got {shapes}")
    channels = x.shape[1]
    size = min(window_size, x.shape[-2], x.shape[-1])
    g = gaussian_window(size, dtype=x.dtype, device=x.device)
    # Five maps filtered at once (grouped separable convolution): x, y, x², y², xy.
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    kernel_v = g.view(1, 1, size, 1).expand(5 * channels, 1, size, 1)
    kernel_h = g.view(1, 1, 1, size).expand(5 * channels, 1, 1, size)
    filtered = F.conv2d(F.conv2d(maps, kernel_v, groups=5 * channels), kernel_h, groups=5 * channels)
    mu_x, mu_y, xx, yy, xy = filtered.split(channels, dim=1)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs_map
    return ssim_map.mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))


def ms_ssim_terms(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    levels: int = len(MSSSIM_WEIGHTS),
    window_size: int = WINDOW_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and cs at each scale: (ssim, cs), each (levels, B, C). Scale s+1 is the 2×2 average pool (floor) of
    scale s. Inputs (B, C, H, W) in [0, data_range] with H, W ≥ 2**(levels-1)."""
    min_side = 2 ** (levels - 1)
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"MS-SSIM with {levels} scales needs H, W >= {min_side} px, got {tuple(x.shape[-2:])}")
    ssims, css = [], []
    for level in range(levels):
        if level > 0:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        ssim, cs = ssim_terms(x, y, data_range, window_size)
        ssims.append(ssim)
        css.append(cs)
    return torch.stack(ssims), torch.stack(css)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    official_bug: bool = False,
    weights: tuple[float, ...] = MSSSIM_WEIGHTS,
    window_size: int = WINDOW_SIZE,
    normalize: bool = True,
) -> torch.Tensor:
    """MS-SSIM of ``x`` against ``y`` ((B, C, H, W), values in [0, data_range]); a scalar, 1 for identical inputs.

    ``official_bug``: combine the scales as the two-stage repo does (coarsest SSIM to the power 4·w5, no cs_5);
    ``normalize``: map ssim and cs through (x + 1) / 2 before the powers (official, default); see the module
    docstring. The training loss is ``1 - ms_ssim(prediction, target)``.
    """
    ssim, cs = ms_ssim_terms(x, y, data_range, len(weights), window_size)
    if normalize:
        ssim, cs = (ssim + 1) / 2, (cs + 1) / 2
    w = torch.tensor(weights, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    ssim = ssim.clamp_min(_FLOOR)
    cs = cs.clamp_min(_FLOOR)
    coarse = ssim[-1] ** w[-1]
    if official_bug:
        coarse = coarse ** (len(weights) - 1)
    per_channel = torch.prod(cs[:-1] ** w[:-1], dim=0) * coarse
    return per_channel.mean()
