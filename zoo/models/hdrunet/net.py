"""The HDRUNet network (Chen et al., CVPRW 2021), module and parameter names as in the official chxy95/HDRUNet, so
official checkpoints load with ``strict=True``. See the package docstring for the model and its deviation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride, k // 2)


class SFTLayer(nn.Module):
    """fea·(scale + 1) + shift, with scale and shift predicted from a 32-channel condition by 1×1 convs."""

    def __init__(self, nf: int = 64, cond_nf: int = 32):
        super().__init__()
        self.SFT_scale_conv0 = conv(cond_nf, cond_nf, 1)
        self.SFT_scale_conv1 = conv(cond_nf, nf, 1)
        self.SFT_shift_conv0 = conv(cond_nf, cond_nf, 1)
        self.SFT_shift_conv1 = conv(cond_nf, nf, 1)

    def forward(self, fea: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(cond), 0.1))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(cond), 0.1))
        return fea * (scale + 1) + shift


class ResBlockSFT(nn.Module):
    """fea + conv2(sft2(relu(conv1(sft1(fea))))). Attribute order conv1, conv2, sft1, sft2 reproduces the official
    state_dict order (the official constructor assigns the convs twice)."""

    def __init__(self, nf: int = 64):
        super().__init__()
        self.conv1 = conv(nf, nf, 3)
        self.conv2 = conv(nf, nf, 3)
        self.sft1 = SFTLayer(nf)
        self.sft2 = SFTLayer(nf)
        for layer in (self.conv1, self.conv2):  # official init: kaiming-normal (fan_in) × 0.1, zero bias
            nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
            layer.weight.data.mul_(0.1)
            nn.init.zeros_(layer.bias)

    def forward(self, fea: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        t = self.conv1(self.sft1(fea, cond)).relu()
        return fea + self.conv2(self.sft2(t, cond))


class SFTTrunk(nn.ModuleList):
    def __init__(self, n_blocks: int, nf: int = 64):
        super().__init__(ResBlockSFT(nf) for _ in range(n_blocks))

    def forward(self, fea: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            fea = block(fea, cond)
        return fea


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.1, inplace=True)


class HDRUNet(nn.Module):
    """HDRUNet with the image itself as the condition (the only configuration the authors used).

    Args:
        nf: feature width (64).
        use_condition: SFT modulation from the condition network; False replaces every SFT with the identity
            (the "base" rows of the paper's module ablation, Table 3).
        use_weighting: the weighting network's ``mask·x`` skip; False drops it.
    """

    size_multiple = 4

    def __init__(self, nf: int = 64, use_condition: bool = True, use_weighting: bool = True):
        super().__init__()
        self.use_condition = use_condition
        self.use_weighting = use_weighting
        self.conv_first = conv(3, nf, 3)
        self.SFT_layer1 = SFTLayer(nf)
        self.HR_conv1 = conv(nf, nf, 3)
        self.down_conv1 = conv(nf, nf, 3, 2)
        self.down_conv2 = conv(nf, nf, 3, 2)
        self.recon_trunk1 = SFTTrunk(2, nf)
        self.recon_trunk2 = SFTTrunk(8, nf)
        self.recon_trunk3 = SFTTrunk(2, nf)
        self.up_conv1 = nn.Sequential(conv(nf, nf * 4, 3), nn.PixelShuffle(2))
        self.up_conv2 = nn.Sequential(conv(nf, nf * 4, 3), nn.PixelShuffle(2))
        self.SFT_layer2 = SFTLayer(nf)
        self.HR_conv2 = conv(nf, nf, 3)
        self.conv_last = conv(nf, 3, 3)
        self.cond_first = nn.Sequential(conv(3, nf, 3), lrelu(), conv(nf, nf, 1), lrelu(), conv(nf, nf, 1), lrelu())
        self.CondNet1 = nn.Sequential(conv(nf, nf, 1), lrelu(), conv(nf, 32, 1))
        self.CondNet2 = nn.Sequential(conv(nf, nf, 3, 2), lrelu(), conv(nf, 32, 1))
        self.CondNet3 = nn.Sequential(conv(nf, nf, 3, 2), lrelu(), conv(nf, 32, 3, 2))
        self.mask_est = nn.Sequential(
            conv(3, nf, 3),
            nn.ReLU(inplace=True),
            conv(nf, nf, 3),
            nn.ReLU(inplace=True),
            conv(nf, nf, 1),
            nn.ReLU(inplace=True),
            conv(nf, 3, 1),
        )
        if not use_condition:  # ablation: no condition network, no SFT parameters
            for name in ("SFT_layer1", "SFT_layer2", "cond_first", "CondNet1", "CondNet2", "CondNet3"):
                delattr(self, name)
            for trunk in (self.recon_trunk1, self.recon_trunk2, self.recon_trunk3):
                for block in trunk:
                    del block.sft1, block.sft2
                    block.sft1 = block.sft2 = _IdentitySFT()
            self.SFT_layer1 = self.SFT_layer2 = _IdentitySFT()
        if not use_weighting:
            del self.mask_est

    def forward_aligned(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The official forward; H and W must be multiples of 4. ``cond`` defaults to ``x``."""
        cond = x if cond is None else cond
        if self.use_condition:
            c = self.cond_first(cond)
            cond1, cond2, cond3 = self.CondNet1(c), self.CondNet2(c), self.CondNet3(c)
        else:
            cond1 = cond2 = cond3 = None
        f0 = self.HR_conv1(self.SFT_layer1(self.conv_first(x).relu(), cond1)).relu()
        f1 = self.recon_trunk1(self.down_conv1(f0).relu(), cond2)
        f2 = self.down_conv2(f1).relu()
        out = self.recon_trunk2(f2, cond3) + f2
        out = self.recon_trunk3(self.up_conv1(out).relu() + f1, cond2)
        out = self.up_conv2(out).relu() + f0
        out = self.conv_last(self.HR_conv2(self.SFT_layer2(out, cond1)).relu())
        return self.mask_est(x) * x + out if self.use_weighting else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.size_multiple, -w % self.size_multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.forward_aligned(x)[..., :h, :w]


class _IdentitySFT(nn.Module):
    def forward(self, fea: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return fea
