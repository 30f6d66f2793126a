"""HDRUNet (Chen, Liu, Zhang, Qiao, Dong; CVPRW 2021, NTIRE 2021 Track 1 2nd place), faithful to chxy95/HDRUNet.

A U-Net whose features are modulated by a condition network through spatial feature transforms (SFT), plus a
weighting network that blends the input back in: ``output = mask(x)·x + unet(x, cond(x))``. Output is NTIRE
gamma-encoded HDR, unbounded (it can be negative; evaluation clamps at 0). 1,651,494 parameters.

Module and parameter names follow the official code, so official checkpoints load with ``strict=True`` (docs/models.md).
Deviation: the official network needs H and W to be multiples of 4 and crashes otherwise; ``forward`` here pads the
input (replicate) to a multiple of 4 and crops the output back. Sizes that are already multiples of 4 are unchanged.
"""

from __future__ import annotations

from zoo.models.hdrunet.convert import convert_official
from zoo.models.hdrunet.net import HDRUNet
from zoo.models.hdrunet.recipe import hdrunet_recipe
from zoo.registry import ModelSpec, register

SPEC = register(
    ModelSpec(
        name="hdrunet",
        build=HDRUNet,
        output_domain="ntire_gamma",
        size_multiple=HDRUNet.size_multiple,
        paper="Chen et al., HDRUNet: Single Image HDR Reconstruction with Denoising and Dequantization, CVPRW 2021",
        code_licence="MIT (official chxy95/HDRUNet); this port MIT",
        weights_licence="MIT (official pretrained_models/pretrained_model.pth)",
        recipe=hdrunet_recipe,
        convert_official=convert_official,
        description="U-Net with SFT condition network and weighting network; NTIRE gamma-domain output",
    )
)
