"""The four SingleHDR sub-networks (Liu et al., CVPR 2020), weight-compatible with the official TensorFlow graph.

Module and parameter names mirror the TF variable scopes (``conv2d_7``, ``res2a_branch2b``, ``bn2a_branch2b``,
``encoder.h3.conv_2``, ``decoder.h4.fuse_skip_connection``, …), so converting an official checkpoint is a renaming
plus a layout transpose (``singlehdr.official_variable_table``). All inputs and outputs are NCHW float32; the TF1
behaviours that matter for exact weights (docs/models.md) live in ``zoo.tf_compat``.

Sizes: the U-Nets need H, W multiples of 16, the Hallucination-Net multiples of 32, the Linearization-Net any size.
``SingleHDR.forward`` pads to 32 so callers never see these constraints.

Initialisation follows the official defaults (TF ``tf.layers``/slim: glorot-uniform kernels, zero biases; TensorLayer:
truncated normal σ 0.02, BN γ ~ N(1, 0.002), fuse convs initialised to ``x + skip``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.tf_compat import (
    increase,
    max_pool_same,
    pad_same,
    resize_bilinear_x2,
    same_padding,
    sobel_edges,
    soft_vote,
)

Taps = dict[str, torch.Tensor] | None  # optional dict that forward() fills with named intermediate tensors

LEAKY_SLOPE = 0.1  # tf.nn.leaky_relu(x, 0.1) in the U-Nets
SLIM_BN_EPS, SLIM_BN_MOMENTUM = 1e-3, 1e-3  # slim batch_norm: epsilon 1e-3, decay 0.999 (Linearization-Net)
TL_BN_EPS, TL_BN_MOMENTUM = 1e-5, 0.1  # TensorLayer BatchNormLayer: epsilon 1e-5, decay 0.9 (Hallucination-Net)
VGG_MEAN_BGR = (103.939, 116.779, 123.68)  # Caffe VGG16 mean, subtracted from the ×255 BGR encoder input
HISTOGRAM_BINS = (4, 8, 16)  # soft histograms with K+1 bins each: 15 + 27 + 51 channels on RGB
LINEARIZATION_IN_CHANNELS = 3 + 6 + sum(3 * (k + 1) for k in HISTOGRAM_BINS)  # 102
SKIP_SCALE = 1.0 / 255  # TF multiplies the encoder skips by float32(1/255)


def _tf_conv_name(index: int) -> str:
    """``tf.layers.conv2d`` names in creation order: conv2d, conv2d_1, conv2d_2, …"""
    return "conv2d" if index == 0 else f"conv2d_{index}"


def _check_multiple(x: torch.Tensor, multiple: int, net: str) -> None:
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ZooError(f"{net}: input size {tuple(x.shape[-2:])} must be a multiple of {multiple} (SingleHDR pads)")


# ----------------------------------------------------------------------------------------------------------------------
# Dequantization-Net and Refinement-Net: the same U-Net.


class UNet(nn.Module):
    """The official Dequantization/Refinement U-Net: 4 average-pool downsamplings, legacy-bilinear upsampling.

    Convs ``conv2d`` … ``conv2d_18`` (stride 1, 'same', bias, leaky ReLU 0.1): two 7×7 → 16 (s1); down 5×5 → 32 (s2),
    3×3 → 64 (s3), → 128 (s4), → ``bottleneck``; up to 128/64/32/16, each as resize → conv → concat[x, skip] → conv;
    head 3×3 → 3. Dequantization (``tanh_head``): output = x + tanh(head), in [-1, 2] before the pipeline's clip.
    Refinement: output = x[:, :3] + head (a residual on its first input, A), unbounded.
    """

    def __init__(self, in_channels: int, bottleneck: int, tanh_head: bool):
        super().__init__()
        self.tanh_head = tanh_head
        # (in, out, kernel) per conv, in TF creation order
        specs = [(in_channels, 16, 7), (16, 16, 7)]
        width = 16
        for out, k in ((32, 5), (64, 3), (128, 3), (bottleneck, 3)):
            specs += [(width, out, k), (out, out, k)]
            width = out
        for out in (128, 64, 32, 16):
            specs += [(width, out, 3), (2 * out, out, 3)]
            width = out
        specs.append((16, 3, 3))
        for i, (c_in, c_out, k) in enumerate(specs):
            conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
            nn.init.xavier_uniform_(conv.weight)  # tf.layers.conv2d default: glorot uniform, zero bias
            nn.init.zeros_(conv.bias)
            self.add_module(_tf_conv_name(i), conv)

    def _conv(self, index: int, x: torch.Tensor, act: bool = True) -> torch.Tensor:
        y = getattr(self, _tf_conv_name(index))(x)
        return F.leaky_relu(y, LEAKY_SLOPE, inplace=True) if act else y  # y is the conv's fresh output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W), H and W multiples of 16 → (B, 3, H, W)."""
        _check_multiple(x, 16, "SingleHDR U-Net")
        skips = [self._conv(1, self._conv(0, x))]
        for i in (2, 4, 6, 8):
            y = self._conv(i + 1, self._conv(i, F.avg_pool2d(skips[-1], 2)))
            skips.append(y)
        y = skips.pop()
        for i in (10, 12, 14, 16):
            y = self._conv(i, resize_bilinear_x2(y))
            y = self._conv(i + 1, torch.cat([y, skips.pop()], dim=1))
        head = self._conv(18, y, act=False)
        return x + torch.tanh(head) if self.tanh_head else x[:, :3] + head


def dequantization_net() -> UNet:
    """Dequantization-Net (TF scope ``Dequantization_Net``): 3 → 3, 256-channel bottleneck, 1,999,779 parameters."""
    return UNet(3, 256, tanh_head=True)


def refinement_net() -> UNet:
    """Refinement-Net (TF scope ``Refinement_Net``): concat[A, B, C] (9) → 3, 128 bottleneck, 1,266,947 parameters."""
    return UNet(9, 128, tanh_head=False)


# ----------------------------------------------------------------------------------------------------------------------
# Linearization-Net.

# (block, in, mid, out, stride, projection shortcut): a truncated ResNet-50 with Caffe naming (not a ResNet-18)
RESNET_BLOCKS = (
    ("2a", 64, 64, 256, 1, True),
    ("2b", 256, 64, 256, 1, False),
    ("2c", 256, 64, 256, 1, False),
    ("3a", 256, 128, 512, 2, True),
    ("3b", 512, 128, 512, 1, False),
)


def _slim_bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=SLIM_BN_EPS, momentum=SLIM_BN_MOMENTUM)


def _slim_conv(c_in: int, c_out: int, k: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, stride, padding=0, bias=bias)  # padding done explicitly (TF 'SAME')
    nn.init.xavier_uniform_(conv.weight)  # slim.conv2d default: xavier (uniform), zero bias
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def _feature_parts(c: torch.Tensor):
    """The Linearization-Net's input features in the official channel order: RGB, Sobel edges, soft histograms
    (``soft_histogram``'s layout), each histogram bin (3 channels) on its own: at full frame a whole 51-channel
    histogram and the list of its bins cost 0.4 KB per pixel beside the feature map itself."""
    yield c
    yield sobel_edges(c)
    for bins in HISTOGRAM_BINS:
        for i in range(bins + 1):
            yield soft_vote(c, i, bins)


class LinearizationNet(nn.Module):
    """Linearization-Net: predicts each image's inverse camera response from the dequantized LDR C.

    Features (102 channels): RGB, Sobel edges (6), spatial soft histograms with K = 4, 8, 16. A truncated
    ResNet-50 (``crf_feature_net``: conv1 7×7/2 + BN + ReLU, 3×3/2 max-pool, res2a–c, res3a–b; slim BN eps 1e-3) is
    averaged over space into 512 values; ``ae_invcrf_decode_net.dense`` maps them to k basis weights w. The curve is
    ``increase(g0 + components·w)``: (B, 1024) samples at i/1023, non-decreasing from 0 to 1.

    ``g0`` (1024,) and ``components`` (1024, k) are the inverse-response basis; they are non-persistent buffers (not
    in the state dict), because the weights only make sense with the basis they were trained with: the official
    weights need the official EMoR ``invemor.txt``, zoo-trained weights the project's own basis.
    """

    def __init__(self, g0: torch.Tensor, components: torch.Tensor):
        super().__init__()
        if g0.shape != (components.shape[0],):
            raise ZooError(f"inverse basis: g0 has shape {tuple(g0.shape)}, components {tuple(components.shape)}")
        self.register_buffer("g0", g0.to(torch.float32), persistent=False)
        self.register_buffer("components", components.to(torch.float32), persistent=False)
        net = nn.ModuleDict()
        net["conv1"] = _slim_conv(LINEARIZATION_IN_CHANNELS, 64, 7, stride=2, bias=True)
        net["bn_conv1"] = _slim_bn(64)
        for block, c_in, mid, c_out, stride, projection in RESNET_BLOCKS:
            if projection:
                net[f"res{block}_branch1"] = _slim_conv(c_in, c_out, 1, stride)
                net[f"bn{block}_branch1"] = _slim_bn(c_out)
            branches = {"2a": (c_in, mid, 1, stride), "2b": (mid, mid, 3, 1), "2c": (mid, c_out, 1, 1)}
            for branch, (a, b, k, s) in branches.items():
                net[f"res{block}_branch{branch}"] = _slim_conv(a, b, k, s)
                net[f"bn{block}_branch{branch}"] = _slim_bn(b)
        self.crf_feature_net = net
        dense = nn.Linear(512, components.shape[1])
        nn.init.xavier_uniform_(dense.weight)  # tf.layers.dense default: glorot uniform, zero bias
        nn.init.zeros_(dense.bias)
        self.ae_invcrf_decode_net = nn.ModuleDict({"dense": dense})

    @staticmethod
    def input_features(c: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, 102, H', W'): RGB, Sobel, soft histograms (official channel order) inside a
        zero border, conv1's TF 'SAME' padding (H' = H + 5 for an even H). Each feature is written straight into the
        bordered map: at full frame the 102-channel map is about 1 GB, and padding it afterwards would copy it again."""
        (top, bottom), (left, right) = same_padding(c.shape[2], 7, 2), same_padding(c.shape[3], 7, 2)
        batch, _, height, width = c.shape
        channels_last = c.is_contiguous(memory_format=torch.channels_last) and not c.is_contiguous()
        out = torch.empty(
            (batch, LINEARIZATION_IN_CHANNELS, top + height + bottom, left + width + right),
            dtype=c.dtype,
            device=c.device,
            memory_format=torch.channels_last if channels_last else torch.contiguous_format,
        )
        for border in (out[..., :top, :], out[..., top + height :, :], out[..., :left], out[..., left + width :]):
            border.zero_()
        interior = out[..., top : top + height, left : left + width]
        start = 0
        for part in _feature_parts(c):  # one at a time: each is freed once copied
            interior[:, start : start + part.shape[1]] = part
            start += part.shape[1]
        return out

    def _conv_bn(self, x: torch.Tensor, name: str, bn: str, relu: bool) -> torch.Tensor:
        net = self.crf_feature_net
        conv = net[name]
        k, s = conv.kernel_size[0], conv.stride[0]
        y = net[bn](conv(pad_same(x, k, s)))
        return torch.relu_(y) if relu else y

    def stem(self, c: torch.Tensor, taps: Taps = None) -> torch.Tensor:
        """conv1 (7×7/2) + BN + ReLU + 3×3/2 max-pool of the input features of c (B, 3, H, W) → (B, 64, ~H/4, ~W/4).
        The 102-channel feature map (``input_features``) is freed once conv1 has read it: at full frame it is the
        largest tensor of the net, and the ResNet blocks after it need only the quarter-size stem output."""
        net = self.crf_feature_net
        features = self.input_features(c)
        conv1 = net["conv1"](features)
        if taps is not None:  # the features inside conv1's zero border
            top, left = same_padding(c.shape[2], 7, 2)[0], same_padding(c.shape[3], 7, 2)[0]
            interior = features[..., top : top + c.shape[2], left : left + c.shape[3]]
            taps.update(features_102=interior, conv1_out=conv1)
        del features
        x = max_pool_same(torch.relu_(net["bn_conv1"](conv1)), 3, 2)
        if taps is not None:
            taps["pool1_out"] = x
        return x

    def feature(self, x: torch.Tensor, taps: Taps = None) -> torch.Tensor:
        """The stem output (``stem``) → the 512-value global feature (spatial mean of res3b)."""
        for block, *_, projection in RESNET_BLOCKS:
            shortcut = self._conv_bn(x, f"res{block}_branch1", f"bn{block}_branch1", False) if projection else x
            y = self._conv_bn(x, f"res{block}_branch2a", f"bn{block}_branch2a", True)
            y = self._conv_bn(y, f"res{block}_branch2b", f"bn{block}_branch2b", True)
            y = self._conv_bn(y, f"res{block}_branch2c", f"bn{block}_branch2c", False)
            x = torch.relu_(y.add_(shortcut))
            if taps is not None:
                taps[f"res{block}_relu"] = x
        return x.mean(dim=(2, 3))

    def forward(self, c: torch.Tensor, taps: Taps = None) -> torch.Tensor:
        """c: dequantized LDR (B, 3, H, W) in [0, 1], any H, W → inverse response (B, 1024)."""
        feature = self.feature(self.stem(c, taps), taps)
        weights = self.ae_invcrf_decode_net["dense"](feature)
        raw = self.g0 + weights @ self.components.t()
        if taps is not None:
            taps.update(feature_512=feature, pca_w_11=weights, invcrf_before_increase=raw)
        return increase(raw)


# ----------------------------------------------------------------------------------------------------------------------
# Hallucination-Net.


def _truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """N(0, std²) truncated at ±2·std (TF's truncated_normal), by inverse-CDF sampling: one pass, unlike the
    rejection loop of ``nn.init.trunc_normal_``, which takes seconds on the 24.6M-parameter VGG encoder."""
    edge = math.erf(2.0 / math.sqrt(2.0))  # 2Φ(2) - 1
    with torch.no_grad():
        return tensor.uniform_(-edge, edge).erfinv_().mul_(std * math.sqrt(2.0))


def _tl_conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
    _truncated_normal_(conv.weight, 0.02)  # TensorLayer default W_init, zero bias
    nn.init.zeros_(conv.bias)
    return conv


def _tl_bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=TL_BN_EPS, momentum=TL_BN_MOMENTUM)
    nn.init.normal_(bn.weight, 1.0, 0.002)  # TL 1.10 gamma_init
    return bn


def _fuse_conv(c_decoder: int, c_skip: int) -> nn.Conv2d:
    """1×1 conv over concat[decoder, skip], initialised to compute decoder + skip (HDRCNN's fusion)."""
    conv = nn.Conv2d(c_decoder + c_skip, c_decoder, 1)
    with torch.no_grad():
        conv.weight.zero_()
        eye = torch.arange(c_decoder)
        conv.weight[eye, eye, 0, 0] = 1.0
        conv.weight[eye, c_decoder + eye, 0, 0] = 1.0
        conv.bias.zero_()
    return conv


def _fold_axis(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """Fold a 3-tap axis ``dim`` of a kernel into the two 2-tap kernels a nearest ×2 upsampling leaves along it:
    output 2i sees input rows (i-1, i, i) → taps (k0, k1 + k2); output 2i+1 sees (i, i, i+1) → (k0 + k1, k2).
    Returns the two phases stacked on a new leading dim."""
    k0, k1, k2 = weight.unbind(dim)
    return torch.stack([torch.stack([k0, k1 + k2], dim), torch.stack([k0 + k1, k2], dim)])


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """A 3×3 kernel (C_out, C_in, 3, 3) → the (4·C_out, C_in, 2, 2) kernels of ``upsampled_conv``: the output phase
    (row parity a, column parity b) in block 2a + b."""
    c_out, c_in = weight.shape[:2]
    return _fold_axis(_fold_axis(weight, 2), 4).transpose(0, 1).reshape(4 * c_out, c_in, 2, 2)


def upsampled_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, kernels: tuple[torch.Tensor, ...] | None = None
) -> torch.Tensor:
    """``conv2d(reflect_pad_1(nearest_x2(x)), weight, bias)`` for a 3×3 ``weight``, computed without the upsampled
    image: each of the four output phases (row parity a, column parity b) is a 2×2 conv of x replicate-padded by one
    pixel (reflect = replicate after nearest ×2, since rows 0 and 1 are equal). The 2×2 convs on the low-resolution
    input do 16 instead of 36 multiply-adds per input pixel and channel pair, and no tensor of 4× the input's size is
    made (at full frame the last one would be 0.8 GB); equal up to float rounding.
    ``kernels``: ``phase_kernels(weight).chunk(4)`` computed beforehand (inference folds them once); then the phases are
    computed one at a time, so only one phase's map exists beside the output (the four together are as large as the
    output: 256 bytes per pixel at full frame). Without it (training) one conv computes all four in the graph."""
    c_out = weight.shape[0]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    if kernels is None:
        y = F.conv2d(padded, phase_kernels(weight), bias.repeat(4))
        phases = (y[:, k * c_out : (k + 1) * c_out] for k in range(4))
    else:
        phases = (F.conv2d(padded, kernel, bias) for kernel in kernels)
    height, width = x.shape[-2:]
    out = None
    # phase (a, b) at input pixel (i, j) is the 2×2 conv at padded (i + a, j + b)
    for block, phase in enumerate(phases):
        if out is None:  # laid out as the conv's output (a training phase is a channel slice of y: ask y)
            channels_last = (y if kernels is None else phase).is_contiguous(memory_format=torch.channels_last)
            out = torch.empty(
                (x.shape[0], c_out, 2 * height, 2 * width),
                dtype=phase.dtype,
                device=phase.device,
                memory_format=torch.channels_last if channels_last else torch.contiguous_format,
            )
        a, b = divmod(block, 2)
        out[..., a::2, b::2] = phase[..., a : a + height, b : b + width]
    return out


def batch_norm_(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(x)``, in place on x where no gradient is taken and ``bn`` uses its running statistics (inference): the
    same per-channel x·γ/√(var + ε) + (β − mean·γ/√(var + ε)) torch's CPU kernel computes, without a second map of
    x's size. Otherwise (training, or a gradient wanted) ``bn(x)`` itself."""
    if torch.is_grad_enabled() or bn.training:
        return bn(x)
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    return x.mul_(scale[:, None, None]).add_(shift[:, None, None])


class ResizeConv(nn.Module):
    """Resize-convolution ``decon2d``: nearest ×2, REFLECT pad 1, 3×3 'VALID' conv + ReLU, BN (eps 1e-5), ReLU.

    The conv's ``weight``/``bias`` sit on this module (TF: ``decon2d/W_conv2d``, ``decon2d/b_conv2d``) and the BN is
    ``batch_norm_dc``. The upsampling, padding and conv run as ``upsampled_conv`` (the same function, 2.25× fewer
    FLOPs, no 4×-size intermediates).
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        conv = _tl_conv(c_in, c_out, 3)
        self.weight, self.bias = conv.weight, conv.bias
        self.batch_norm_dc = _tl_bn(c_out)
        self._folded: tuple[tuple, tuple[torch.Tensor, ...]] | None = None  # (weight's identity, its phase kernels)

    def _kernels(self) -> tuple[torch.Tensor, ...] | None:
        """The folded kernels, made once per set of weights where no gradient is taken: refolding on every call
        would cost a window 16 MB of short-lived tensors (counted by the tiler's memory probe as per-pixel bytes)."""
        if torch.is_grad_enabled():
            return None  # training: fold inside the graph, so the gradient reaches ``weight``
        key = (self.weight.data_ptr(), self.weight._version, self.weight.dtype, self.weight.device)
        if self._folded is None or self._folded[0] != key:
            # one tensor per phase, made here: a slice taken per call would count the whole folded kernel (17 MB)
            # as a window's memory in the tiler's probe
            self._folded = (key, phase_kernels(self.weight.detach()).chunk(4))
        return self._folded[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = upsampled_conv(x, self.weight, self.bias, self._kernels())
        return torch.relu_(batch_norm_(self.batch_norm_dc, torch.relu_(y)))


VGG16_STAGES = ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))  # (in, out, convs) per h1..h5
# decoder steps h1..h6: (fuse skip channels or 0, resize-conv in → out or None)
DECODER_STEPS = ((0, (512, 512)), (512, (512, 512)), (512, (512, 256)), (256, (256, 128)), (128, (128, 64)), (64, None))


def _concat_scaled_skip(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """concat[x, skip · SKIP_SCALE] along channels, the skip scaled inside the concatenation: the same float32
    products as scaling first, without a scaled copy of a full-resolution 64-channel map."""
    fused = torch.cat([x, skip], dim=1)
    fused[:, x.shape[1] :].mul_(SKIP_SCALE)
    return fused


def fuse_skip(conv: nn.Conv2d, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """The 1×1 ``conv`` over concat[x, skip · SKIP_SCALE]. Where no gradient is taken, as the sum of its two halves
    (the scale folded into the skip half's weights), without the concatenation: at full frame that is a 128-channel
    map, the largest tensor of the whole model. Channels-last inputs accumulate both halves into one output (two
    matrix products); others add a second conv's output. Equal up to float rounding."""
    if torch.is_grad_enabled():
        return conv(_concat_scaled_skip(x, skip))
    weight = conv.weight[:, :, 0, 0]
    w_x, w_skip = weight[:, : x.shape[1]], weight[:, x.shape[1] :] * SKIP_SCALE
    if x.is_contiguous(memory_format=torch.channels_last) and skip.is_contiguous(memory_format=torch.channels_last):
        batch, _, height, width = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # views: channels-last is (N, H, W, C) in memory
        skip_rows = skip.permute(0, 2, 3, 1).reshape(-1, skip.shape[1])
        out = torch.addmm(conv.bias, rows, w_x.t())
        out.addmm_(skip_rows.to(out.dtype), w_skip.t().to(out.dtype))
        return out.view(batch, height, width, -1).permute(0, 3, 1, 2)
    out = F.conv2d(x, w_x[..., None, None], conv.bias)
    return out.add_(F.conv2d(skip, w_skip[..., None, None]))


class HallucinationNet(nn.Module):
    """Hallucination-Net: HDRCNN's VGG16 U-Net with resize-convolutions, predicting highlight content.

    Input B: linearized image (B, 3, H, W), H and W multiples of 32, nominally in [0, 1]. The encoder sees
    BGR(255·B) minus the VGG mean; skips are the pre-pool activations ×1/255, fused as concat[decoder, skip] through a
    1×1 conv; the last skip is the input itself. Output ``hal_raw`` (B, 3, H, W) before the ReLU the pipeline applies.
    Block names follow TF: ``encoder.h{1..6}``, ``decoder.h{1..7}``. BN eps 1e-5 (TensorLayer).
    """

    def __init__(self) -> None:
        super().__init__()
        encoder = nn.ModuleDict()
        for stage, (c_in, c_out, n) in enumerate(VGG16_STAGES, start=1):
            convs = {f"conv_{k + 1}": _tl_conv(c_in if k == 0 else c_out, c_out, 3) for k in range(n)}
            encoder[f"h{stage}"] = nn.ModuleDict(convs)
        encoder["h6"] = nn.ModuleDict({"conv": _tl_conv(512, 512, 3), "batch_norm": _tl_bn(512)})
        self.encoder = encoder
        decoder = nn.ModuleDict()
        for step, (skip, resize) in enumerate(DECODER_STEPS, start=1):
            block = nn.ModuleDict()
            if skip:
                block["fuse_skip_connection"] = _fuse_conv(skip, skip)
            if resize:
                block["decon2d"] = ResizeConv(*resize)
            decoder[f"h{step}"] = block
        head = nn.Conv2d(64, 3, 1)
        nn.init.xavier_normal_(head.weight)
        nn.init.zeros_(head.bias)
        decoder["h7"] = nn.ModuleDict(
            {"conv2d": head, "batch_norm": _tl_bn(3), "fuse_skip_connection": _fuse_conv(3, 3)}
        )
        self.decoder = decoder

    def load_vgg16(self, path: str, convention: str = "torchvision") -> None:
        """Initialise the encoder convs h1..h5 from a VGG16 weights file in torchvision layout (the official recipe
        starts from Places365 VGG16 weights). ``convention`` is the file's input convention; torchvision weights get
        their normalisation folded into conv1_1, since this encoder's input is Caffe-style."""
        from zoo.losses.perceptual import caffe_first_conv, read_vgg16_convs

        convs = read_vgg16_convs(path)
        if convention == "torchvision":
            convs[0] = caffe_first_conv(*convs[0])
        elif convention != "caffe":
            raise ZooError(f"VGG16 input convention must be 'torchvision' or 'caffe', got {convention!r}")
        targets = [conv for stage in range(1, 6) for conv in self.encoder[f"h{stage}"].values()]
        with torch.no_grad():
            for conv, (weight, bias) in zip(targets, convs, strict=True):
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)

    def forward(self, b: torch.Tensor, taps: Taps = None) -> torch.Tensor:
        """b: (B, 3, H, W), H and W multiples of 32 → hal_raw (B, 3, H, W), unbounded (the pipeline takes its ReLU)."""
        _check_multiple(b, 32, "SingleHDR Hallucination-Net")
        x_in = b * 255.0
        r, g, bl = x_in.unbind(dim=1)
        x = torch.stack([bl - VGG_MEAN_BGR[0], g - VGG_MEAN_BGR[1], r - VGG_MEAN_BGR[2]], dim=1)
        skips = [x_in]
        for stage in range(1, 6):
            for conv in self.encoder[f"h{stage}"].values():
                x = torch.relu_(conv(x))
            skips.append(x)
            x = max_pool_same(x, 2, 2)
        if taps is not None:
            taps["hal_vgg_pool5"] = x
        h6 = self.encoder["h6"]
        x = torch.relu_(h6["batch_norm"](h6["conv"](x)))
        if taps is not None:
            taps["hal_h6_relu"] = x
        for step in range(1, 7):
            block = self.decoder[f"h{step}"]
            if "fuse_skip_connection" in block:  # the skips in reverse order, each dropped once fused
                x = fuse_skip(block["fuse_skip_connection"], x, skips.pop())
            if "decon2d" in block:
                x = block["decon2d"](x)
        h7 = self.decoder["h7"]
        x = torch.relu_(h7["batch_norm"](h7["conv2d"](x)))
        return fuse_skip(h7["fuse_skip_connection"], x, skips.pop())
