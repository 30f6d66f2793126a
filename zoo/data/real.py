"""Real HDR scenes: the 17 CC0 Poly Haven panoramas shipped with the package, and the synthetic + real mix.

``real``: the folder source on the shipped scenes (``data.root`` null) with the fixed split below; any other
``data.root`` works as with ``folder``. ``mixed``: each training sample is a real-scene crop with probability
``data.real_fraction`` (a pure function of the sample's seed, index and epoch), otherwise a procedural scene; its
evaluation split is the real one (held-out scenes only).

The split is every other scene in alphabetical order: the 8 at odd positions are held out for evaluation, the 9 at
even positions train. Both halves hold sun-lit outdoor scenes with peaks of 10^3..10^4 and interiors with lamps.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import numpy as np

from zoo.data.common import SampledDataset, sample_rng
from zoo.data.config import DataConfig
from zoo.data.folder import FolderDataset
from zoo.data.synthetic import SyntheticDataset
from zoo.errors import ZooError

SCENES = (
    "apartment",
    "bridge",
    "city",
    "dawn",
    "esplanade",
    "forest",
    "hall",
    "lab",
    "lobby",
    "night",
    "park",
    "sky",
    "studio",
    "sunset",
    "venice",
    "warehouse",
    "workshop",
)
EVAL_SCENES = SCENES[1::2]
TRAIN_SCENES = SCENES[0::2]


def scenes_dir() -> Path:
    """The shipped scenes (``zoo/data/assets/polyhaven``, CC0, see the README there)."""
    return Path(str(resources.files("zoo.data") / "assets" / "polyhaven"))


def split_file() -> Path:
    return scenes_dir() / "eval_split.txt"


class RealDataset(FolderDataset):
    """The folder source whose default folder and split are the shipped scenes (see the module docstring)."""

    source = "real"

    def locate(self, cfg: DataConfig) -> tuple[str | None, str]:
        return (cfg.root, "data.root") if cfg.root else (str(scenes_dir()), "data.root (shipped scenes)")

    def split_config(self, cfg: DataConfig) -> DataConfig:
        if cfg.root or cfg.split_file:
            return cfg
        return dataclasses.replace(cfg, split_file=str(split_file()))


class MixedDataset(SampledDataset):
    """Training: synthetic scenes and real-scene crops, mixed at ``data.real_fraction``; eval: the real eval split."""

    source = "mixed"

    def __init__(self, cfg: DataConfig, split: str):
        if not 0 <= cfg.real_fraction <= 1:
            raise ZooError(f"data.real_fraction: expected a fraction in [0, 1], got {cfg.real_fraction}")
        self.cfg, self.split = cfg, split
        self.real = RealDataset(cfg, split)
        self.synthetic = SyntheticDataset(cfg, split) if split == "train" else None
        self.keys = self.real.keys
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.real.set_epoch(epoch)
        if self.synthetic is not None:
            self.synthetic.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.real) if self.synthetic is None else self.cfg.train_length

    def part(self, index: int) -> SampledDataset:
        if self.synthetic is None:
            return self.real
        rng = sample_rng(self.source, "train", self.cfg.seed, index, self.epoch)
        return self.real if rng.random() < self.cfg.real_fraction else self.synthetic

    def sample(self, index: int) -> tuple[dict[str, np.ndarray], dict]:
        return self.part(index).sample(index)
