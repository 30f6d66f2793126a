"""The two-stage official HEAD recipe: three objectives (stage I, discriminator, stage II) stepped every iteration;
see the package docstring for the losses and where they follow the official code rather than the paper."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.losses.ciede2000 import ciede2000_loss
from zoo.losses.msssim import ms_ssim
from zoo.models.twostage.net import STAGE_CHOICES, Discriminator, TwoStageHDR
from zoo.recipe import Objective, Recipe, Stage, StepContext
from zoo.sample_noise import per_sample_uniform

LEARNING_RATE = 5e-4
ADAM_BETAS = (0.9, 0.99)
ADVERSARIAL_WEIGHT = 1e-3  # official code; the paper's eq. 6 says 1e-4
COLOUR_SCALE = 1 / 255  # the official colour loss divides the mean ΔE2000 by 255
REAL_LABEL_RANGE = (0.7, 1.2)
FAKE_LABEL_RANGE = (0.0, 0.3)


# --------------------------------------------------------------------------------------------------------------------
# Training recipe


def eight_bit_target(target: torch.Tensor) -> torch.Tensor:
    """gt8 = round(clip(target·255, 0, 255)) / 255: the clipped 8-bit version of the NTIRE-gamma target, as the
    official data tool writes it (OpenCV saturates a float image to uint8). Same shape, values in [0, 1]."""
    return torch.round((target * 255).clamp(0, 255)) / 255


@dataclass
class TwoStageShared:
    """What stage I's objective passes on within a step: its output (detached) and the target it was trained on, read
    by the discriminator (both) and stage II (``out1``)."""

    out1: torch.Tensor | None = None
    stage1_target: torch.Tensor | None = None


def _model_for(nets: nn.ModuleDict, expected: str) -> TwoStageHDR:
    model = nets["model"]
    found = getattr(model, "stages", None)
    if found != expected:
        raise ZooError(
            f"twostage recipe(stages={expected!r}) needs create_model('twostage', stages={expected!r}); "
            f"the model was built with stages={found!r}"
        )
    return model


def _stage1_loss(
    step: StepContext[TwoStageShared], *, stages: str, msssim_official_bug: bool
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage I: L1 + (1 − MS-SSIM) + 1e-3·BCE(D(out1), 1), against gt8 (two-stage) or the HDR target (stage-I-only
    ablation). Passes out1 (detached) and the target on to the discriminator and stage II."""
    model = _model_for(step.nets, stages)
    out1 = model.stage1(step.batch["ldr"])
    target = eight_bit_target(step.batch["target"]) if stages == "both" else step.batch["target"]
    step.shared.out1 = out1.detach()
    step.shared.stage1_target = target
    l1 = F.l1_loss(out1, target)
    similarity = ms_ssim(out1, target, data_range=1.0, official_bug=msssim_official_bug)
    fake_logits = step.nets["discriminator"].logits(out1)
    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    loss = l1 + (1 - similarity) + ADVERSARIAL_WEIGHT * adversarial
    return loss, {"l1": l1.item(), "msssim": similarity.item(), "adversarial": adversarial.item()}


def _discriminator_loss(step: StepContext[TwoStageShared]) -> tuple[torch.Tensor, dict[str, float]]:
    """BCE(D(real), U[0.7, 1.2]) + BCE(D(out1.detach()), U[0, 0.3]), labels drawn per sample each step
    (``zoo.sample_noise.per_sample_uniform``: seeded by the sample's identity)."""
    discriminator = step.nets["discriminator"]
    real_logits = discriminator.logits(step.shared.stage1_target)
    fake_logits = discriminator.logits(step.shared.out1)
    # per sample from its identity: a data-parallel run draws the labels a single process draws
    real_labels = per_sample_uniform(step.batch, real_logits, *REAL_LABEL_RANGE, stream=1)
    fake_labels = per_sample_uniform(step.batch, fake_logits, *FAKE_LABEL_RANGE, stream=2)
    loss = F.binary_cross_entropy_with_logits(real_logits, real_labels) + F.binary_cross_entropy_with_logits(
        fake_logits, fake_labels
    )
    p_real, p_fake = torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item()
    return loss, {"p_real": p_real, "p_fake": p_fake}


def _stage2_loss(
    step: StepContext[TwoStageShared], *, stages: str, ciede2000_grad: bool
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage II: L1 + mean ΔE2000 / 255 against the HDR target, on out1.detach() (or the LDR input in the
    stage-II-only ablation). ``ciede2000_grad=False``: the colour term is computed without gradient and only logged
    (official behaviour)."""
    _model_for(step.nets, stages)
    stage2_input = step.batch["ldr"] if stages == "stage2" else step.shared.out1
    out2 = step.nets["model"].stage2(stage2_input)
    target = step.batch["target"]
    l1 = F.l1_loss(out2, target)
    if ciede2000_grad:
        colour = ciede2000_loss(out2, target) * COLOUR_SCALE
        loss = l1 + colour
    else:
        with torch.no_grad():
            colour = ciede2000_loss(out2, target) * COLOUR_SCALE
        loss = l1
    return loss, {"l1": l1.item(), "ciede2000": colour.item() / COLOUR_SCALE}


# The paper's schedule: 7,551 training patches, 25 epochs, batch 8 → ceil(7551 · 25 / 8) steps.
PAPER_STEPS = -(-7551 * 25 // 8)


def twostage_recipe(stages: str = "both", ciede2000_grad: bool = True, msssim_official_bug: bool = False) -> Recipe:
    """The official HEAD recipe: one stage, three objectives stepped every iteration (stage I, discriminator,
    stage II), Adam lr 5e-4, betas (0.9, 0.99), constant learning rate.

    ``stages``: "both", or the Table 2 ablations "stage1" / "stage2" (build the model with the same ``stages``).
    ``ciede2000_grad``: differentiable colour term (default) or the official gradient-free one.
    ``msssim_official_bug``: combine MS-SSIM scales as the official code does (see zoo.losses.msssim).
    """
    if stages not in STAGE_CHOICES:
        raise ZooError(f"twostage recipe: stages must be one of {', '.join(STAGE_CHOICES)}, got {stages!r}")
    adam = {"lr": LEARNING_RATE, "betas": ADAM_BETAS}
    stage1 = Objective(
        "stage1",
        ("model.stage1",),
        partial(_stage1_loss, stages=stages, msssim_official_bug=msssim_official_bug),
        writes=("out1", "stage1_target"),
        **adam,
    )
    discriminator = Objective(
        "discriminator", ("discriminator",), _discriminator_loss, reads=("out1", "stage1_target"), **adam
    )
    stage2 = Objective(
        "stage2",
        ("model.stage2",),
        partial(_stage2_loss, stages=stages, ciede2000_grad=ciede2000_grad),
        reads=("out1",) if stages == "both" else (),
        **adam,
    )
    objectives = {"both": (stage1, discriminator, stage2), "stage1": (stage1, discriminator), "stage2": (stage2,)}
    uses_discriminator = stages != "stage2"
    return Recipe(
        stages=(Stage(name="joint", objectives=objectives[stages], fraction=1.0, milestones=()),),
        aux_modules={"discriminator": Discriminator} if uses_discriminator else {},
        shared=TwoStageShared,
        notes=(
            f"two-stage official HEAD recipe (stages={stages}): Adam 5e-4 (0.9, 0.99), constant LR; stage I vs gt8 "
            "(L1 + 1-MS-SSIM + 1e-3 GAN), D with soft noisy labels, stage II on detached out1 (L1 + dE2000/255, "
            f"gradient {'on' if ciede2000_grad else 'off (official)'}); MS-SSIM official bug "
            f"{'on' if msssim_official_bug else 'off'}. Paper schedule: batch 8, 25 epochs of 7,551 patches."
        ),
        official_steps=PAPER_STEPS,
        official_batch_size=8,
    )
