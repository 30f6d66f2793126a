"""Shared machinery of the datasets: per-sample seeding, the camera-sample base class, crops, augmentation, splits.

Seeding: every sample is a pure function of (source, split, config seed, item key, epoch, ``PIPELINE_VERSION``),
hashed into a ``SeedSequence`` (strings via CRC32, so no dependence on PYTHONHASHSEED, workers or call order).
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.data import camera as cam
from zoo.data import crf
from zoo.data.config import CameraConfig, DataConfig
from zoo.errors import ZooError

log = logging.getLogger(__name__)

PIPELINE_VERSION = 1
CAMERA_KEYS = ("ldr", "target", "linear", "linear_noisy", "linear_clipped", "ldr_unquantized", "inv_crf")
SPLITS = ("train", "eval")


def sample_rng(*parts: int | str) -> np.random.Generator:
    """A generator seeded by a stable hash of ``parts``."""
    words = [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) & 0xFFFFFFFF for p in parts]
    return np.random.default_rng(np.random.SeedSequence([PIPELINE_VERSION, *words]))


def check_config(cfg: DataConfig, split: str) -> None:
    """Refuse settings that would fail later or silently produce nonsense, naming the config key."""
    c = cfg.camera
    checks = [
        (split in SPLITS, f"data split {split!r}: expected 'train' or 'eval'"),
        (cfg.patch_size >= 8, f"data.patch_size: expected >= 8, got {cfg.patch_size}"),
        (cfg.eval_count >= 0, f"data.eval_count: expected >= 0, got {cfg.eval_count}"),
        (cfg.train_length > 0, f"data.train_length: expected > 0, got {cfg.train_length}"),
        (0 < cfg.train_scale_min <= cfg.train_scale_max, "data.train_scale_min/max: expected 0 < min <= max"),
        (
            0 < c.clip_fraction_min <= c.clip_fraction_max < 1,
            "data.camera.clip_fraction_min/max: expected 0 < min <= max < 1",
        ),
        (0 < c.eval_clip_fraction < 1, f"data.camera.eval_clip_fraction: must be in (0,1), got {c.eval_clip_fraction}"),
        (c.signal_noise_max >= 0 and c.read_noise_max >= 0, "data.camera.signal/read_noise_max: expected >= 0"),
        (
            c.response in ("family", "gamma", "srgb"),
            f"data.camera.response: unknown {c.response!r}; " "expected 'family', 'gamma' or 'srgb'",
        ),
        (c.gamma > 0, f"data.camera.gamma: expected > 0, got {c.gamma}"),
        (1 <= c.jpeg_quality_min <= c.jpeg_quality_max <= 100, "data.camera.jpeg_quality_min/max: expected 1..100"),
        (1 <= c.eval_jpeg_quality <= 100, "data.camera.eval_jpeg_quality: expected 1..100"),
        (0 <= c.jpeg_probability <= 1, "data.camera.jpeg_probability: expected in [0, 1]"),
    ]
    for ok, message in checks:
        if not ok:
            raise ZooError(message)
    for key in ("eval_height", "eval_width"):
        value = getattr(cfg, key)
        if value is not None and value < 8:
            raise ZooError(f"data.{key}: expected >= 8 or null, got {value}")


def response_for(cfg: CameraConfig, split: str, rng: np.random.Generator) -> crf.ResponseCurve:
    """The response curve of one sample, or a fixed standard curve (``response`` = "gamma" / "srgb").

    "family": training samples draw from the bank's training curves; evaluation items draw, with equal odds, from the
    held-out curves of the training families or from the held-out family (out of distribution).
    """
    if cfg.response == "family":
        bank = crf.curve_bank()
        if split == "train":
            pool = bank.train
        elif rng.random() < 0.5:
            pool = tuple(c for c in bank.eval if c.family != crf.HELD_OUT_FAMILY)
        else:
            pool = tuple(c for c in bank.eval if c.family == crf.HELD_OUT_FAMILY)
        return pool[int(rng.integers(len(pool)))]
    if cfg.response == "gamma":
        return _standard_curve("gamma", cfg.gamma)
    return _standard_curve("srgb", 0.0)


_STANDARD: dict[tuple[str, float], crf.ResponseCurve] = {}


def _standard_curve(kind: str, gamma: float) -> crf.ResponseCurve:
    """Exact (no minimum-slope mixing) standard curves, built once."""
    key = (kind, gamma)
    if key not in _STANDARD:
        if kind == "gamma":
            forward = crf.gamma_curve(gamma)
            _STANDARD[key] = crf.ResponseCurve(f"gamma-{gamma:g}-exact", "gamma", forward, {"gamma": gamma})
        else:
            _STANDARD[key] = crf.ResponseCurve("srgb-exact", "gamma", crf.srgb_curve(), {})
    return _STANDARD[key]


def camera_params(cfg: CameraConfig, split: str, rng: np.random.Generator, curve: str) -> cam.CameraParams:
    """Draw the degradation of one sample: training draws from the ranges, evaluation uses the fixed eval values
    (only the noise levels are drawn, from the item's own generator)."""
    if split == "train":
        q = float(rng.uniform(cfg.clip_fraction_min, cfg.clip_fraction_max))
        noise = cfg.noise
        jpeg = cfg.jpeg and rng.random() < cfg.jpeg_probability
        quality = int(rng.integers(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1)) if jpeg else 0
    else:
        q, noise = cfg.eval_clip_fraction, cfg.eval_noise
        quality = cfg.eval_jpeg_quality if cfg.eval_jpeg else 0
    if noise:
        signal, read = cam.draw_noise(rng, cfg.signal_noise_max, cfg.read_noise_max)
    else:
        signal, read = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    return cam.CameraParams(q, signal, read, curve, quality)


def augment(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
    """The same random rot90 / horizontal flip on every H×W×C array (1-D arrays such as inv_crf pass through)."""
    k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
    out = {}
    for key, a in arrays.items():
        if a.ndim == 3:
            a = np.rot90(a, k)
            a = a[:, ::-1] if flip else a
        out[key] = a
    return out, {"rot90": k, "flip": flip}


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """H×W×C arrays → C×H×W float32 tensors (contiguous copies); 1-D arrays → float32 tensors."""
    out = {}
    for key, a in arrays.items():
        a = np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a, dtype=np.float32)
        out[key] = torch.from_numpy(a)
    return out


def to_json(value: Any) -> Any:
    """numpy scalars/arrays and tuples → plain JSON values (recursively)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def centre_crop_box(height: int, width: int, crop_h: int | None, crop_w: int | None) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a centred crop, each side capped by the image (None = the full side)."""
    h = height if crop_h is None else min(crop_h, height)
    w = width if crop_w is None else min(crop_w, width)
    return (height - h) // 2, (width - w) // 2, h, w


class ImageCache:
    """A small per-process LRU cache of decoded images, bounded in bytes (file sources re-read frames often)."""

    def __init__(self, budget_mb: int):
        self.budget = max(0, budget_mb) * 2**20
        self.items: OrderedDict[str, tuple[np.ndarray, ...]] = OrderedDict()
        self.size = 0

    def get(self, key: str, load: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = load()
        nbytes = sum(a.nbytes for a in value)
        if nbytes <= self.budget:
            self.items[key] = value
            self.size += nbytes
            while self.size > self.budget:
                _, old = self.items.popitem(last=False)
                self.size -= sum(a.nbytes for a in old)
        return value


def read_id_list(path: str | Path) -> list[str]:
    """IDs from a split file: one per line, blank lines and surrounding whitespace (CRLF) ignored."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ZooError(f"{path}: cannot read split file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ZooError(f"{path}: split file is not text (expected one image ID per line)") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise ZooError(f"{path}: split file lists no IDs")
    return ids


def choose(ids: list[str], count: int, seed: int, source: str) -> list[str]:
    """``count`` of ``ids`` (0 or ≥ len = all), in their order: those with the smallest seeded hash of their name, so
    adding images to a folder moves an image into the selection only if its own hash is small enough."""
    if count == 0 or count >= len(ids):
        return list(ids)
    rank = sorted(ids, key=lambda i: hashlib.sha256(f"{source}/{seed}/{i}".encode()).hexdigest())
    held = set(rank[:count])
    return [i for i in ids if i in held]


def split_ids(ids: list[str], cfg: DataConfig, source: str) -> tuple[list[str], list[str]]:
    """Divide the sorted image ``ids`` of ``cfg.root`` into (train, eval).

    ``eval_root`` set: all of root trains (eval comes from eval_root). ``split_file``: its IDs are eval (each must
    exist), the rest train. Otherwise ``eval_count`` IDs chosen by a seeded hash are eval; with eval_count 0
    every image is in both splits (evaluating a whole folder; ``warn_overlap`` flags training on it).
    """
    if cfg.eval_root:
        return list(ids), []
    if cfg.split_file:
        known = set(ids)
        listed = read_id_list(cfg.split_file)
        for item in listed:
            if item not in known:
                raise ZooError(f"{cfg.split_file}: ID {item!r} has no image in {cfg.root}")
        held = set(listed)
        return [i for i in ids if i not in held], [i for i in ids if i in held]
    held_list = choose(ids, cfg.eval_count, cfg.seed, source)
    if len(held_list) == len(ids):
        return list(ids), held_list
    held = set(held_list)
    return [i for i in ids if i not in held], held_list


def warn_overlap(train: list[str], held: list[str], root: str | None) -> None:
    if set(train) & set(held):
        log.warning(
            "data: %d training images of %s are also in the eval split (set data.eval_count, split_file or "
            "eval_root to hold images out)",
            len(set(train) & set(held)),
            root,
        )


class SampledDataset(Dataset):
    """A dataset defined by ``sample(index) -> (HWC numpy arrays, record)``: items are its arrays as CHW tensors, and
    ``describe(index)`` is its JSON-able record (id, files, crop, degradation parameters), recomputed on demand."""

    def sample(self, index: int) -> tuple[dict[str, np.ndarray], dict]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return to_tensors(self.sample(index)[0])

    def describe(self, index: int) -> dict:
        return to_json(self.sample(index)[1])


class CameraDataset(SampledDataset):
    """Base of the sources that photograph linear HDR content with the simulated camera (synthetic, folder).

    Subclasses implement ``item_id(index)`` and ``scene(index, rng) -> (H×W×3 linear float32, info dict)``. A sample
    holds every key of ``CAMERA_KEYS``; ``describe(i)`` gives its JSON-able id and degradation record.
    """

    keys = CAMERA_KEYS
    source = "camera"

    def __init__(self, cfg: DataConfig, split: str, length: int):
        self.cfg, self.split, self.length = cfg, split, length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Training samples of epoch ``epoch`` differ from those of other epochs (evaluation is unaffected)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def item_id(self, index: int) -> str:
        raise NotImplementedError

    def scene(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def _rng(self, index: int) -> np.random.Generator:
        if self.split == "train":
            return sample_rng(self.source, "train", self.cfg.seed, index, self.epoch)
        return sample_rng(self.source, "eval", self.cfg.seed, self.item_id(index))

    def sample(self, index: int) -> tuple[dict[str, np.ndarray], dict]:
        """HWC numpy arrays of every key and the raw record of item ``index``."""
        if not 0 <= index < self.length:
            raise IndexError(f"{self.source} {self.split} index {index} out of range 0..{self.length - 1}")
        rng = self._rng(index)
        hdr, info = self.scene(index, rng)
        curve = response_for(self.cfg.camera, self.split, rng)
        params = camera_params(self.cfg.camera, self.split, rng, curve.name)
        shot = cam.capture(hdr, params, curve, rng, path=info.get("file", self.item_id(index)))
        arrays = shot.arrays()
        record = {
            "id": self.item_id(index),
            "source": self.source,
            "split": self.split,
            "seed": self.cfg.seed,
            "index": index,
            "epoch": self.epoch if self.split == "train" else 0,
            "pipeline_version": PIPELINE_VERSION,
            "height": int(hdr.shape[0]),
            "width": int(hdr.shape[1]),
            **info,
            **shot.record,
        }
        if self.split == "train" and self.cfg.camera.augment:
            arrays, record["augment"] = augment(arrays, rng)
        return arrays, record


def resize_area(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an H×W×3 float32 crop to size×size (area averaging when shrinking, bilinear when enlarging)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
