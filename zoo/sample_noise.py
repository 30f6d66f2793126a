"""Randomness per training sample, independent of the process that holds it.

The training loop puts each sample's identity in its batch (``SAMPLE_KEY`` = (seed, epoch, index), a (B, 3) int64
tensor, ``zoo.train.EpochedDataset``). A recipe that draws noise per sample (the two-stage GAN's soft noisy labels)
seeds it from there, so a data-parallel run, where each process holds a slice of the step's samples, draws exactly
what one process would, and a resumed run what an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLE_KEY = "sample_key"


def per_sample_uniform(
    batch: dict[str, torch.Tensor], like: torch.Tensor, low: float, high: float, stream: int
) -> torch.Tensor:
    """U[low, high) noise shaped like ``like`` (B, ...), drawn per sample from its ``SAMPLE_KEY`` and ``stream`` (an
    int naming the use), so single-process and data-parallel runs draw the same; without sample keys (a batch not
    from the training loop) from the global torch RNG."""
    keys = batch.get(SAMPLE_KEY)
    if keys is None:
        return torch.empty_like(like).uniform_(low, high)
    out = torch.empty_like(like)
    for i, (seed, epoch, index) in enumerate(keys.tolist()):
        words = np.random.SeedSequence([stream, seed, epoch, index]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed(int(words[0]) << 31 ^ int(words[1]))
        out[i] = torch.empty(like.shape[1:], dtype=like.dtype).uniform_(low, high, generator=generator)
    return out
