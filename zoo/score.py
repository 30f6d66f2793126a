"""Score a folder of NTIRE-format results against references, like the NTIRE 2021 scoring program, but pairing files
by image ID (the official program pairs by sorted position, so one missing file silently shifts every pair after it).

References: ``NNNN_gt.png`` (or ``NNNN.png``) + ``NNNN_alignratio.npy``; results: ``NNNN.png`` +
``NNNN_alignratio.npy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from zoo import metrics
from zoo.errors import ZooError
from zoo.io import alignratio_path, read_ntire

NTIRE_METRICS = ("psnr_l_ntire", "psnr_mu_ntire")  # what the NTIRE 2021 scoring program reports
# 8-bit PNGs that sit beside HDR ones: the NTIRE inputs (NNNN_short/_medium/_long.png) and zoo predict's previews
NOT_HDR = ("_short", "_medium", "_long", "_preview")


def ntire_ids(folder: str | Path) -> dict[str, Path]:
    """Image ID → PNG path of the HDR images in an NTIRE folder: ``NNNN_gt.png`` where the folder has any (the native
    challenge layout), else ``NNNN.png``; LDR inputs (``_short/_medium/_long``) and previews (``_preview``) are not
    HDR images and are never paired."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZooError(f"{folder}: no such folder")
    pngs = [p for p in sorted(folder.glob("*.png")) if not p.stem.endswith(NOT_HDR)]
    references = [p for p in pngs if p.stem.endswith("_gt")]
    ids: dict[str, Path] = {}
    for png in references or pngs:  # a native NTIRE folder also holds NNNN.png files of other kinds: _gt decides
        image_id = png.stem.removesuffix("_gt")
        if image_id in ids:
            raise ZooError(f"{png}: duplicate image ID {image_id!r} (also {ids[image_id].name})")
        ids[image_id] = png
    if not ids:
        raise ZooError(f"{folder}: no .png files found; expected NTIRE files like 0001.png + 0001_alignratio.npy")
    return ids


@dataclass
class ScoreReport:
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # references with no result
    extra: list[str] = field(default_factory=list)  # results with no reference

    def means(self) -> dict[str, float]:
        names = NTIRE_METRICS
        return {n: _mean([v[n] for v in self.per_image.values()]) for n in names} if self.per_image else {}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def score_folders(reference_dir: str | Path, result_dir: str | Path) -> ScoreReport:
    references, results = ntire_ids(reference_dir), ntire_ids(result_dir)
    report = ScoreReport(missing=sorted(set(references) - set(results)), extra=sorted(set(results) - set(references)))
    for image_id in sorted(set(references) & set(results)):
        reference = read_ntire(references[image_id], alignratio_path(references[image_id]))
        result = read_ntire(results[image_id])
        if reference.shape != result.shape:
            raise ZooError(
                f"{results[image_id]}: size {result.shape[1]}x{result.shape[0]} differs from the "
                f"reference {references[image_id].name} ({reference.shape[1]}x{reference.shape[0]})"
            )
        report.per_image[image_id] = {n: metrics.METRICS[n].fn(reference, result) for n in NTIRE_METRICS}
    return report
