"""ColorVideoVDP through the zoo (zoo/cvvdp.py): the torchvision stand-in, and the metric's basic behaviour."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from zoo.cvvdp import GaussianBlur
from zoo.errors import ZooError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pycvvdp") is None,
    reason="cvvdp is not installed (make install installs it; see zoo/cvvdp.py)",
)


def _scene(height: int = 96, width: int = 160) -> np.ndarray:
    """A smooth linear HDR image with a bright highlight (peak 8× the mean level)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.2 + 0.3 * (np.sin(x / 9.0) * np.cos(y / 13.0) + 1)
    image = np.stack([base, base * 0.8 + 0.1, base * 0.6 + 0.2], axis=2)
    image += 8.0 * np.exp(-((x - 100) ** 2 + (y - 40) ** 2) / 50.0)[..., None]
    return image.astype(np.float32)


@pytest.mark.parametrize("kernel_size, sigma", [(13, 3.0), (33, 8.0), (5, 0.7)])
def test_the_gaussian_blur_stand_in_matches_scipy(kernel_size, sigma):
    image = np.random.default_rng(0).random((2, 3, 40, 50)).astype(np.float64)
    ours = GaussianBlur(kernel_size, sigma)(torch.from_numpy(image).float()).double().numpy()
    radius = kernel_size // 2
    theirs = ndimage.gaussian_filter(image, sigma=(0, 0, sigma, sigma), mode="mirror", truncate=radius / sigma)
    assert ours.shape == image.shape
    assert np.abs(ours - theirs).max() < 1e-6


def test_the_stand_in_is_seen_by_cvvdp_only():
    from zoo.cvvdp import load_cvvdp

    load_cvvdp()
    assert "torchvision" not in sys.modules or hasattr(sys.modules["torchvision"], "__file__")


def test_identical_images_score_10_jod():
    from zoo.cvvdp import cvvdp_jod

    scene = _scene()
    assert cvvdp_jod(scene, scene.copy()) == pytest.approx(10.0, abs=1e-4)


def test_jod_falls_monotonically_with_added_noise():
    from zoo.cvvdp import cvvdp_jod

    scene = _scene()
    noise = np.random.default_rng(1).standard_normal(scene.shape).astype(np.float32)
    scores = [cvvdp_jod(scene, np.clip(scene * (1 + level * noise), 0, None)) for level in (0.05, 0.1, 0.2, 0.4)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[0] < 10.0 and scores[-1] < 9.0, scores


def test_mismatched_images_are_a_one_line_error():
    from zoo.cvvdp import cvvdp_jod

    with pytest.raises(ZooError, match="expected two H×W×3 images of one size"):
        cvvdp_jod(_scene(), _scene(64, 64))


def test_zoo_eval_scores_cvvdp_on_request(tmp_path):
    """`zoo eval ... cvvdp=true` in a subprocess: every image and the row mean carry cvvdp_jod; the row id differs
    from the default evaluation's, so the two never overwrite each other."""
    import json
    import os
    import subprocess

    runs = tmp_path / "runs"
    common = ["model=identity", "data=synthetic", "data.eval_count=2", f"results_dir={runs}", "threads=1",
              f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}
    for extra in ([], ["cvvdp=true"]):
        done = subprocess.run([sys.executable, "-m", "zoo.cli", "eval", *common, *extra], capture_output=True,
                              text=True, env=env, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-1500:]
    rows = [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]
    assert len(rows) == 2
    scored = [r for r in rows if "cvvdp_jod" in r]
    assert len(scored) == 1 and len(scored[0]["images"]) == 2
    assert all(0 < im["cvvdp_jod"] <= 10 for im in scored[0]["images"])
    assert scored[0]["cvvdp_jod"] == pytest.approx(np.mean([im["cvvdp_jod"] for im in scored[0]["images"]]))
