"""Torch datasets of dict samples: procedural scenes, the user's HDR files, NTIRE 2021 frames.

A sample is a dict of CHW float32 tensors: "ldr" (8-bit LDR in [0, 1]) and "target" (NTIRE gamma-2.24 HDR aligned to
the LDR exposure) always; camera-simulated sources add "linear", "linear_noisy", "linear_clipped", "ldr_unquantized"
and "inv_crf" ((1024,)). ``dataset.keys`` lists what a source gives; ``dataset.describe(i)`` returns the JSON-able id
and degradation parameters of item i (write them next to the results).

Seeding: every training sample is a pure function of (config seed, source, split, index, epoch, pipeline version),
so workers, restarts and machines agree; ``set_epoch(e)`` draws a fresh set for the next epoch.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.data import camera as cam
from zoo.data import crf, scenes
from zoo.data.config import CameraConfig, DataConfig
from zoo.errors import ZooError

PIPELINE_VERSION = 1
CAMERA_KEYS = ("ldr", "target", "linear", "linear_noisy", "linear_clipped", "ldr_unquantized", "inv_crf")
SPLITS = ("train", "eval")


def sample_rng(*parts: int | str) -> np.random.Generator:
    """A generator seeded by a stable hash of ``parts`` (strings via CRC32, so no dependence on PYTHONHASHSEED)."""
    words = [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in parts]
    return np.random.default_rng(np.random.SeedSequence([PIPELINE_VERSION] + words))


def response_for(cfg: CameraConfig, split: str, rng: np.random.Generator) -> crf.ResponseCurve:
    """The response curve of one sample: drawn from the bank's training or evaluation curves, or a fixed standard."""
    if cfg.response == "family":
        bank = crf.curve_bank()
        pool = bank.train if split == "train" else bank.eval
        return pool[int(rng.integers(len(pool)))]
    if cfg.response == "gamma":
        forward = crf.gamma_curve(cfg.gamma)
        return crf.ResponseCurve(f"gamma-{cfg.gamma:g}", "gamma", forward, {"gamma": cfg.gamma})
    if cfg.response == "srgb":
        return crf.ResponseCurve("srgb-exact", "gamma", crf.srgb_curve(), {})
    raise ZooError(f"data.camera.response: unknown value {cfg.response!r}; expected 'family', 'gamma' or 'srgb'")


def camera_params(cfg: CameraConfig, split: str, rng: np.random.Generator, curve: str) -> cam.CameraParams:
    """Draw the degradation of one sample: training draws from the ranges, evaluation uses the fixed eval values."""
    if split == "train":
        q = float(rng.uniform(cfg.clip_fraction_min, cfg.clip_fraction_max))
        noise = cfg.noise
        jpeg = cfg.jpeg and rng.random() < cfg.jpeg_probability
        quality = int(rng.integers(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1)) if jpeg else 0
    else:
        q, noise = cfg.eval_clip_fraction, cfg.eval_noise
        quality = cfg.eval_jpeg_quality if cfg.eval_jpeg else 0
    signal, read = cam.draw_noise(rng, cfg.signal_noise_max, cfg.read_noise_max) if noise else ((0.0,) * 3,) * 2
    return cam.CameraParams(q, signal, read, curve, quality)


def augment(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
    """The same random rot90 / flips on every H×W×C array (1-D arrays such as inv_crf pass through)."""
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


def _json(value: Any) -> Any:
    """numpy scalars/arrays and tuples → plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


class SyntheticDataset(Dataset):
    """Procedural scenes through the simulated camera.

    train: ``train_length`` patches of ``patch_size``² rendered directly at patch resolution (a random window of a
    scene whose virtual height is 1.5–6 patches), random exposure/noise/curve/JPEG, random rot90/flip.
    eval: ``eval_count`` whole scenes of ``eval_height``×``eval_width`` with the fixed evaluation camera.
    """

    keys = CAMERA_KEYS

    def __init__(self, cfg: DataConfig, split: str):
        self.cfg, self.split = cfg, split
        self.epoch = 0
        self.length = cfg.train_length if split == "train" else cfg.eval_count
        if self.length <= 0:
            raise ZooError(f"data: the synthetic {split} split needs a positive length, got {self.length}")
        self._records: dict[int, dict] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        epoch = self.epoch if self.split == "train" else 0
        return sample_rng("synthetic", self.split, self.cfg.seed, index, epoch)

    def item_id(self, index: int) -> str:
        return f"synthetic-{self.split}-s{self.cfg.seed}-{index:05d}"

    def sample(self, index: int) -> tuple[dict[str, np.ndarray], dict]:
        """The HWC numpy arrays and the JSON-able record of item ``index``."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = self._rng(index)
        if self.split == "train":
            size = self.cfg.patch_size
            scene = scenes.draw_scene(rng, aspect=1.5)
            extent = rng.uniform(1 / 6, 2 / 3)  # window height in canvas units
            x0 = rng.uniform(0, 1.5 - extent)
            y0 = rng.uniform(0, 1 - extent)
            hdr = scenes.render(scene, size, size, (x0, y0, extent))
            window = {"x0": x0, "y0": y0, "extent": extent}
        else:
            h, w = self.cfg.eval_height or 128, self.cfg.eval_width or 192
            scene = scenes.draw_scene(rng, aspect=w / h)
            hdr = scenes.render(scene, h, w)
            window = {"x0": 0.0, "y0": 0.0, "extent": 1.0}
        curve = response_for(self.cfg.camera, self.split, rng)
        params = camera_params(self.cfg.camera, self.split, rng, curve.name)
        shot = cam.capture(hdr, params, curve, rng)
        arrays = shot.arrays()
        record = {"id": self.item_id(index), "source": "synthetic", "split": self.split, "seed": self.cfg.seed,
                  "index": index, "epoch": self.epoch if self.split == "train" else 0, "window": window,
                  "pipeline_version": PIPELINE_VERSION, **shot.record}
        if self.split == "train" and self.cfg.camera.augment:
            arrays, record["augment"] = augment(arrays, rng)
        return arrays, _json(record)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        arrays, _ = self.sample(index)
        return to_tensors(arrays)

    def describe(self, index: int) -> dict:
        """JSON-able id and degradation parameters of item ``index`` (recomputed: a pure function of the index)."""
        return self.sample(index)[1]


def build_dataset(cfg: DataConfig, split: str) -> Dataset:
    """The dataset named by ``cfg.name`` for ``split`` ("train" or "eval")."""
    if split not in SPLITS:
        raise ZooError(f"data split {split!r}: expected 'train' or 'eval'")
    if cfg.name == "synthetic":
        return SyntheticDataset(cfg, split)
    raise ZooError(f"data.name: unknown dataset {cfg.name!r}; expected 'synthetic', 'folder' or 'ntire2021'")
