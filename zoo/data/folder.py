"""The folder source: the user's own linear HDR images (.exr / .hdr, any scale) degraded on the fly by the camera.

Real files are read as they are: negative values (lossy-compression ringing next to suns and lamps) are clamped to 0
by default and counted per image in each sample's record (``data.negative_values=refuse`` rejects such files
instead, ``=fill`` fills those pixels from their neighbours: ``zoo.io.handle_negatives``); an RGBA EXR gives its RGB;
a file that cannot be read is reported by name and skipped, the others are used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from zoo.data.common import CameraDataset, ImageCache, centre_crop_box, choose, resize_area, split_ids, warn_overlap
from zoo.data.config import DataConfig
from zoo.errors import ZooError
from zoo.io import HDR_SUFFIXES, NEGATIVE_POLICIES, read_hdr_counted
from zoo.metrics import MIN_SIDE

log = logging.getLogger(__name__)


def list_hdr_files(root: str | Path, key: str = "data.root") -> dict[str, Path]:
    """``{id: path}`` of every .exr/.hdr file under ``root`` (recursive); the id is the path relative to root
    without suffix (so it is unique and stable when files are added)."""
    if root is None:
        raise ZooError(f"{key}: the folder dataset needs a folder of .exr/.hdr images (got null)")
    root = Path(root)
    if not root.is_dir():
        raise ZooError(f"{key}: folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in HDR_SUFFIXES and p.is_file())
    if not files:
        raise ZooError(f"{root}: no .exr or .hdr files found (folder dataset)")
    ids: dict[str, Path] = {}
    for path in files:
        item = path.relative_to(root).with_suffix("").as_posix()
        if item in ids:
            raise ZooError(f"{path}: same image id {item!r} as {ids[item].name}; keep one of .exr/.hdr")
        ids[item] = path
    return ids


class FolderDataset(CameraDataset):
    """HDR files under ``cfg.root`` through the simulated camera.

    train: ``train_length`` samples; sample i reads image i mod N (of the training images), takes a random crop of
    ``patch_size``/s pixels with s ~ U(train_scale_min, train_scale_max), resizes it to the patch size, exposes it,
    and applies the augmentation. eval: each held-out image (full frame, or the centre crop ``eval_height`` ×
    ``eval_width``) with the evaluation camera seeded by its id. Any scale; NaN/inf are refused, negative values
    handled by ``data.negative_values``. Every file of the split is read once when the dataset is built, so
    unreadable files are found (and skipped, with one warning line each) before any training.
    """

    source = "folder"

    def __init__(self, cfg: DataConfig, split: str):
        if cfg.negative_values not in NEGATIVE_POLICIES:
            raise ZooError(
                f"data.negative_values: expected one of {', '.join(NEGATIVE_POLICIES)}, " f"got {cfg.negative_values!r}"
            )
        root, key = self.locate(cfg)
        if split == "eval" and cfg.eval_root:
            self.paths = list_hdr_files(cfg.eval_root, "data.eval_root")
            ids = choose(list(self.paths), cfg.eval_count, cfg.seed, self.source)
        else:
            self.paths = list_hdr_files(root, key)
            train, held = split_ids(list(self.paths), self.split_config(cfg), self.source)
            ids = train if split == "train" else held
            if split == "train":
                warn_overlap(train, held, root)
            if not ids:
                raise ZooError(f"{cfg.split_file}: lists every image of {root}; none is left for training")
        self.cache = ImageCache(cfg.cache_mb)
        self.split = split  # _readable checks evaluation images against the metrics' smallest size
        self.negatives: dict[str, int] = {}
        self.ids = [item for item in ids if self._readable(item, cfg.negative_values)]
        if not self.ids:
            raise ZooError(f"{root}: none of the {len(ids)} {split} images could be read (see the lines above)")
        super().__init__(cfg, split, cfg.train_length if split == "train" else len(self.ids))

    def locate(self, cfg: DataConfig) -> tuple[str | None, str]:
        """(folder of the images, the config key it comes from)."""
        return cfg.root, "data.root"

    def split_config(self, cfg: DataConfig) -> DataConfig:
        return cfg

    def _readable(self, item: str, policy: str) -> bool:
        try:
            self._load(item, policy)
        except ZooError as exc:
            log.warning("skipping %s", exc)
            return False
        return True

    def _load(self, item: str, policy: str) -> np.ndarray:
        path = self.paths[item]

        def load() -> tuple[np.ndarray]:
            image, count = read_hdr_counted(path, policy)
            if self.split == "eval" and min(image.shape[:2]) < MIN_SIDE:
                raise ZooError(
                    f"{path}: image is {image.shape[1]}x{image.shape[0]}; evaluation images need at least "
                    f"{MIN_SIDE}x{MIN_SIDE} pixels (one SSIM window)"
                )
            self.negatives[item] = count
            return (image,)

        return self.cache.get(str(path), load)[0]

    def item_id(self, index: int) -> str:
        return self.ids[index % len(self.ids)]

    def read(self, item: str) -> np.ndarray:
        return self._load(item, self.cfg.negative_values)

    def scene(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        item = self.item_id(index)
        image = self.read(item)
        height, width = image.shape[:2]
        info: dict = {
            "file": str(self.paths[item]),
            "negative_values": self.negatives[item],
            "negative_policy": self.cfg.negative_values,
        }
        if self.split == "eval":
            top, left, h, w = centre_crop_box(height, width, self.cfg.eval_height, self.cfg.eval_width)
            info["crop"] = [top, left, h, w]
            return np.ascontiguousarray(image[top : top + h, left : left + w]), info
        size = self.cfg.patch_size
        scale = float(rng.uniform(self.cfg.train_scale_min, self.cfg.train_scale_max))
        side = min(max(1, round(size / scale)), height, width)
        top = int(rng.integers(height - side + 1))
        left = int(rng.integers(width - side + 1))
        info.update(crop=[top, left, side, side], scale=size / side)
        return resize_area(np.ascontiguousarray(image[top : top + side, left : left + side]), size), info
