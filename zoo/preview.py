"""A small picture of each run's first evaluation prediction, saved next to its row, so the report can draw the visual
comparison grid from ``results/runs/`` alone (checkpoints live in ``outputs/``, which is not committed).

The preview is one 8-bit PNG, ``<run_id>.preview.png``: three square crops side by side, [input LDR | prediction |
reference], the last two tone-mapped with the NTIRE μ-law normalised by the *full* reference image's 99th percentile
(``zoo.metrics.ntire_mu_tonemap``), i.e. exactly the images PSNR-μ compares, quantised to 8 bits for display. The crop
is the window of the input with the most saturated pixels, a pure function of the input, so every run evaluated on the
same data shows the same region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo import io, metrics

CROP = 96  # pixels; smaller images are shown whole
HDR_CROP = 64  # pixels of the HDR crops (every evaluation image of a row, for the results page)
SATURATED = 250 / 255  # an input pixel whose brightest channel reaches this is clipped (or nearly)
PANELS = ("input", "prediction", "reference")


def hdr_preview_path(row_path: str | Path) -> Path:
    """``results/runs/<run_id>.json`` → ``results/runs/<run_id>.preview.hdr.png``."""
    return Path(row_path).with_suffix(".preview.hdr.png")


def hdr_strip(ldr: np.ndarray, reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """The linear relative radiance (NTIRE linear, x**2.24) of [input | prediction | reference] on the highlight crop
    (``HDR_CROP`` px) of one evaluation image: h×3w×3 float32."""
    top, left, h, w = highlight_crop(ldr, HDR_CROP)
    window = (slice(top, top + h), slice(left, left + w))
    panels = [np.maximum(p[window], 0).astype(np.float32) ** metrics.NTIRE_GAMMA for p in (ldr, prediction, reference)]
    return np.concatenate(panels, axis=1)


def encode_rgbe(linear: np.ndarray) -> np.ndarray:
    """H×W×3 float ≥ 0 → H×W×4 uint8 Radiance RGBE (Ward 1991: shared exponent in the 4th channel, ~1 % precision)."""
    peak = linear.max(axis=2)
    mantissa, exponent = np.frexp(np.maximum(peak, 1e-32))
    scale = np.where(peak > 1e-32, mantissa * 256.0 / np.maximum(peak, 1e-32), 0.0)
    rgb = np.clip(np.floor(linear * scale[..., None]), 0, 255)
    e = np.where(peak > 1e-32, exponent + 128, 0)
    return np.concatenate([rgb, e[..., None]], axis=2).astype(np.uint8)


def decode_rgbe(rgbe: np.ndarray) -> np.ndarray:
    """The inverse of ``encode_rgbe`` (pixel centres: +0.5 on the mantissa)."""
    e = rgbe[..., 3].astype(np.int32)
    factor = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0)
    return ((rgbe[..., :3].astype(np.float64) + 0.5) * factor[..., None]).astype(np.float32)


def save_hdr_preview(row_path: str | Path, crops: list[np.ndarray] | None) -> Path | None:
    """Every evaluation image's HDR crop strip, stacked top to bottom, as one RGBE PNG beside the row (the results
    page re-exposes and tone-maps them in the browser). Crops of different sizes are padded with black."""
    if not crops:
        return None
    import cv2

    height, width = max(c.shape[0] for c in crops), max(c.shape[1] for c in crops)
    stack = np.zeros((height * len(crops), width, 3), np.float32)
    for i, crop in enumerate(crops):
        stack[i * height : i * height + crop.shape[0], : crop.shape[1]] = crop
    rgbe = encode_rgbe(stack)
    path = hdr_preview_path(row_path)
    return io.atomic_write(path, lambda tmp: _write_png(tmp, cv2.cvtColor(rgbe, cv2.COLOR_RGBA2BGRA)))


def preview_path(row_path: str | Path) -> Path:
    """``results/runs/<run_id>.json`` → ``results/runs/<run_id>.preview.png``."""
    return Path(row_path).with_suffix(".preview.png")


def highlight_crop(ldr: np.ndarray, size: int = CROP) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the size×size window of an H×W×3 LDR in [0, 1] holding the most saturated pixels
    (the first such window in row-major order on ties); the whole image where it is smaller."""
    height, width = min(size, ldr.shape[0]), min(size, ldr.shape[1])
    saturated = (ldr.max(axis=2) >= SATURATED).astype(np.int64)
    table = np.pad(saturated.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
    counts = table[height:, width:] - table[:-height, width:] - table[height:, :-width] + table[:-height, :-width]
    top, left = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(top), int(left), height, width


def preview_strip(ldr: np.ndarray, reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """The H×3W×3 uint8 strip [input | μ-law prediction | μ-law reference] of the highlight crop. ``ldr`` in [0, 1];
    ``reference`` and ``prediction`` NTIRE gamma-encoded H×W×3."""
    top, left, h, w = highlight_crop(ldr)
    window = (slice(top, top + h), slice(left, left + w))
    panels = [ldr, metrics.ntire_mu_tonemap(prediction, reference), metrics.ntire_mu_tonemap(reference, reference)]
    return np.concatenate([np.round(np.clip(p[window], 0, 1) * 255).astype(np.uint8) for p in panels], axis=1)


def save_preview(row_path: str | Path, ldr: np.ndarray, reference: np.ndarray, prediction: np.ndarray) -> Path:
    """Write the preview PNG of one evaluation image atomically (H×W×3 arrays: the LDR input, the NTIRE-encoded
    reference and prediction)."""
    strip = preview_strip(ldr, reference, prediction)
    import cv2

    path = preview_path(row_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return io.atomic_write(path, lambda tmp: _write_png(tmp, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)))


def _write_png(path: Path, bgr: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(".png", bgr)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    path.write_bytes(data.tobytes())


def load_preview(path: str | Path) -> dict[str, np.ndarray]:
    """The three panels of a preview PNG as {"input", "prediction", "reference"}: h×w×3 float arrays in [0, 1]."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"{path}: not a readable PNG")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    width = rgb.shape[1] // len(PANELS)
    return {name: rgb[:, i * width : (i + 1) * width] for i, name in enumerate(PANELS)}
