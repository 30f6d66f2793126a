"""VGG16 perceptual loss from a user-given weights file; the zoo never downloads weights.

The file is a torch state dict in torchvision's VGG16 layout (``features.N.weight`` / ``features.N.bias``, N the
index in ``torchvision.models.vgg16().features``), e.g. torchvision's ``vgg16-397923af.pth`` downloaded by the user, or
the official SingleHDR ``vgg16.npy`` (Caffe) re-saved in that layout. Only the convs up to pool3 are read.

Input conventions (``convention``):
- ``"torchvision"``: RGB in [0, 1], normalised with the ImageNet mean/std (torchvision's weights);
- ``"caffe"``: BGR ×255 minus the VGG mean (103.939, 116.779, 123.68), the convention of the official SingleHDR
  ``vgg16.npy`` and of HDRCNN's encoder.

Magnitude. SingleHDR's λp = 1e-3 was set for the Caffe file, whose inputs span ±128: its activations are far larger
than those of a torchvision-convention file fed (x − mean)/std, whose inputs span about ±2.5. The loss is therefore
always expressed in the Caffe convention's units: with a torchvision-convention file the per-pool distances are
multiplied by ``TORCHVISION_TO_CAFFE`` = 255 · mean(std) = 57.63, the ratio of the two conventions' input scales.
A ReLU/max-pool network's activations scale linearly with its input (and biases), so for two files whose weights
have comparable magnitudes (as the standard ImageNet VGG16 files do) this is the ratio of their activations; it is
an estimate for independently trained files, so ``scale`` can be set explicitly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.tf_compat import max_pool_same

log = logging.getLogger(__name__)

VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # conv1_1 … conv5_3 in torchvision's features
VGG16_CONV_SHAPES = (
    (3, 64),
    (64, 64),
    (64, 128),
    (128, 128),
    (128, 256),
    (256, 256),
    (256, 256),
    (256, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
)
VGG16_STAGE_SIZES = (2, 2, 3, 3, 3)  # convs per pooling stage
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB, IMAGENET_STD_RGB = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CONVENTIONS = ("torchvision", "caffe")
TORCHVISION_TO_CAFFE = 255.0 * sum(IMAGENET_STD_RGB) / 3  # ≈ 57.6: Caffe inputs per torchvision input unit


def read_vgg16_convs(path: str | Path, n_convs: int = 13) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n_convs`` VGG16 convs (weight (O, I, 3, 3), bias (O,)) from a torchvision-layout state dict file."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such VGG16 weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(f"{path}: not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ZooError(f"{path}: expected a state dict with features.N.weight/bias keys, got {type(state).__name__}")
    convs = []
    for index, (c_in, c_out) in zip(VGG16_CONV_INDICES[:n_convs], VGG16_CONV_SHAPES):
        expected = {"weight": (c_out, c_in, 3, 3), "bias": (c_out,)}
        pair = []
        for leaf, shape in expected.items():
            key = f"features.{index}.{leaf}"
            if key not in state:
                raise ZooError(f"{path}: key {key} missing; expected torchvision VGG16 layout (features.N.weight/bias)")
            tensor = torch.as_tensor(state[key]).float()
            if tuple(tensor.shape) != shape:
                raise ZooError(f"{path}: {key} has shape {tuple(tensor.shape)}, expected {shape}")
            pair.append(tensor)
        convs.append((pair[0], pair[1]))
    return convs


def vgg_input(x: torch.Tensor, convention: str) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] → the network input of the given convention."""
    if convention == "torchvision":
        mean = x.new_tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
        return (x - mean) / std
    if convention == "caffe":
        scaled = x * 255.0
        return torch.stack(
            [scaled[:, 2] - CAFFE_MEAN_BGR[0], scaled[:, 1] - CAFFE_MEAN_BGR[1], scaled[:, 0] - CAFFE_MEAN_BGR[2]],
            dim=1,
        )
    raise ZooError(f"VGG16 input convention must be one of {CONVENTIONS}, got {convention!r}")


class VGG16Pools(nn.Module):
    """Frozen VGG16 conv1_1 … conv3_3 returning the pool1, pool2 and pool3 activations (2×2 'SAME' max-pools)."""

    def __init__(self, convs: list[tuple[torch.Tensor, torch.Tensor]], convention: str):
        super().__init__()
        if convention not in CONVENTIONS:
            raise ZooError(f"VGG16 input convention must be one of {CONVENTIONS}, got {convention!r}")
        self.convention = convention
        self.convs = nn.ModuleList()
        for weight, bias in convs[:7]:
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.convs.append(conv)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = vgg_input(x, self.convention)
        pools, layers = [], iter(self.convs)
        for size in VGG16_STAGE_SIZES[:3]:
            for _ in range(size):
                x = F.relu(next(layers)(x))
            x = max_pool_same(x, 2, 2)
            pools.append(x)
        return pools


class PerceptualLoss(nn.Module):
    """Per-image perceptual distance: Σ over pool1..pool3 of mean |VGG(prediction) − VGG(target)| (SingleHDR's Lp).

    Args:
        weights: VGG16 weights file (torchvision layout) or None. Without weights the loss is 0 and a warning is
            logged once (the term is skipped, nothing is downloaded).
        convention: the weights' input convention, ``"torchvision"`` or ``"caffe"``.
        scale: factor applied to the distance; None = the Caffe-units default for the convention (1 for "caffe",
            ``TORCHVISION_TO_CAFFE`` for "torchvision"; see the module docstring).

    ``forward(prediction, target)``: images (B, 3, H, W) nominally in [0, 1] (SingleHDR feeds log-tone-mapped HDR)
    → (B,) losses. The frozen network follows the prediction's device and dtype.
    """

    def __init__(self, weights: str | Path | None = None, convention: str = "torchvision", scale: float | None = None):
        super().__init__()
        if convention not in CONVENTIONS:
            raise ZooError(f"VGG16 input convention must be one of {CONVENTIONS}, got {convention!r}")
        self.scale = float(scale) if scale is not None else (1.0 if convention == "caffe" else TORCHVISION_TO_CAFFE)
        self.weights = None if weights is None else str(weights)
        self.vgg = VGG16Pools(read_vgg16_convs(weights, 7), convention) if weights is not None else None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.vgg is not None

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.vgg is None:
            if not self._warned:
                log.warning(
                    "perceptual loss disabled: no VGG16 weights file given (recipe option vgg_weights); "
                    "training runs without that term"
                )
                self._warned = True
            return prediction.new_zeros(prediction.shape[0])
        weight = self.vgg.convs[0].weight
        if weight.device != prediction.device or weight.dtype != prediction.dtype:
            self.vgg.to(device=prediction.device, dtype=prediction.dtype)
        with torch.no_grad():
            target_pools = self.vgg(target)
        distance = sum((p - t).abs().mean(dim=(1, 2, 3)) for p, t in zip(self.vgg(prediction), target_pools))
        return self.scale * distance


def caffe_first_conv(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold torchvision's input normalisation into conv1_1 so it accepts the Caffe convention (BGR ×255 − mean).

    Exact away from the image border (zero padding of the two inputs differs there); used to initialise the
    Hallucination-Net encoder, whose input is Caffe-style, from torchvision weights."""
    std = torch.tensor(IMAGENET_STD_RGB)
    shift = (torch.tensor(CAFFE_MEAN_BGR[::-1]) / 255.0 - torch.tensor(IMAGENET_MEAN_RGB)) / std  # per RGB channel
    new_bias = bias + (weight.sum(dim=(2, 3)) * shift).sum(dim=1)
    new_weight = (weight / (255.0 * std).view(1, 3, 1, 1)).flip(1)  # RGB input channels -> BGR
    return new_weight, new_bias
