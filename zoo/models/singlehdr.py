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

Weights: none shipped. The official TF checkpoints (SingleHDR README, Google Drive) convert with
``zoo convert singlehdr-tf CKPT OUT`` (``zoo.models.singlehdr_convert``) or load directly as a mapping of TF variable
names to arrays with ``zoo.load_weights``. They require the official EMoR inverse basis:
``zoo.create_model("singlehdr", response_basis="path/to/invemor.txt")``. Without ``response_basis`` the model uses the
project's own PCA basis (``zoo.data.crf``), and the two kinds of weights are not interchangeable.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.models.singlehdr_nets import (
    HallucinationNet,
    LinearizationNet,
    ResizeConv,
    Taps,
    dequantization_net,
    refinement_net,
)
from zoo.models.tf_compat import CURVE_SAMPLES, apply_rf, pad_symmetric
from zoo.registry import ModelSpec, Objective, Recipe, Stage, register

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 32  # five 2×2 poolings in the VGG16 encoder
OFFICIAL_BORDER = 32  # test_real*.py pads 32 px 'symmetric' on every side
HIGHLIGHT_THRESHOLD = 0.12  # α ramps from 0 at max_c B = 0.88 to 1 at 1 (official code; the paper's γ = 0.95 is 0.05)
BASIS_COMPONENTS = 11


def highlight_mask(b: torch.Tensor, threshold: float = HIGHLIGHT_THRESHOLD) -> torch.Tensor:
    """The soft over-exposure mask α (B, 1, H, W) in [0, 1] of a linear image b (B, 3, H, W), official op order."""
    peak = b.amax(dim=1, keepdim=True)
    return torch.clamp_max(torch.clamp_min((peak - 1.0) + threshold, 0.0) / threshold, 1.0)


def _pad_amounts(size: int, border: int) -> tuple[int, int]:
    extra = -(size + 2 * border) % SIZE_MULTIPLE
    return border + extra // 2, border + extra - extra // 2


class SingleHDR(nn.Module):
    """The full SingleHDR model: ``dequantization``, ``linearization``, ``hallucination`` and ``refinement`` sub-nets.

    Args:
        g0, components: the inverse-response basis (1024,) and (1024, 11), see ``LinearizationNet``;
            ``response_basis`` records where it came from.
        refinement: keep the Refinement-Net (``test_real_refinement.py``); False gives the three-net model of
            ``test_real.py``, whose output is A.
        pad_border: symmetric padding on every side before the network (official 32); the pad also rounds the size up
            to a multiple of 32.
        highlight_threshold: width of α's ramp below 1 (official 0.12; the paper's γ = 0.95 is 0.05).
    """

    size_multiple = SIZE_MULTIPLE

    def __init__(
        self,
        g0: torch.Tensor,
        components: torch.Tensor,
        refinement: bool = True,
        pad_border: int = OFFICIAL_BORDER,
        response_basis: str = "",
        highlight_threshold: float = HIGHLIGHT_THRESHOLD,
    ):
        super().__init__()
        self.response_basis = response_basis  # where the basis came from (a path, or the project's asset)
        if pad_border < 0:
            raise ZooError(f"singlehdr: pad_border must be >= 0, got {pad_border}")
        if not 0 < highlight_threshold <= 1:
            raise ZooError(f"singlehdr: highlight_threshold must be in (0, 1], got {highlight_threshold}")
        self.pad_border = pad_border
        self.highlight_threshold = highlight_threshold
        self.dequantization = dequantization_net()
        self.linearization = LinearizationNet(g0, components)
        self.hallucination = HallucinationNet()
        self.refinement = refinement_net() if refinement else None

    def expand_highlights(self, b: torch.Tensor, taps: Taps = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A = b + α·relu(Hallucination-Net(b)): a positive residual only where b is near saturation.

        b: linear (B, 3, H, W), H and W multiples of 32. Returns (A, hal_raw, α)."""
        alpha = highlight_mask(b, self.highlight_threshold)
        hal_raw = self.hallucination(b, taps)
        return b + alpha * torch.relu(hal_raw), hal_raw, alpha

    def run(self, x: torch.Tensor, taps: Taps = None, refine: bool = True,
            invcrf: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """The official graph on an input whose H and W are multiples of 32 (no padding).

        Returns deq_raw, C, invcrf (B, 1024), B, alpha (B, 1, H, W), hal_raw, A, and (with refinement) ref_raw; plus
        output = relu(ref_raw), or A without refinement (or with ``refine=False``, which skips the Refinement-Net).
        All image tensors are (B, 3, H, W)."""
        out: dict[str, torch.Tensor] = {"deq_raw": self.dequantization(x)}
        out["C"] = torch.clamp(out["deq_raw"], 0.0, 1.0)
        # a given curve (tiling: computed once on the whole image) replaces the Linearization-Net's on this input
        out["invcrf"] = self.linearization(out["C"], taps) if invcrf is None else invcrf
        out["B"] = apply_rf(out["C"], out["invcrf"])
        out["A"], out["hal_raw"], out["alpha"] = self.expand_highlights(out["B"], taps)
        if self.refinement is None or not refine:
            out["output"] = out["A"]
            return out
        out["ref_raw"] = self.refinement(torch.cat([out["A"], out["B"], out["C"]], dim=1))
        out["output"] = torch.relu(out["ref_raw"])
        return out

    def stages(self, x: torch.Tensor, pad_border: int | None = None, refine: bool = True) -> dict[str, torch.Tensor]:
        """``run`` on any size: pad symmetrically (``pad_border``, default the model's) to a multiple of 32, run, crop
        every image tensor back to x's H×W. The curve ``invcrf`` is computed on the padded image, as officially."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ZooError(f"singlehdr: expected an RGB batch (B, 3, H, W), got shape {tuple(x.shape)}")
        border = self.pad_border if pad_border is None else pad_border
        h, w = x.shape[-2:]
        top, bottom = _pad_amounts(h, border)
        left, right = _pad_amounts(w, border)
        if top or bottom or left or right:
            x = pad_symmetric(x, top, bottom, left, right)
        out = self.run(x, refine=refine)
        return {k: v if v.ndim != 4 else v[..., top : top + h, left : left + w] for k, v in out.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: sRGB LDR (B, 3, H, W) in [0, 1], any H, W → linear relative HDR (B, 3, H, W), ≥ 0."""
        return self.stages(x)["output"]

    # Tiling protocol (zoo/tiling.py): the response curve is the global branch, computed once on the whole image.

    def tiling_frame(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The padding ``stages`` applies to the whole image, and the (top, left) offset of x inside it."""
        h, w = x.shape[-2:]
        top, bottom = _pad_amounts(h, self.pad_border)
        left, right = _pad_amounts(w, self.pad_border)
        framed = pad_symmetric(x, top, bottom, left, right) if top or bottom or left or right else x
        return framed, (top, left)

    def global_context(self, framed: torch.Tensor) -> torch.Tensor:
        """The inverse response curve (B, 1024) of the whole framed image, as ``run`` computes it."""
        return self.linearization(torch.clamp(self.dequantization(framed), 0.0, 1.0))

    def forward_with_context(self, window: torch.Tensor, invcrf: torch.Tensor) -> torch.Tensor:
        """``run`` on a window of the framed image (H, W multiples of 32) with the whole image's curve."""
        return self.run(window, invcrf=invcrf)["output"]


def build_singlehdr(
    response_basis: str | None = None,
    refinement: bool = True,
    pad_border: int = OFFICIAL_BORDER,
    highlight_threshold: float = HIGHLIGHT_THRESHOLD,
    vgg16_encoder: str | None = None,
    vgg16_convention: str = "torchvision",
) -> SingleHDR:
    """``zoo.create_model("singlehdr", ...)``. ``response_basis``: path to the official EMoR ``invemor.txt`` (needed by
    the official weights; a warning is logged if its sha256 differs from the official file) or None for the project's
    own basis. ``vgg16_encoder``: a VGG16 weights file (torchvision layout, input ``vgg16_convention``) to initialise
    the Hallucination-Net encoder for training (officially Places365 VGG16 weights). The other arguments are those of
    ``SingleHDR``."""
    from zoo.data.crf import OFFICIAL_INVEMOR_SHA256, load_inverse_basis

    basis = load_inverse_basis(response_basis, k=BASIS_COMPONENTS)
    if response_basis is not None and basis.sha256 != OFFICIAL_INVEMOR_SHA256:
        log.warning("%s: sha256 %s… is not the official invemor.txt (%s…); official weights expect the official basis",
                    response_basis, basis.sha256[:12], OFFICIAL_INVEMOR_SHA256[:12])  # fmt: skip
    g0, components = torch.from_numpy(basis.g0), torch.from_numpy(basis.components)
    model = SingleHDR(g0, components, refinement, pad_border, basis.source or "project", highlight_threshold)
    if vgg16_encoder is not None:
        model.hallucination.load_vgg16(vgg16_encoder, vgg16_convention)
    return model


# ----------------------------------------------------------------------------------------------------------------------
# Official TensorFlow variable names (docs/models.md).

# TF top-level scope -> (zoo sub-net, module path prefix inside the model)
TF_SCOPES = {
    "Dequantization_Net": ("dequantization", "dequantization"),
    "crf_feature_net": ("linearization", "linearization.crf_feature_net"),
    "ae_invcrf_decode_net": ("linearization", "linearization.ae_invcrf_decode_net"),
    "Hallucination_Net": ("hallucination", "hallucination"),
    "Refinement_Net": ("refinement", "refinement"),
}
# TF leaf names of (weight, bias) of convs and dense layers per scope; slim BN variables sit in a "BatchNorm" scope
_CONV_LEAVES = {
    "Dequantization_Net": ("kernel", "bias"),
    "Refinement_Net": ("kernel", "bias"),
    "crf_feature_net": ("weights", "biases"),
    "ae_invcrf_decode_net": ("kernel", "bias"),
    "Hallucination_Net": ("W_conv2d", "b_conv2d"),
}
_BN_LEAVES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
TF_BOOKKEEPING = ("beta1_power", "beta2_power", "global_step")  # optimizer/step variables in training checkpoints


@dataclass(frozen=True)
class OfficialVariable:
    """One TF variable: its zoo state-dict key, its TF shape (HWIO kernels, [in, out] dense) and its sub-net."""

    key: str
    tf_shape: tuple[int, ...]
    subnet: str


def _tf_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 4:  # OIHW -> HWIO
        return (shape[2], shape[3], shape[1], shape[0])
    if len(shape) == 2:  # Linear [out, in] -> dense [in, out]
        return (shape[1], shape[0])
    return shape


@functools.cache
def official_variable_table() -> tuple[dict[str, OfficialVariable], dict[str, tuple[str, ...]]]:
    """All 249 official TF variable names -> ``OfficialVariable``, and per sub-net the BN ``num_batches_tracked`` keys
    (zoo-only buffers, set to 0 on conversion). Derived from the modules themselves, built on the meta device."""
    with torch.device("meta"):
        subnets: dict[str, nn.Module] = {
            "dequantization": dequantization_net(),
            "linearization": LinearizationNet(torch.zeros(CURVE_SAMPLES), torch.zeros(CURVE_SAMPLES, BASIS_COMPONENTS)),
            "hallucination": HallucinationNet(),
            "refinement": refinement_net(),
        }
    table: dict[str, OfficialVariable] = {}
    counters: dict[str, list[str]] = {name: [] for name in subnets}
    for scope, (subnet, prefix) in TF_SCOPES.items():
        root = subnets[subnet]
        inner = prefix[len(subnet) + 1 :] if "." in prefix else ""
        base = root.get_submodule(inner) if inner else root
        for path, module in base.named_modules():
            tf_path = "/".join([scope] + ([path.replace(".", "/")] if path else []))
            key_path = f"{prefix}.{path}" if path else prefix
            if isinstance(module, nn.BatchNorm2d):
                bn_scope = f"{tf_path}/BatchNorm" if scope == "crf_feature_net" else tf_path
                for attr, leaf in _BN_LEAVES.items():
                    shape = tuple(getattr(module, attr).shape)
                    table[f"{bn_scope}/{leaf}"] = OfficialVariable(f"{key_path}.{attr}", shape, subnet)
                counters[subnet].append(f"{key_path}.num_batches_tracked")
            elif isinstance(module, nn.Conv2d | nn.Linear | ResizeConv):
                for attr, leaf in zip(("weight", "bias"), _CONV_LEAVES[scope]):
                    param = getattr(module, attr)
                    if param is not None:
                        shape = _tf_shape(tuple(param.shape))
                        table[f"{tf_path}/{leaf}"] = OfficialVariable(f"{key_path}.{attr}", shape, subnet)
    return table, {k: tuple(v) for k, v in counters.items()}


def _show(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" … ({len(names)} in all)" if len(names) > 5 else "")


def convert_official(obj: Any) -> dict[str, torch.Tensor] | None:
    """A mapping of official TF variable names to arrays (what ``tf.train.load_checkpoint`` yields; ``:0`` suffixes
    allowed) → a zoo state dict. Adam slots (``…/Adam``, ``…/Adam_1``), ``beta1_power``/``beta2_power`` and
    ``global_step`` are skipped. Each sub-net present must be complete (the released ``ckpt_deq``/``ckpt_lin``/
    ``ckpt_hal`` hold one sub-net each; merge the mappings for the three-net model). Returns None when no key is
    TF-named. Raises ``ZooError`` naming unknown or missing variables and shape mismatches.

    Layouts: conv kernels HWIO → OIHW, dense [in, out] → Linear [out, in]; BN gamma/beta/moving_mean/moving_variance
    → weight/bias/running_mean/running_var (the eps per sub-net is fixed by the modules, docs/models.md)."""
    if not isinstance(obj, Mapping) or not any(isinstance(k, str) and k.split("/")[0] in TF_SCOPES for k in obj):
        return None
    table, counters = official_variable_table()
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for raw_name, value in obj.items():
        name = str(raw_name).removesuffix(":0")
        if name in TF_BOOKKEEPING or name.endswith(("/Adam", "/Adam_1")):
            continue
        if name in table:
            values[name] = value
        else:
            unknown.append(name)
    if unknown:
        raise ZooError(f"TF checkpoint: unknown SingleHDR variables {_show(sorted(unknown))}")
    present = {table[n].subnet for n in values}
    missing = sorted(n for n, v in table.items() if v.subnet in present and n not in values)
    if missing:
        raise ZooError(f"TF checkpoint: missing SingleHDR variables {_show(missing)}")
    state: dict[str, torch.Tensor] = {}
    for name, value in values.items():
        array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
        var = table[name]
        if array.shape != var.tf_shape:
            raise ZooError(f"TF checkpoint: {name} has shape {array.shape}, expected {var.tf_shape}")
        tensor = torch.from_numpy(array.copy())
        if tensor.ndim == 4:
            tensor = tensor.permute(3, 2, 0, 1)
        elif tensor.ndim == 2:
            tensor = tensor.t()
        state[var.key] = tensor.contiguous()
    for subnet in present:
        for key in counters[subnet]:
            state[key] = torch.tensor(0, dtype=torch.long)
    return state


# ----------------------------------------------------------------------------------------------------------------------
# Training recipe.

# Shares of the step budget. Officially each of Deq/Lin/Hal trains 500k steps on its own and the joint refinement
# fine-tune 100k; the paper's joint stage has no stated length. The zoo runs everything in one budget: the
# Hallucination-Net (24.6M of 29M parameters, the hardest task) gets the largest share, Deq and Lin converge quickly,
# and the two end-to-end stages get more than the official 6 % because short budgets leave more error to correct.
STAGE_FRACTIONS = {
    "dequantization": 0.15,
    "linearization": 0.15,
    "hallucination": 0.35,
    "joint": 0.15,
    "refinement": 0.20,
}
PRETRAIN_LR, FINETUNE_LR = 1e-4, 1e-5  # official per-net Adam 1e-4; official fine-tune 1e-5 (used for both end stages)
RECIPE_NEEDS = ("ldr_unquantized", "linear_clipped", "linear_noisy", "inv_crf")


def singlehdr_recipe(
    vgg_weights: str | None = None,
    vgg_convention: str = "torchvision",
    vgg_scale: float | None = None,
    refinement: bool = True,
    refinement_scale: str = "aligned",
    hallucination_loss: str = "log_l1",
) -> Recipe:
    """SingleHDR's staged recipe (docs/models.md, paper §3.5-3.6), run by the one training loop:

    1. ``dequantization`` (15 %): Deq alone, masked MSE to ``ldr_unquantized``, Adam 1e-4.
    2. ``linearization`` (15 %): Lin alone on ``ldr_unquantized``, masked MSE to ``linear_clipped`` + 0.1·MSE of the
       curve to ``inv_crf``, Adam 1e-4, BN in training mode.
    3. ``hallucination`` (35 %): Hal alone on ``linear_clipped``, masked log-L1 + 0.001·perceptual + 0.1·TV against
       ``linear_noisy``, Adam 1e-4.
    4. ``joint`` (15 %): Deq + Lin + Hal end to end with the paper's λdeq 1, λlin 10, λcrf 1, λhal 1, λp 0.001,
       λtv 0.1, Adam 1e-5 (the paper gives no rate; the official fine-tune's).
    5. ``refinement`` (20 %): all four nets, L1 in the log domain between the final output and the HDR ``target``,
       Adam 1e-5, BN in training mode (official ``finetune_real_dataset.py``).

    Options: ``vgg_weights`` VGG16 file for the perceptual term (torchvision layout; None skips the term with one
    warning); ``vgg_convention`` its input convention ("torchvision" or "caffe"); ``vgg_scale`` the factor
    that puts the term in the official Caffe VGG's units (None: 1 for caffe, ≈57.6 for torchvision files, see
    ``zoo.losses.perceptual``); ``refinement`` False for the
    three-net model (drops stage 5, fractions renormalised by the loop); ``refinement_scale`` "aligned" (default) or
    "mean" (official per-image mean-0.5 normalisation, see ``refinement_objective``); ``hallucination_loss``
    "log_l1" (official code) or "log_l2" (the paper's log-ℓ2, see ``hallucination_terms``).
    """
    # imported here: zoo.losses imports zoo.models.tf_compat, whose package __init__ imports this module
    from zoo.losses.perceptual import PerceptualLoss
    from zoo.losses.singlehdr import (
        JointWeights,
        dequantization_objective,
        hallucination_objective,
        joint_objective,
        linearization_objective,
        refinement_objective,
        check_hallucination_loss,
    )

    perceptual = PerceptualLoss(vgg_weights, vgg_convention, vgg_scale)  # one instance: the missing-weights warning shows once
    refine_loss = refinement_objective(refinement_scale)  # validates the option even when the stage is dropped
    check_hallucination_loss(hallucination_loss)
    joint_weights = JointWeights()
    deq, lin, hal = "model.dequantization", "model.linearization", "model.hallucination"

    def stage(name: str, params: tuple[str, ...], loss, lr: float, train: tuple[str, ...]) -> Stage:
        return Stage(name, (Objective(name, params, loss, lr=lr),), fraction=STAGE_FRACTIONS[name], train_modules=train)

    stages = [
        stage("dequantization", (deq,), dequantization_objective(), PRETRAIN_LR, (deq,)),
        stage("linearization", (lin,), linearization_objective(), PRETRAIN_LR, (lin,)),
        stage("hallucination", (hal,), hallucination_objective(perceptual, hallucination_loss), PRETRAIN_LR, (hal,)),
        stage("joint", (deq, lin, hal), joint_objective(perceptual, joint_weights, hallucination_loss), FINETUNE_LR,
              (deq, lin, hal)),
    ]
    if refinement:
        stages.append(stage("refinement", ("model",), refine_loss, FINETUNE_LR, ("model",)))
    notes = (f"SingleHDR staged recipe: {', '.join(s.name for s in stages)}; perceptual "
             f"{'on (' + str(vgg_weights) + ')' if vgg_weights else 'off (no vgg_weights)'}; "
             f"refinement_scale={refinement_scale}; hallucination_loss={hallucination_loss}")  # fmt: skip
    # Official length: 500k iterations for each of Deq, Lin and Hal plus the 100k refinement fine-tune, batch 8.
    return Recipe(stages=tuple(stages), needs=RECIPE_NEEDS, notes=notes, official_steps=1_600_000,
                  official_batch_size=8)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------
# Registration.

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
        description="Dequantization, Linearization (inverse CRF from an EMoR-style basis), Hallucination (VGG16 U-Net) "
        "and Refinement nets; linear relative output, mapped to NTIRE with the 'aligned' rule",
    )
)
