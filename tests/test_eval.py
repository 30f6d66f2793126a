"""``zoo eval``: real Hydra launches in subprocesses on real EXR files (negative values included), rows keyed by the
weights' contents, the default shipped weights, the models × datasets matrix and its report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

import zoo
from zoo import io, pretrained
from zoo.data.real import scenes_dir
from zoo.weights import save_checkpoint


def zoo_cli(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo.cli", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory) -> Path:
    """Two real scenes cut to 64×96 around their brightest pixel, negative values (compression ringing) kept."""
    folder = tmp_path_factory.mktemp("real")
    for name in ("sky", "lab"):
        image = io.read_exr(scenes_dir() / f"{name}.exr")
        y, x = np.unravel_index(np.argmax(image.max(axis=2)), image.shape[:2])
        top, left = min(max(0, y - 32), 256 - 64), min(max(0, x - 48), 512 - 96)
        crop = image[top : top + 64, left : left + 96]
        if not (crop < 0).any():
            crop[0, 0, 0] = -0.01 * crop.max()
        io.write_exr(folder / f"{name}.exr", crop, half=False)
    return folder


def eval_rows(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]


def test_zoo_eval_scores_a_checkpoint_on_real_exrs_and_keys_rows_by_content(tmp_path, real_folder):
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / "w.pt", zoo.create_model("twostage"), step=7)
    results = tmp_path / "runs"
    common = [
        "model=twostage",
        "data=folder",
        f"data.root={real_folder}",
        "data.eval_count=0",
        f"results_dir={results}",
        "threads=2",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    proc = zoo_cli("eval", *common, f"model.weights={weights}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = eval_rows(results)
    assert row["status"] == "ok" and row["n_images"] == 2 and row["steps"] == 7 and row["weights_kind"] == "file"
    for key in ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb"):
        assert np.isfinite(row[key]), key
    assert all(im["degradation"]["negative_values"] > 0 for im in row["images"])
    assert row["weights_sha256"] == pretrained.sha256_of(weights)

    moved = tmp_path / "elsewhere.pt"
    shutil.copy(weights, moved)  # same contents at another path: the same row, not re-evaluated
    proc = zoo_cli("eval", *common, f"model.weights={moved}")
    assert proc.returncode == 0 and "already evaluated" in proc.stdout + proc.stderr
    assert len(eval_rows(results)) == 1

    torch.manual_seed(1)
    save_checkpoint(weights, zoo.create_model("twostage"), step=8)  # the file is replaced: a new row
    proc = zoo_cli("eval", *common, f"model.weights={weights}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second = sorted(eval_rows(results), key=lambda r: r["steps"])
    assert first["run_id"] != second["run_id"] and second["steps"] == 8
    assert first["psnr_mu_ntire"] != second["psnr_mu_ntire"]
    assert not list(results.glob("*.pt"))  # weights are read in place, never copied


def test_zoo_eval_matrix_and_its_report(tmp_path):
    results = tmp_path / "runs"
    proc = zoo_cli(
        "eval",
        "-m",
        "model=identity,landis",
        "data=synthetic,real",
        "data.eval_count=2",
        f"results_dir={results}",
        "threads=1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = eval_rows(results)
    assert sorted((r["model"], r["data"]) for r in rows) == [
        ("identity", "real"),
        ("identity", "synthetic"),
        ("landis", "real"),
        ("landis", "synthetic"),
    ]
    assert {r["n_images"] for r in rows if r["data"] == "real"} == {8}  # the fixed split, whatever eval_count says
    real = [im["degradation"] for r in rows if r["data"] == "real" for im in r["images"]]
    assert {d["negative_policy"] for d in real} == {"fill"} and sum(d["negative_values"] for d in real) > 0
    proc = zoo_cli("report", "--runs", results, "--out", tmp_path / "report", "--no-plots")
    assert proc.returncode == 0, proc.stderr[-2000:]
    tables = (tmp_path / "report" / "tables.md").read_text()
    assert "## eval-real" in tables and "## eval-synthetic" in tables


def test_default_tags_tell_clipping_levels_and_negative_policies_apart():
    from zoo.data import CameraConfig, DataConfig
    from zoo.eval_run import default_tag

    clip97 = CameraConfig(eval_clip_fraction=0.03)
    assert default_tag(DataConfig(name="real", negative_values="fill")) == "eval-real"
    assert default_tag(DataConfig(name="real", negative_values="clamp")) == "eval-real-clamp"
    assert default_tag(DataConfig(name="real", negative_values="fill", camera=clip97)) == "eval-real-clip_97"
    assert default_tag(DataConfig(name="real", negative_values="clamp", camera=clip97)) == "eval-real-clamp-clip_97"
    assert default_tag(DataConfig(name="folder", negative_values="clamp")) == "eval-folder"


def test_zoo_eval_errors_are_one_line(tmp_path):
    proc = zoo_cli(
        "eval",
        "model=hdrunet",
        f"model.weights={tmp_path / 'missing.pt'}",
        f"results_dir={tmp_path}",
        f"hydra.run.dir={tmp_path / 'h'}",
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: model.weights={tmp_path / 'missing.pt'}: no such weights file" in proc.stderr


@pytest.mark.parametrize("name", ["hdrunet", "twostage", "singlehdr"])
def test_zoo_eval_defaults_to_the_shipped_weights(tmp_path, name):
    proc = zoo_cli(
        "eval",
        f"model={name}",
        "data=synthetic",
        "data.eval_count=1",
        "data.eval_height=32",
        "data.eval_width=32",
        f"results_dir={tmp_path}",
        f"hydra.run.dir={tmp_path / 'h'}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = eval_rows(tmp_path)
    assert row["weights_kind"] == "pretrained" and row["weights_sha256"] == pretrained.card(name)["sha256"]
