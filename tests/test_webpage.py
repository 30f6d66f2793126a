"""The HDR results page in a real headless Chromium: load it, move the exposure slider and switch the tone map, take
screenshots, check that the pictures changed (and the tables did not)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "MPLBACKEND": "Agg"}
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page")
    zoo = [sys.executable, "-m", "zoo.cli"]
    proc = subprocess.run(
        [
            *zoo,
            "eval",
            "-m",
            "model=identity,landis",
            "data=synthetic",
            "data.eval_count=2",
            f"results_dir={out}/runs",
            f"hydra.sweep.dir={out}/hydra",
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run(
        [*zoo, "report", "--runs", str(out / "runs"), "--out", str(out / "report"), "--no-plots"],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "report" / "index.html"


def test_the_page_is_self_contained(page):
    text = page.read_text()
    assert '<canvas class="hdr"' in text and text.count("data:image/png;base64,") == 2 * 4  # 2 images × 4 panels
    assert "http://" not in text and "https://" not in text and 'src="runs/' not in text  # nothing to fetch


def screenshot(page: Path, fragment: str, path: Path) -> np.ndarray:
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1000,1100",
        "--virtual-time-budget=5000",
        f"--screenshot={path}",
        f"file://{page}#{fragment}",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and path.is_file(), proc.stderr[-2000:]
    return cv2.imread(str(path)).astype(np.float32)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium here (make test installs Debian's chromium where apt can)")
def test_moving_the_slider_and_switching_the_tone_map_change_the_pictures(page, tmp_path):
    """The fragment sets the slider (or the switch) before the page's own render runs, the code path of the input
    event; Chromium's --virtual-time-budget lets the decoding finish before the screenshot."""
    base = screenshot(page, "ev=0", tmp_path / "base.png")
    brighter = screenshot(page, "ev=4", tmp_path / "brighter.png")
    gamma = screenshot(page, "ev=0&tonemap=gamma", tmp_path / "gamma.png")
    again = screenshot(page, "ev=0", tmp_path / "again.png")
    gallery = slice(720, None)  # below the two tables: the canvases
    assert np.abs(again - base).max() == 0  # deterministic rendering
    assert np.abs(brighter[gallery] - base[gallery]).mean() > 5 and brighter[gallery].mean() > base[gallery].mean()
    assert np.abs(gamma[gallery] - base[gallery]).mean() > 2
    assert np.abs(brighter[250:450] - base[250:450]).max() == 0  # the NTIRE table does not move
