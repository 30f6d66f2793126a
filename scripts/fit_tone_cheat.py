"""Fit the two numbers of the ``tone_cheat`` baseline (``zoo/models/baselines.py``) without any evaluation reference.

    python scripts/fit_tone_cheat.py          # prints the grid's best (scale, gamma) and the values to write

Grid search of ``scale · x^gamma`` over scale ∈ 2^[-3, 3] (25 values) × gamma ∈ [1.0, 3.2] (23 values), maximising the
mean PU21-PSNR (the SI-HDR headline metric without CRF correction) on the evaluation split of the synthetic source
drawn with data seed 1: 32 scenes that are neither in the zoo's synthetic evaluation set (seed 0) nor real. The
cheat thus learns the dataset-wide exposure and tone that the metric rewards, as Eilertsen et al. 2021 warn, and
nothing about any image it is scored on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo import metrics  # noqa: E402
from zoo.data import DataConfig, build_dataset  # noqa: E402
from zoo.domains import to_ntire  # noqa: E402

SCALES = 2.0 ** np.linspace(-3, 3, 25)
GAMMAS = np.linspace(1.0, 3.2, 23)


def main() -> None:
    torch.set_num_threads(1)
    data = build_dataset(DataConfig(name="synthetic", seed=1, eval_count=32), "eval")
    pairs = [
        (data[i]["ldr"].permute(1, 2, 0).numpy(), data[i]["target"].permute(1, 2, 0).numpy()) for i in range(len(data))
    ]
    scores = np.zeros((len(SCALES), len(GAMMAS)))
    for i, scale in enumerate(SCALES):
        for j, gamma in enumerate(GAMMAS):
            scores[i, j] = np.mean(
                [metrics.pu21_psnr(ref, to_ntire(scale * ldr**gamma, "linear_relative")) for ldr, ref in pairs]
            )
    i, j = np.unravel_index(np.argmax(scores), scores.shape)
    identity = np.mean([metrics.pu21_psnr(ref, ldr) for ldr, ref in pairs])
    print(f"{len(pairs)} synthetic scenes (data seed 1); identity: mean PU21-PSNR {identity:.2f} dB")
    print(f"best: scale {SCALES[i]:.4g}, gamma {GAMMAS[j]:.4g}: mean PU21-PSNR {scores[i, j]:.2f} dB")
    print(f"TONE_CHEAT_SCALE = {SCALES[i]:.4g}\nTONE_CHEAT_GAMMA = {GAMMAS[j]:.4g}")


if __name__ == "__main__":
    main()
