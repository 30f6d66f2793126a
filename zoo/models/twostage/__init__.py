"""The two-stage RDAB network of Sharif et al., "A Two-stage Deep Network for High Dynamic Range Image Reconstruction",
CVPRW 2021 (NTIRE 2021 HDR challenge, track 1), arXiv 2104.09386.

Written from the paper and docs/models.md (the official repo, sharif-apu/twostageHDR_NTIRE21, has no licence file; no
code is copied). Layer for layer it matches the official modules, without their registered-but-unused layers:

- stage I (``stage1``, official ``ResMKHDR``): 3×3 input conv 3→64, two residual dense attention blocks (RDAB), 1×1
  output conv 64→3 plus the input, ReLU: 555,655 parameters. It maps the LDR input to an enhanced 8-bit-like image.
- stage II (``stage2``, official ``HDRRangeNet``): the same with one RDAB: 278,821 parameters. It maps stage I's output
  to the HDR image in the NTIRE gamma-2.24 encoding (≥ 0 because of the final ReLU).
- an RDAB is RRDB(x) + SpatialAttention(x). RRDB(x) = 0.8·(m·x5 + x) + x around a 5-conv residual dense block
  (64 channels, growth 32, plain ReLUs), with m = 0.2 in stage I and 0.5 in stage II. The spatial attention
  multiplies a 3×3 convolution of x (not x itself) by sigmoid(conv7×7([mean_c x, max_c x])).

Stride 1 throughout, so any H×W works (size multiple 1). PyTorch default initialisation, as the official code.

Training (``twostage_recipe``): all three networks are stepped every iteration with their own Adam (lr 5e-4,
betas (0.9, 0.99)), constant learning rate (the official StepLRs are never stepped at HEAD):

1. stage I: L1 + (1 − MS-SSIM) + 1e-3·BCE(D(out1), 1) against the clipped 8-bit target
   gt8 = round(clip(target·255, 0, 255)) / 255 (what the official data tool writes as ``_gt8.png``). The paper's
   eq. 6 weights the adversarial term 1e-4; the official code uses 1e-3, kept here. The paper calls D conditional;
   the official D sees only the image (3 input channels), kept here.
2. discriminator: BCE(D(gt8), U[0.7, 1.2]) + BCE(D(out1.detach()), U[0, 0.3]) (noisy soft labels, per sample; the
   "real" label can exceed 1, as in the official code). It runs after stage I's step, so stage I's adversarial term
   back-propagates through the discriminator's weights before they change.
3. stage II on out1.detach() (it never back-propagates into stage I): L1 + ΔE2000/255 against the HDR target. The
   official colour loss passes no gradient (it returns a new leaf tensor computed in numpy); the default here is a
   differentiable CIEDE2000 (the paper's intent); ``ciede2000_grad=False`` is the official behaviour (the term is
   computed without gradient and only logged).

Ablation (paper Table 2): ``create_model("twostage", stages="stage1" | "stage2")`` builds a one-stage network whose
output is that stage's, and ``recipe(stages=...)`` trains it; the two options must agree (the losses check). A
one-stage network has to produce the HDR image by itself, so it is trained against the HDR target (the paper does not
say more): "stage1" with stage I's losses (L1 + MS-SSIM + GAN, with the discriminator), "stage2" with stage II's
losses on the LDR input.

Official checkpoints (``{"stateDictEG", "stateDictER", "stateDictED", "optimizer*", "schedulerLR", "step"}``) hold a
pickled StepLR, so ``zoo.load_weights`` (weights_only) refuses them: convert once with
``convert_official_checkpoint(path, out, trust=True)``. ``convert_official`` maps the official layer names (and the
fixture's flat ``stage1.``/``stage2.`` layout) to this module's and drops the known unused layers by name.
"""

from __future__ import annotations

from zoo.models.twostage.convert import convert_official
from zoo.models.twostage.net import TwoStageHDR
from zoo.models.twostage.recipe import twostage_recipe
from zoo.registry import ModelSpec, register


def build(stages: str = "both") -> TwoStageHDR:
    return TwoStageHDR(stages=stages)


SPEC = register(
    ModelSpec(
        name="twostage",
        build=build,
        output_domain="ntire_gamma",
        size_multiple=1,
        paper="Sharif, Naqvi, Biswas & Kim, A Two-stage Deep Network for High Dynamic Range Image Reconstruction, "
        "CVPRW 2021 (NTIRE 2021), arXiv:2104.09386",
        code_licence="MIT (this port, written from the paper and notes); the official repository "
        "sharif-apu/twostageHDR_NTIRE21 has no LICENSE file and none of its code is used",
        weights_licence="none shipped; the official weights (weights/singleShotAtentionFinal_checkpoint.pth in the "
        "official repo) carry no licence: treat them as data with provenance (convert_official_checkpoint records "
        "the source sha256)",
        recipe=twostage_recipe,
        convert_official=convert_official,
        description="two-stage residual dense attention network: stage I enhances the LDR image (8-bit target), "
        "stage II maps it to NTIRE gamma HDR",
    )
)
