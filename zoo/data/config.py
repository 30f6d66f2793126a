"""Configuration of the data engine: plain dataclasses usable as Hydra structured-config nodes.

Only str/int/float/bool/Optional/list/nested-dataclass fields with defaults, so ``OmegaConf.structured(DataConfig)``
validates YAML overrides at compose time. Library code receives the resolved dataclass (``OmegaConf.to_object``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class CameraConfig:
    """The forward camera that turns a linear HDR scene into an 8-bit LDR (docs/data.md).

    Training samples draw every parameter per sample from the ranges; the frozen evaluation split uses the ``eval_*``
    values (fixed clip fraction, JPEG off by default because JPEG bytes depend on the libjpeg build).
    """

    # 1. exposure: a fraction q of pixels (per-pixel RGB max) ends above 1 and clips.
    clip_fraction_min: float = 0.01
    clip_fraction_max: float = 0.15
    eval_clip_fraction: float = 0.05  # SI-HDR clip_95; use 0.03 for clip_97
    # 2. noise in linear space: x + s*x*n1 + c*n2, s ~ U(0, signal_noise_max), c ~ U(0, read_noise_max) per channel.
    noise: bool = True
    signal_noise_max: float = 0.08 / 6  # SingleHDR's range
    read_noise_max: float = 0.005
    eval_noise: bool = True
    # 4. camera response: "family" (the project's curve family: training curves for train, held-out curves for eval),
    # "gamma" (x ** (1 / gamma)) or "srgb" (the sRGB OETF).
    response: str = "family"
    gamma: float = 2.24
    # 6. JPEG (OpenCV encoder, 4:2:0) with probability jpeg_probability per training sample.
    jpeg: bool = True
    jpeg_probability: float = 0.5
    jpeg_quality_min: int = 90
    jpeg_quality_max: int = 100
    eval_jpeg: bool = False
    eval_jpeg_quality: int = 95
    # 7. augmentation of training patches: random flips / 90° rotations.
    augment: bool = True


# DataConfig keys that shape training samples only: two configs that differ in them have the same evaluation split.
TRAIN_ONLY_KEYS = (
    "patch_size",
    "train_length",
    "num_workers",
    "train_scale_min",
    "train_scale_max",
    "real_fraction",
    "cache_mb",
)


@dataclass
class DataConfig:
    """Which HDR source to use and how to cut it into training patches and a frozen evaluation split.

    ``name``: "synthetic" (procedural scenes, no files), "folder" (the user's .exr/.hdr files under ``root``, degraded
    on the fly) or "ntire2021" (NTIRE 2021 Track 1 files under ``root``: NNNN_medium.png, NNNN_gt.png,
    NNNN_alignratio.npy).
    """

    name: str = "synthetic"  # synthetic | folder | real | mixed | ntire2021
    root: Optional[str] = None
    # A separate folder for the evaluation split (e.g. NTIRE validation frames with GT); None = hold out images of root.
    eval_root: Optional[str] = None
    # A text file of image IDs (one per line; HDRUNet's random_valid.txt for NTIRE, file stems for a folder): those
    # images form the eval split and the rest train.
    split_file: Optional[str] = None
    patch_size: int = 64
    train_length: int = 100_000  # training samples per epoch (set_epoch(e) draws a fresh set)
    # Images in the frozen eval split: synthetic scenes, or images of a file source chosen by a seeded hash of their
    # names (0 = all; without split_file/eval_root that is every image of root). split_file overrides it.
    eval_count: int = 8
    # Evaluation size: the synthetic scene size, or a centre crop of file sources (None = full frames).
    eval_height: Optional[int] = 128
    eval_width: Optional[int] = 192
    # Random rescaling of file-source training crops (folder only; < 1 shows more context per patch).
    train_scale_min: float = 0.5
    train_scale_max: float = 1.0
    # File sources: negative values (lossy-compression ringing in real files) are "clamp"ed to 0 and counted per
    # image in the records, "refuse"d (the file is reported and skipped), or "fill"ed from their valid neighbours
    # (conf/data/real.yaml uses fill: docs/evaluation.md, "Ringing in the real scenes").
    negative_values: str = "clamp"
    # mixed: share of training samples that are real-scene crops (the rest are procedural scenes).
    real_fraction: float = 0.5
    cache_mb: int = 1024  # decoded images kept in memory per process (file sources)
    seed: int = 0
    num_workers: int = 0
    camera: CameraConfig = field(default_factory=CameraConfig)
