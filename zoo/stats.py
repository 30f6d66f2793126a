"""Bootstrap confidence intervals over images and seeds (docs/evaluation.md: report CIs, not just means).

A variant's metric values form a (seeds × images) grid: every seed of a variant is evaluated on the same frozen split,
so image ``j`` is the same scene in every row. The two-level bootstrap resamples seeds and images independently, with
replacement, and takes the grid mean of each resample; the interval is the percentile interval of those means. It
therefore carries both sources of variation: which test images happened to be drawn, and which training seeds. A
deterministic model (a baseline) has identical rows, and the seed level then adds nothing, as it should.

The generator is seeded with a fixed value, so the same values always give the same interval (reports are
reproducible byte for byte).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SEED = 20211
N_RESAMPLES = 2000
CONFIDENCE = 0.95
NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """Mean and percentile-bootstrap interval [low, high] of a metric; ``n`` finite values were used (``excluded``
    non-finite ones, e.g. +inf PSNR of an image reproduced exactly, were left out)."""

    mean: float
    low: float
    high: float
    n: int
    excluded: int = 0


def bootstrap_ci(
    values: np.ndarray | list[list[float]],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Estimate:
    """Mean and two-level bootstrap CI of a (seeds × images) grid (a 1-D array is one seed).

    Non-finite entries are excluded from every mean (each resample averages its finite entries). Returns NaNs when no
    value is finite. With one seed and one image the interval collapses to the value.
    """
    grid = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if grid.ndim != 2:
        raise ValueError(f"expected a (seeds, images) grid, got shape {grid.shape}")
    finite = np.isfinite(grid)
    n_finite = int(finite.sum())
    if n_finite == 0:
        return Estimate(NAN, NAN, NAN, 0, grid.size)
    clean = np.where(finite, grid, 0.0)
    n_seeds, n_images = grid.shape
    rng = np.random.default_rng(seed)
    # How often each seed / image is drawn in each resample: the resampled grid mean is then a bilinear form,
    # (seed_counts @ grid @ image_counts) / (seed_counts @ finite @ image_counts), with no (B × S × N) array.
    seed_counts = _draw_counts(rng, n_resamples, n_seeds)
    image_counts = _draw_counts(rng, n_resamples, n_images)
    sums = ((seed_counts @ clean) * image_counts).sum(axis=1)
    weights = ((seed_counts @ finite.astype(np.float64)) * image_counts).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / weights
    means = means[weights > 0]  # a resample that drew only non-finite entries has no mean
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Estimate(float(clean.sum() / n_finite), float(low), float(high), n_finite, grid.size - n_finite)


def _draw_counts(rng: np.random.Generator, n_resamples: int, n: int) -> np.ndarray:
    """(n_resamples, n) multiplicities of n items drawn n times with replacement."""
    draws = rng.integers(0, n, size=(n_resamples, n)) + n * np.arange(n_resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
