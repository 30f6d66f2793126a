"""The NTIRE 2021 Track 1 source: real LDR/HDR pairs in the challenge's file format (docs/data.md).

Files are paired by ID (``NNNN_medium.png`` + ``NNNN_gt.png`` + ``NNNN_alignratio.npy``), never by sorted position as
the organizers' scorer does; any unpaired file stops construction with a one-line error naming it. Multi-frame files
(``_short``, ``_long``, ``_exposures``) are ignored. A sample is {"ldr", "target"}: the 8-bit medium frame in [0, 1]
and the gamma-2.24 encoded GT (uint16 / alignratio), already aligned to the medium exposure.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from zoo.data.common import (
    ImageCache,
    SampledDataset,
    augment,
    centre_crop_box,
    choose,
    sample_rng,
    split_ids,
    warn_overlap,
)
from zoo.data.config import DataConfig
from zoo.errors import ZooError
from zoo.io import read_ldr, read_ntire

NAME = re.compile(r"^(?P<id>[^_]+)_(?P<kind>medium|gt|alignratio|short|long|exposures)\.(?P<ext>png|npy)$")
REQUIRED = {"medium": "png", "gt": "png", "alignratio": "npy"}


def list_ntire_pairs(root: str | Path | None, key: str = "data.root") -> dict[str, dict[str, Path]]:
    """``{id: {"medium": path, "gt": path, "alignratio": path}}`` for the NTIRE files in ``root`` (not recursive).

    Raises a ZooError naming the first file whose partner is missing.
    """
    if root is None:
        raise ZooError(f"{key}: the ntire2021 dataset needs the folder of NNNN_medium.png/NNNN_gt.png files (got null)")
    root = Path(root)
    if not root.is_dir():
        raise ZooError(f"{key}: folder {root} does not exist")
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(root.iterdir()):
        match = NAME.match(path.name)
        if match and match["kind"] in REQUIRED and REQUIRED[match["kind"]] == match["ext"] and path.is_file():
            found.setdefault(match["id"], {})[match["kind"]] = path
    if not found:
        raise ZooError(f"{root}: no NTIRE files found (expected NNNN_medium.png, NNNN_gt.png, NNNN_alignratio.npy)")
    for item, files in found.items():
        for kind, ext in REQUIRED.items():
            if kind not in files:
                present = files.get("gt") or files.get("medium") or files["alignratio"]
                raise ZooError(f"{present}: no matching {item}_{kind}.{ext} in {root} (NTIRE files pair by ID)")
    return found


class NtireDataset(SampledDataset):
    """NTIRE 2021 frames.

    train: ``train_length`` random ``patch_size``² crops (sample i uses training frame i mod N) with random rot90/flip.
    eval: the held-out frames (``split_file``, e.g. HDRUNet's random_valid.txt; else ``eval_root``; else a seeded
    choice of ``eval_count``, 0 = all), full frames or the centre crop ``eval_height``×``eval_width``.
    Frames are decoded on every access unless cached (``cache_mb``); a full 1900×1060 pair costs tens of ms, so use
    ``num_workers`` ≥ 2 or pre-cropped frames for long training runs.
    """

    keys = ("ldr", "target")
    source = "ntire2021"

    def __init__(self, cfg: DataConfig, split: str):
        self.cfg, self.split = cfg, split
        if split == "eval" and cfg.eval_root:
            self.files = list_ntire_pairs(cfg.eval_root, "data.eval_root")
            self.ids = choose(sorted(self.files), cfg.eval_count, cfg.seed, self.source)
        else:
            self.files = list_ntire_pairs(cfg.root)
            train, held = split_ids(sorted(self.files), cfg, self.source)
            self.ids = train if split == "train" else held
            if split == "train":
                warn_overlap(train, held, cfg.root)
            if not self.ids:
                raise ZooError(f"{cfg.split_file}: lists every frame of {cfg.root}; none is left for training")
        self.length = cfg.train_length if split == "train" else len(self.ids)
        self.epoch = 0
        self.cache = ImageCache(cfg.cache_mb)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def item_id(self, index: int) -> str:
        return self.ids[index % len(self.ids)]

    def read(self, item: str) -> tuple[np.ndarray, np.ndarray]:
        """(LDR in [0, 1], GT in the NTIRE encoding), H×W×3 float32 each."""
        files = self.files[item]

        def load() -> tuple[np.ndarray, np.ndarray]:
            ldr = read_ldr(files["medium"])
            gt = read_ntire(files["gt"], files["alignratio"])
            if ldr.shape != gt.shape:
                raise ZooError(
                    f"{files['gt']}: size {gt.shape[1]}x{gt.shape[0]} differs from "
                    f"{files['medium'].name} ({ldr.shape[1]}x{ldr.shape[0]})"
                )
            return ldr, gt

        return self.cache.get(item, load)

    def sample(self, index: int) -> tuple[dict[str, np.ndarray], dict]:
        if not 0 <= index < self.length:
            raise IndexError(f"ntire2021 {self.split} index {index} out of range 0..{self.length - 1}")
        item = self.item_id(index)
        ldr, gt = self.read(item)
        height, width = ldr.shape[:2]
        record: dict = {
            "id": item,
            "source": self.source,
            "split": self.split,
            "seed": self.cfg.seed,
            "index": index,
            "file": str(self.files[item]["medium"]),
            "gt": str(self.files[item]["gt"]),
        }
        if self.split == "eval":
            top, left, h, w = centre_crop_box(height, width, self.cfg.eval_height, self.cfg.eval_width)
        else:
            rng = sample_rng(self.source, "train", self.cfg.seed, index, self.epoch)
            h = w = self.cfg.patch_size
            if h > height or w > width:
                medium = self.files[item]["medium"]
                raise ZooError(f"{medium}: frame {width}x{height} is smaller than data.patch_size {h}")
            top, left = int(rng.integers(height - h + 1)), int(rng.integers(width - w + 1))
        record["crop"] = [top, left, h, w]
        arrays = {"ldr": ldr[top : top + h, left : left + w], "target": gt[top : top + h, left : left + w]}
        if self.split == "train":
            record["epoch"] = self.epoch
            if self.cfg.camera.augment:
                arrays, record["augment"] = augment(arrays, rng)
        return arrays, record
