"""The synthetic source: procedural HDR scenes (``zoo.data.scenes``) photographed by the simulated camera."""

from __future__ import annotations

import numpy as np

from zoo.data import scenes
from zoo.data.common import CameraDataset
from zoo.data.config import DataConfig
from zoo.errors import ZooError

TRAIN_ASPECT = 1.5  # canvas width/height of training scenes
HIGHLIGHT_AIM = 0.5  # share of training windows centred near a light source (the rest fall anywhere)


class SyntheticDataset(CameraDataset):
    """Procedural scenes through the simulated camera; nothing to download.

    train: ``train_length`` patches of ``patch_size``², rendered directly at patch resolution: a random window
    (1/6 to 2/3 of the canvas height, half of them aimed at a light source) of a fresh scene, so a patch costs only its
    own pixels. eval: ``eval_count`` whole scenes of ``eval_height``×``eval_width`` (128×192 by default) with the fixed
    evaluation camera; item i is the same for any eval_count.
    """

    source = "synthetic"

    def __init__(self, cfg: DataConfig, split: str):
        length = cfg.train_length if split == "train" else cfg.eval_count
        if length <= 0:
            raise ZooError(f"data.eval_count: the synthetic eval split needs at least one image, got {length}")
        super().__init__(cfg, split, length)
        self.eval_size = (cfg.eval_height or 128, cfg.eval_width or 192)

    def item_id(self, index: int) -> str:
        if self.split == "train":
            return f"synthetic-train-s{self.cfg.seed}-e{self.epoch}-{index:06d}"
        h, w = self.eval_size
        return f"synthetic-s{self.cfg.seed}-{h}x{w}-{index:04d}"

    def scene(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        if self.split == "eval":
            h, w = self.eval_size
            return scenes.render(scenes.draw_scene(rng, aspect=w / h), h, w), {"window": [0.0, 0.0, 1.0]}
        scene = scenes.draw_scene(rng, aspect=TRAIN_ASPECT)
        extent = float(rng.uniform(1 / 6, 2 / 3))
        aim = rng.random() < HIGHLIGHT_AIM and scene.anchors
        if aim:
            cx, cy = scene.anchors[int(rng.integers(len(scene.anchors)))]
            x0 = cx - extent * float(rng.uniform(0.2, 0.8))
            y0 = cy - extent * float(rng.uniform(0.2, 0.8))
        else:
            x0 = float(rng.uniform(0.0, TRAIN_ASPECT - extent))
            y0 = float(rng.uniform(0.0, 1.0 - extent))
        size = self.cfg.patch_size
        return scenes.render(scene, size, size, (x0, y0, extent)), {"window": [x0, y0, extent]}
