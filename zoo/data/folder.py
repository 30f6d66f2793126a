"""The folder source: the user's own linear HDR images (.exr / .hdr, any scale) degraded on the fly by the camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.common import CameraDataset, ImageCache, centre_crop_box, choose, resize_area, split_ids, warn_overlap
from zoo.data.config import DataConfig
from zoo.errors import ZooError
from zoo.io import HDR_SUFFIXES, read_hdr_image


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
    ``eval_width``) with the evaluation camera seeded by its id. Values must be finite and ≥ 0; any scale.
    """

    source = "folder"

    def __init__(self, cfg: DataConfig, split: str):
        if split == "eval" and cfg.eval_root:
            self.paths = list_hdr_files(cfg.eval_root, "data.eval_root")
            self.ids = choose(list(self.paths), cfg.eval_count, cfg.seed, self.source)
        else:
            self.paths = list_hdr_files(cfg.root)
            train, held = split_ids(list(self.paths), cfg, self.source)
            self.ids = train if split == "train" else held
            if split == "train":
                warn_overlap(train, held, cfg.root)
            if not self.ids:
                raise ZooError(f"{cfg.split_file}: lists every image of {cfg.root}; none is left for training")
        super().__init__(cfg, split, cfg.train_length if split == "train" else len(self.ids))
        self.cache = ImageCache(cfg.cache_mb)

    def item_id(self, index: int) -> str:
        return self.ids[index % len(self.ids)]

    def read(self, item: str) -> np.ndarray:
        path = self.paths[item]
        return self.cache.get(str(path), lambda: (read_hdr_image(path),))[0]

    def scene(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        item = self.item_id(index)
        image = self.read(item)
        height, width = image.shape[:2]
        info: dict = {"file": str(self.paths[item])}
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
