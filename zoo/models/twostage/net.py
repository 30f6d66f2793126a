"""The two-stage RDAB network and its training-only discriminator, layer for layer as the official modules (without
their registered-but-unused layers); see the package docstring for the architecture and its sources."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError

STAGE_CHOICES = ("both", "stage1", "stage2")
FEATURES = 64
GROWTH = 32
RRDB_SCALE = 0.8  # the official RRDB's outer residual scale
STAGE1_DENSE_SCALE = 0.2  # m in stage I
STAGE2_DENSE_SCALE = 0.5  # m in stage II


# --------------------------------------------------------------------------------------------------------------------
# Network


class SpatialAttention(nn.Module):
    """sigmoid(conv7×7([mean over channels, max over channels])) · conv3×3(x); (B, 64, H, W) → same shape."""

    def __init__(self, channels: int = FEATURES):
        super().__init__()
        self.gate = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.gate(pooled)) * self.conv(x)


class ResidualDenseBlock(nn.Module):
    """The official RRDB holding one 5-conv residual dense block: 0.8·(dense_scale·x5 + x) + x."""

    def __init__(self, dense_scale: float, channels: int = FEATURES, growth: int = GROWTH):
        super().__init__()
        self.dense_scale = dense_scale
        self.conv1 = nn.Conv2d(channels, growth, 3, padding=1)
        self.conv2 = nn.Conv2d(channels + growth, growth, 3, padding=1)
        self.conv3 = nn.Conv2d(channels + 2 * growth, growth, 3, padding=1)
        self.conv4 = nn.Conv2d(channels + 3 * growth, growth, 3, padding=1)
        self.conv5 = nn.Conv2d(channels + 4 * growth, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(torch.cat([x, x1], dim=1)))
        x3 = F.relu(self.conv3(torch.cat([x, x1, x2], dim=1)))
        x4 = F.relu(self.conv4(torch.cat([x, x1, x2, x3], dim=1)))
        x5 = self.conv5(torch.cat([x, x1, x2, x3, x4], dim=1))
        return (x5 * self.dense_scale + x) * RRDB_SCALE + x


class RDAB(nn.Module):
    """Residual dense attention block (paper eq. 2): RRDB(x) + SpatialAttention(x)."""

    def __init__(self, dense_scale: float, channels: int = FEATURES):
        super().__init__()
        self.dense = ResidualDenseBlock(dense_scale, channels)
        self.attention = SpatialAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x) + self.attention(x)


class StageNet(nn.Module):
    """One stage: ReLU(conv1×1(RDABs(conv3×3(x))) + x); (B, 3, H, W) → (B, 3, H, W), values ≥ 0."""

    def __init__(self, n_blocks: int, dense_scale: float, channels: int = FEATURES):
        super().__init__()
        self.input_conv = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(RDAB(dense_scale, channels) for _ in range(n_blocks)))
        self.output_conv = nn.Conv2d(channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.output_conv(self.blocks(self.input_conv(x))) + x)


class TwoStageHDR(nn.Module):
    """Stage I (enhancement) then stage II (HDR reconstruction).

    ``stages``: "both" (the paper's model), or "stage1" / "stage2" for the one-stage ablations of Table 2 (only that
    stage exists and its output is the model's). Input (B, 3, H, W) sRGB LDR in [0, 1], any H×W; output the same size
    in the NTIRE gamma-2.24 domain, ≥ 0.
    """

    def __init__(self, stages: str = "both"):
        super().__init__()
        if stages not in STAGE_CHOICES:
            raise ZooError(f"twostage: stages must be one of {', '.join(STAGE_CHOICES)}, got {stages!r}")
        self.stages = stages
        if stages in ("both", "stage1"):
            self.stage1 = StageNet(n_blocks=2, dense_scale=STAGE1_DENSE_SCALE)
        if stages in ("both", "stage2"):
            self.stage2 = StageNet(n_blocks=1, dense_scale=STAGE2_DENSE_SCALE)

    def forward_stages(self, x: torch.Tensor, detach: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(out1, out2): stage I's output (8-bit-like, ≥ 0) and stage II's (NTIRE gamma HDR); None for a stage the
        model lacks. ``detach``: stage II reads out1.detach(), as in official training, so its gradient never reaches
        stage I."""
        out1 = self.stage1(x) if self.stages != "stage2" else None
        if self.stages == "stage1":
            return out1, None
        stage2_input = x if out1 is None else (out1.detach() if detach else out1)
        return out1, self.stage2(stage2_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The HDR prediction (stage II's output, or the only stage's). Gradients flow through both stages here;
        training uses ``forward_stages`` / the recipe, which detach between the stages."""
        out1, out2 = self.forward_stages(x, detach=False)
        return out2 if out2 is not None else out1


# --------------------------------------------------------------------------------------------------------------------
# Discriminator (training only)


class Discriminator(nn.Module):
    """The official ``attentiomDiscriminator`` (4,689,601 parameters + BatchNorm buffers); layer names as official.

    conv1 3→64 + swish, then conv3×3 + BN + swish: 64→64 s2, 64→128, 128→128 s2, 128→256, 256→256 s2, 256→512,
    512→512 s2; ``conv9`` 1×1 512→1 with padding 1 (an official quirk: the zero-input border, equal to the bias,
    enters the global average); global average; sigmoid. Input (B, 3, H, W); ``forward`` gives P(real) (B, 1).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
        widths = [(64, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2), (256, 512, 1), (512, 512, 2)]
        for index, (c_in, c_out, stride) in enumerate(widths, start=2):
            setattr(self, f"conv{index}", nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1))
            setattr(self, f"bn{index}", nn.BatchNorm2d(c_out))
        self.conv9 = nn.Conv2d(512, 1, 1, padding=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid score (B, 1); the losses use it with BCE-with-logits (same value, numerically stable)."""
        x = F.silu(self.conv1(x))
        for index in range(2, 9):
            x = F.silu(getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x)))
        return self.conv9(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))
