"""The forward camera: linear HDR scene → 8-bit LDR, with every intermediate (docs/data.md).

Steps, each seeded by the caller's generator and recorded in ``CameraSample.record``:
1. exposure t = 1 / quantile(max_RGB(scene), 1 − q), so a fraction q of pixels clips;
2. sensor noise in linear space, x + σ_s·x·n₁ + σ_c·n₂ then ReLU, with σ_s, σ_c drawn per channel and n₁, n₂, σ_s,
   σ_c all independent. Deliberate deviation: the official SingleHDR graph seeds both uniform draws and both normal
   draws identically, so there σ_s and σ_c share one uniform and n₁ = n₂ (docs/models.md);
3. clip to [0, 1];
4. camera response: a forward curve applied by 1024-sample linear lookup (SingleHDR's ``apply_rf``);
5. 8-bit quantisation ⌊255·y + 0.5⌋/255 (SingleHDR §3.1; NumPy's round would round halves to even);
6. optional JPEG through OpenCV (4:2:0 chroma subsampling), whose libjpeg build is recorded: JPEG bytes differ
   between builds, so a frozen split with JPEG is reproducible only on the same OpenCV build.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from zoo.data.crf import ResponseCurve, apply_curve  # noqa: E402
from zoo.errors import ZooError  # noqa: E402

NTIRE_GAMMA = 2.24


@lru_cache(maxsize=1)
def jpeg_encoder() -> str:
    """The JPEG encoder identity recorded next to JPEG samples, e.g. ``"opencv 4.14.0 / build-libjpeg-turbo
    (ver 3.1.2-70)"``."""
    match = re.search(r"^\s*JPEG:\s*(.+)$", cv2.getBuildInformation(), flags=re.MULTILINE)
    return f"opencv {cv2.__version__} / {match.group(1).strip() if match else 'unknown libjpeg'}"


@dataclass(frozen=True)
class CameraParams:
    """The degradation parameters of one sample (all JSON-able).

    ``clip_fraction``: the requested share q of clipped pixels (the exposure t follows from it and the scene);
    ``signal_noise``/``read_noise``: σ_s, σ_c per RGB channel (0 = noise off); ``curve``: the response curve's name;
    ``jpeg_quality``: 0 = no JPEG.
    """

    clip_fraction: float
    signal_noise: tuple[float, float, float] = (0.0, 0.0, 0.0)
    read_noise: tuple[float, float, float] = (0.0, 0.0, 0.0)
    curve: str = "gamma-2.24"
    jpeg_quality: int = 0


@dataclass
class CameraSample:
    """All intermediates of one exposure, H×W×3 float32 each (``inv_crf``: (1024,) float32).

    ``linear``: the clean scene × t (unclipped, ≥ 0); ``linear_noisy``: with sensor noise (unclipped, ≥ 0);
    ``linear_clipped``: noisy, clipped to [0, 1]; ``ldr_unquantized``: the response curve's output in [0, 1];
    ``ldr``: quantised to 8 bit (and JPEG-compressed if asked), in [0, 1]; ``target``: linear ** (1/2.24), the NTIRE
    encoding; ``inv_crf``: the inverse response curve on i/1023; ``record``: JSON-able parameters and measurements.
    """

    linear: np.ndarray
    linear_noisy: np.ndarray
    linear_clipped: np.ndarray
    ldr_unquantized: np.ndarray
    ldr: np.ndarray
    target: np.ndarray
    inv_crf: np.ndarray
    record: dict = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if k != "record"}


def max_rgb(image: np.ndarray) -> np.ndarray:
    """Per-pixel max over the RGB channels (H×W); np.maximum is several times faster than max(axis=2) here."""
    return np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])


def exposure_for_clip_fraction(scene: np.ndarray, clip_fraction: float, path: str = "scene") -> float:
    """t such that a fraction ``clip_fraction`` of pixels of t·scene has max_RGB > 1 (``scene``: H×W×3, ≥ 0).

    Ties at the quantile (flat bright plateaus) make the achieved share smaller; if the quantile is 0 (more than
    1 − q of the image is black) the exposure is set from the brightest pixel instead.
    """
    peak = max_rgb(scene).ravel()
    k = min(max(int(round((1.0 - clip_fraction) * peak.size)) - 1, 0), peak.size - 1)
    level = float(np.partition(peak, k)[k])
    if level <= 0:
        level = float(peak.max())
        if level <= 0:
            raise ZooError(f"{path}: HDR image is all zero; cannot choose an exposure")
    return 1.0 / level


def draw_noise(rng: np.random.Generator, signal_max: float, read_max: float) -> tuple[tuple, tuple]:
    """σ_s ~ U(0, signal_max) and σ_c ~ U(0, read_max), independently per channel."""
    signal = tuple(float(v) for v in rng.uniform(0.0, signal_max, 3))
    read = tuple(float(v) for v in rng.uniform(0.0, read_max, 3))
    return signal, read


def jpeg_roundtrip(ldr8: np.ndarray, quality: int) -> np.ndarray:
    """Encode an H×W×3 uint8 RGB image as JPEG (OpenCV, 4:2:0) at ``quality`` and decode it back."""
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        int(quality),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(ldr8[..., ::-1]), params)
    if not ok:
        raise ZooError(f"JPEG encoding failed at quality {quality}")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def capture(
    scene: np.ndarray,
    params: CameraParams,
    curve: ResponseCurve,
    rng: np.random.Generator,
    exposure: float | None = None,
    path: str = "scene",
) -> CameraSample:
    """Photograph a linear HDR ``scene`` (H×W×3, finite, ≥ 0, any scale) with ``params`` and ``curve``.

    ``rng`` draws the noise fields (n₁ then n₂, float32 standard normal). ``exposure`` overrides the clip-fraction
    rule (t given directly); ``path`` names the input in errors. The record holds the params, t, the achieved
    clipped share and the JPEG encoder.
    """
    scene = np.asarray(scene, dtype=np.float32)
    t = exposure if exposure is not None else exposure_for_clip_fraction(scene, params.clip_fraction, path)
    linear = scene * np.float32(t)
    if any(params.signal_noise) or any(params.read_noise):
        n1, n2 = rng.standard_normal((2, *linear.shape), dtype=np.float32)
        s = np.asarray(params.signal_noise, dtype=np.float32)
        c = np.asarray(params.read_noise, dtype=np.float32)
        noisy = np.maximum(linear + s * linear * n1 + c * n2, 0.0)
    else:
        noisy = linear
    clipped = np.minimum(noisy, 1.0)
    unquantized = apply_curve(clipped, curve.forward)
    ldr8 = np.floor(unquantized * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)  # the paper's ⌊255x + 0.5⌋
    if params.jpeg_quality:
        ldr8 = jpeg_roundtrip(ldr8, params.jpeg_quality)
    record = asdict(params)
    record.update(
        exposure=float(t),
        clipped_fraction=float((max_rgb(noisy) > 1.0).mean()),
        curve_family=curve.family,
        curve_params=curve.params,
        jpeg_encoder=jpeg_encoder() if params.jpeg_quality else "",
    )
    return CameraSample(
        linear=linear,
        linear_noisy=noisy,
        linear_clipped=clipped,
        ldr_unquantized=unquantized,
        ldr=ldr8.astype(np.float32) / np.float32(255.0),
        target=np.power(linear, np.float32(1.0 / NTIRE_GAMMA)),
        inv_crf=curve.inverse.astype(np.float32),
        record=record,
    )
