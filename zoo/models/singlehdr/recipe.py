"""SingleHDR's staged training recipe and its stage losses (official ``training_code/`` and paper §3).

Every loss takes a ``StepContext`` whose ``nets["model"]`` is a ``SingleHDR`` and whose batch has the keys of the
synthetic camera: ``ldr`` (final 8-bit LDR), ``ldr_unquantized`` (camera-response output before quantisation),
``linear_clipped`` (noisy linear scene clipped to [0, 1]), ``linear_noisy`` (noisy, unclipped), ``inv_crf``
(B, 1024) and ``target`` (NTIRE gamma-encoded HDR aligned to the LDR exposure). Images are (B, 3, H, W).

Official details kept: per-image losses averaged after the per-image exposure mask (``exposure_mask``; divided by B,
not by the number of kept images), the log tone curve g(x) = log(1 + 10x)/log(11) for the HDR losses, and TV as a
batch scalar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from zoo.domains import to_linear
from zoo.errors import ZooError
from zoo.losses.perceptual import PerceptualLoss
from zoo.recipe import LossFn, Objective, Recipe, Stage, StepContext
from zoo.tf_compat import apply_rf, pad_symmetric

GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale
OVER_LEVEL, UNDER_LEVEL, EXTREME_SHARE = 249, 6, 0.5
NET_MULTIPLE = 32


def log_tonemap(x: torch.Tensor) -> torch.Tensor:
    """g(x) = log(1 + 10x) / log(11): the official HDR loss domain; g(0) = 0, g(1) = 1; x ≥ 0 (linear HDR)."""
    return torch.log1p(10.0 * x) / math.log(11.0)


def exposure_mask(ldr: torch.Tensor) -> torch.Tensor:
    """The official per-image loss mask (B,): 0 for an image whose grey level (8-bit, BT.601 weights) is ≥ 249 on
    more than half its pixels, or ≤ 6 on more than half; 1 otherwise. ``ldr``: (B, 3, H, W) in [0, 1]."""
    levels = torch.round(ldr.detach().clamp(0.0, 1.0) * 255.0)
    grey = torch.round(sum(w * levels[:, i] for i, w in enumerate(GREY_WEIGHTS)))
    over = (grey >= OVER_LEVEL).float().mean(dim=(1, 2)) > EXTREME_SHARE
    under = (grey <= UNDER_LEVEL).float().mean(dim=(1, 2)) > EXTREME_SHARE
    return (~(over | under)).to(ldr.dtype)


def masked_mean(per_image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean(loss_i · mask_i) over the batch (official: divides by B, not by the number of kept images)."""
    return (per_image * mask).mean()


def per_image_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().flatten(1).mean(dim=1)


def per_image_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).mean(dim=1)


def tv_loss(y: torch.Tensor) -> torch.Tensor:
    """Official TV: mean |Δ_h y| + mean |Δ_w y| after symmetric-padding one row/column at the end (so each mean is
    over all H×W positions, the last difference being 0). A batch scalar."""
    dh = (y[:, :, 1:] - y[:, :, :-1]).abs().sum() / y.numel()
    dw = (y[:, :, :, 1:] - y[:, :, :, :-1]).abs().sum() / y.numel()
    return dh + dw


def run_padded(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, multiple: int = NET_MULTIPLE) -> Any:
    """Apply ``fn`` to x symmetric-padded (bottom/right) to a multiple, crop every image-shaped output back."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    out = fn(pad_symmetric(x, 0, pad_h, 0, pad_w) if pad_h or pad_w else x)
    crop = lambda t: t[..., :h, :w] if t.ndim == 4 else t  # noqa: E731
    return tuple(crop(t) for t in out) if isinstance(out, tuple) else crop(out)


def _log(**values: torch.Tensor | float) -> dict[str, float]:
    return {k: float(v.detach().mean()) if isinstance(v, torch.Tensor) else float(v) for k, v in values.items()}


def dequantization_objective() -> LossFn:
    """Official Dequantization-Net pre-training: masked MSE(clip(Deq(ldr), 0, 1), ldr_unquantized)."""

    def loss(step: StepContext[None]) -> tuple[torch.Tensor, dict[str, float]]:
        nets, batch = step.nets, step.batch
        c = torch.clamp(run_padded(nets["model"].dequantization, batch["ldr"], 16), 0.0, 1.0)
        mask = exposure_mask(batch["ldr"])
        mse = per_image_mse(c, batch["ldr_unquantized"])
        return masked_mean(mse, mask), _log(mse=mse, kept=mask)

    return loss


def linearization_objective(crf_weight: float = 0.1) -> LossFn:
    """Official Linearization-Net pre-training on the unquantized LDR: masked [MSE(apply_rf(ldr_unquantized, invcrf),
    linear_clipped) + ``crf_weight``·MSE(invcrf, inv_crf)] (paper λcrf = 0.1)."""

    def loss(step: StepContext[None]) -> tuple[torch.Tensor, dict[str, float]]:
        nets, batch = step.nets, step.batch
        ldr = batch["ldr_unquantized"]
        invcrf = nets["model"].linearization(ldr)
        lin = per_image_mse(apply_rf(ldr, invcrf), batch["linear_clipped"])
        crf = per_image_mse(invcrf, batch["inv_crf"])
        mask = exposure_mask(batch["ldr"])
        return masked_mean(lin + crf_weight * crf, mask), _log(lin_mse=lin, crf_mse=crf, kept=mask)

    return loss


HALLUCINATION_LOSSES = ("log_l1", "log_l2")


def check_hallucination_loss(kind: str) -> None:
    if kind not in HALLUCINATION_LOSSES:
        raise ZooError(f"singlehdr recipe: hallucination_loss must be one of {HALLUCINATION_LOSSES}, got {kind!r}")


def hallucination_terms(
    a: torch.Tensor, target: torch.Tensor, perceptual: PerceptualLoss, kind: str = "log_l1"
) -> dict[str, torch.Tensor]:
    """The Hallucination-Net terms on linear A and target: the per-image distance ``hal``, the per-image perceptual
    distance in the g(·) domain and the batch-scalar TV of g(A).

    ``kind="log_l1"`` (official code): L1 between g(A) and g(target). ``kind="log_l2"`` (the paper's
    Lhal = ‖log Ĥ − log H‖²): MSE between log(A + 1/255) and log(target + 1/255), the log the official code uses for
    its logged test loss."""
    check_hallucination_loss(kind)
    ga, gt = log_tonemap(a), log_tonemap(target)
    if kind == "log_l1":
        hal = per_image_l1(ga, gt)
    else:
        hal = per_image_mse(torch.log(a + 1.0 / 255.0), torch.log(target + 1.0 / 255.0))
    return {"hal": hal, "perceptual": perceptual(ga, gt), "tv": tv_loss(ga)}


def hallucination_objective(
    perceptual: PerceptualLoss, kind: str = "log_l1", lambda_p: float = 1e-3, lambda_tv: float = 0.1
) -> LossFn:
    """Official Hallucination-Net pre-training: input ``linear_clipped`` (not a network output), A = x + α·relu(Hal(x)),
    masked [L1(g(A), g(linear_noisy)) + λp·Perc + λtv·TV] with the official λp = 0.001, λtv = 0.1 (``kind``: the
    distance, see ``hallucination_terms``)."""

    def loss(step: StepContext[None]) -> tuple[torch.Tensor, dict[str, float]]:
        nets, batch = step.nets, step.batch
        a = run_padded(nets["model"].expand_highlights, batch["linear_clipped"])[0]
        terms = hallucination_terms(a, batch["linear_noisy"], perceptual, kind)
        mask = exposure_mask(batch["ldr"])
        total = terms["hal"] + lambda_p * terms["perceptual"] + lambda_tv * terms["tv"]
        return masked_mean(total, mask), _log(**terms, kept=mask)

    return loss


@dataclass(frozen=True)
class JointWeights:
    """The paper's end-to-end weights (§3.5, Eq. 4)."""

    deq: float = 1.0
    lin: float = 10.0
    crf: float = 1.0
    hal: float = 1.0
    perceptual: float = 1e-3
    tv: float = 0.1


def joint_objective(perceptual: PerceptualLoss, weights: JointWeights = JointWeights(), kind: str = "log_l1") -> LossFn:
    """The paper's joint fine-tuning of Deq + Lin + Hal on the LDR (no official code): Ltotal = λdeq·Ldeq +
    λlin·Llin + λcrf·Lcrf + λhal·Lhal + λp·Lp + λtv·Ltv, every term with its stage's official form and intermediate
    target (Lhal/Lp/Ltv against ``linear_noisy``, the Hallucination stage's target), masked per image."""

    def loss(step: StepContext[None]) -> tuple[torch.Tensor, dict[str, float]]:
        nets, batch = step.nets, step.batch
        out = nets["model"].stages(batch["ldr"], pad_border=0, refine=False)
        deq = per_image_mse(out["C"], batch["ldr_unquantized"])
        lin = per_image_mse(out["B"], batch["linear_clipped"])
        crf = per_image_mse(out["invcrf"], batch["inv_crf"])
        terms = hallucination_terms(out["A"], batch["linear_noisy"], perceptual, kind)
        total = (
            weights.deq * deq
            + weights.lin * lin
            + weights.crf * crf
            + weights.hal * terms["hal"]
            + weights.perceptual * terms["perceptual"]
            + weights.tv * terms["tv"]
        )
        mask = exposure_mask(batch["ldr"])
        return masked_mean(total, mask), _log(deq_mse=deq, lin_mse=lin, crf_mse=crf, **terms, kept=mask)

    return loss


REFINEMENT_SCALES = ("aligned", "mean")


def refinement_objective(scale: str = "aligned") -> LossFn:
    """Official refinement fine-tuning loss: L1(g(R), g(H)) on the refinement output R against the HDR target H
    (linear, from ``target``), all four nets training.

    ``scale="mean"`` is the official normalisation: R and H each divided by (1e-6 + their per-image mean) and ×0.5,
    a scale-invariant loss (the official real-data targets have no absolute scale). ``scale="aligned"`` (default)
    compares R and H as they are: the zoo's targets are aligned to the LDR exposure and its evaluation maps outputs to
    NTIRE without rescaling (``zoo.domains.to_ntire``, rule "aligned"), so the output scale must stay anchored."""
    if scale not in REFINEMENT_SCALES:
        raise ZooError(f"singlehdr recipe: refinement_scale must be one of {REFINEMENT_SCALES}, got {scale!r}")

    def normalise(x: torch.Tensor) -> torch.Tensor:
        return x / (1e-6 + x.mean(dim=(1, 2, 3), keepdim=True)) * 0.5 if scale == "mean" else x

    def loss(step: StepContext[None]) -> tuple[torch.Tensor, dict[str, float]]:
        nets, batch = step.nets, step.batch
        output = nets["model"].stages(batch["ldr"], pad_border=0)["output"]
        target = to_linear(batch["target"], "ntire_gamma")
        l1 = per_image_l1(log_tonemap(normalise(output)), log_tonemap(normalise(target)))
        return l1.mean(), _log(l1=l1)

    return loss


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
    # one instance: the missing-weights warning shows once
    perceptual = PerceptualLoss(vgg_weights, vgg_convention, vgg_scale)
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
        stage(
            "joint",
            (deq, lin, hal),
            joint_objective(perceptual, joint_weights, hallucination_loss),
            FINETUNE_LR,
            (deq, lin, hal),
        ),
    ]
    if refinement:
        stages.append(stage("refinement", ("model",), refine_loss, FINETUNE_LR, ("model",)))
    notes = (
        f"SingleHDR staged recipe: {', '.join(s.name for s in stages)}; perceptual "
        f"{'on (' + str(vgg_weights) + ')' if vgg_weights else 'off (no vgg_weights)'}; "
        f"refinement_scale={refinement_scale}; hallucination_loss={hallucination_loss}"
    )
    # Official length: 500k iterations for each of Deq, Lin and Hal plus the 100k refinement fine-tune, batch 8.
    return Recipe(
        stages=tuple(stages), needs=RECIPE_NEEDS, notes=notes, official_steps=1_600_000, official_batch_size=8
    )
