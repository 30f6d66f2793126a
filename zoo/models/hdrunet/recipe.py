"""HDRUNet's official training recipe (Tanh-L1, Adam 2e-4, step-halved learning rate) and the paper's loss ablation."""

from __future__ import annotations

import torch

from zoo.errors import ZooError
from zoo.losses.hdr import HDRUNET_LOSSES, pixel_loss
from zoo.recipe import Objective, Recipe, Stage, StepContext


def hdrunet_recipe(loss: str = "tanh_l1") -> Recipe:
    """Official recipe (docs/models.md): Adam 2e-4, betas (0.9, 0.99), halve the LR at 20/40/60/80 % of the run
    (the official 200k/400k/600k/800k of 1M steps), Tanh-L1 on NTIRE-encoded values. ``loss`` selects the paper's
    Table 2 ablation: l1, l2, tanh_l1, tanh_l2."""
    if loss not in HDRUNET_LOSSES:
        raise ZooError(f"hdrunet: unknown loss {loss!r}; expected one of {', '.join(HDRUNET_LOSSES)}")

    def objective_loss(step: StepContext[None]) -> tuple[torch.Tensor, dict[str, float]]:
        prediction = step.nets["model"](step.batch["ldr"])
        value = pixel_loss(loss, prediction, step.batch["target"])
        return value, {loss: float(value.detach())}

    stage = Stage(
        name="main",
        objectives=(Objective("model", ("model",), objective_loss, lr=2e-4, betas=(0.9, 0.99)),),
        milestones=(0.2, 0.4, 0.6, 0.8),
        gamma=0.5,
    )
    return Recipe(
        stages=(stage,),
        notes=f"official HDRUNet schedule, loss={loss}",
        official_steps=1_000_000,
        official_batch_size=16,
    )
