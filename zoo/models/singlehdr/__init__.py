"""SingleHDR (Liu, Lai, Chen, Kao, Yang, Chuang, Huang; CVPR 2020): single-image HDR by reversing the camera pipeline.

Pipeline (official ``test_real_refinement.py``, docs/models.md), on an 8-bit sRGB LDR x in [0, 1]:

1. C = clip(Dequantization-Net(x), 0, 1)                       — undo quantisation
2. invcrf = Linearization-Net(C), B = apply_rf(C, invcrf)       — undo the camera response (per image, global)
3. α = clip((max_c B − 1 + 0.12)/0.12, 0, 1); A = B + α·relu(Hallucination-Net(B))   — fill clipped highlights
4. output = relu(Refinement-Net(concat[A, B, C]))                — model the rest of the camera pipeline

The output is **linear relative radiance** (domain ``linear_relative``), ≥ 0, with 1.0 ≈ the level where the input
clips when the weights were trained on exposure-aligned targets (the zoo's recipe). For evaluation the zoo maps it to
the NTIRE encoding with ``zoo.domains.to_ntire``: rule ``"aligned"``, i.e. no rescaling, then x**(1/2.24). Official
weights were fine-tuned against HDR normalised to mean 0.5 per patch, so their absolute scale is not exposure-aligned;
scores of official weights under the "aligned" rule are therefore pessimistic (docs/models.md, output domains).

Any input size: ``forward`` pads symmetrically (numpy 'symmetric', as the official test script) by ``pad_border``
pixels (official: 32) plus what is needed to reach a multiple of 32, and crops back. The official script instead
bicubic-resizes to a multiple of 64 before its 32-px pad; the zoo pads instead of resampling (a documented deviation).

Weights: the zoo's own, trained by ``scripts/reference.py`` (``zoo.create_model("singlehdr", pretrained=True)``, card
in zoo/pretrained/singlehdr.md); the official ones are not shipped. The official TF checkpoints (SingleHDR README,
Google Drive) convert with ``zoo convert singlehdr-tf CKPT OUT`` (``zoo.models.singlehdr.convert``) or load directly
as a mapping of TF variable names to arrays with ``zoo.load_weights``. They require the official EMoR inverse basis:
``zoo.create_model("singlehdr", response_basis="path/to/invemor.txt")``. Without ``response_basis`` the model uses the
project's own PCA basis (``zoo.data.crf``), and the two kinds of weights are not interchangeable.
"""

from __future__ import annotations

from zoo.models.singlehdr.convert import convert_official
from zoo.models.singlehdr.net import SIZE_MULTIPLE, build_singlehdr
from zoo.models.singlehdr.recipe import singlehdr_recipe
from zoo.registry import ModelSpec, register

SPEC = register(
    ModelSpec(
        name="singlehdr",
        build=build_singlehdr,
        output_domain="linear_relative",
        size_multiple=SIZE_MULTIPLE,
        paper="Liu et al., Single-Image HDR Reconstruction by Learning to Reverse the Camera Pipeline, CVPR 2020 "
        "(arXiv 2004.01179)",
        code_licence="official alex04072000/SingleHDR: no LICENSE file (Hallucination-Net from "
        "gabrieleilertsen/hdrcnn, BSD-3-Clause); this port: MIT",
        weights_licence="none shipped; official TF checkpoints (README Google Drive links) carry no licence; "
        "convert with `zoo convert singlehdr-tf`",
        recipe=singlehdr_recipe,
        convert_official=convert_official,
        has_global_branch=True,  # the inverse response curve is computed from the whole image
        # in bf16 the regressed curve drifts (PU21-PSNR -2.3 dB on the real eval split, one scene -13.5 dB); the net
        # is 14 % of the FLOPs, so it keeps float32 (benchmarks/precision.py: then -0.00 dB)
        float32_modules=("linearization",),
        description="Dequantization, Linearization (inverse CRF from an EMoR-style basis), Hallucination (VGG16 U-Net) "
        "and Refinement nets; linear relative output, mapped to NTIRE with the 'aligned' rule",
    )
)
