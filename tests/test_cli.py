"""The `zoo` command as users run it: real subprocesses, real Hydra composition, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo import io

REPO = Path(__file__).resolve().parents[1]
ZOO = [sys.executable, "-m", "zoo.cli"]


def zoo_cmd(*args, cwd, timeout=300):
    env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([*ZOO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_run_smoke_writes_exactly_one_row(tmp_path):
    args = [
        "run",
        "model=hdrunet",
        "data=synthetic",
        "train=smoke",
        f"results_dir={tmp_path}/runs",
        f"checkpoint_dir={tmp_path}/ck",
        f"hydra.run.dir={tmp_path}/out",
        "data.eval_count=2",
    ]
    proc = zoo_cmd(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list((tmp_path / "runs").glob("*.json"))
    assert len(rows) == 1
    row = json.loads(rows[0].read_text())
    assert row["status"] == "ok" and row["model"] == "hdrunet" and row["steps"] == 8
    assert row["params"] == 1_651_494 and row["n_images"] == 2
    for key in ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb"):
        assert np.isfinite(row[key])
    assert row["git_commit"] and row["run_id"] == rows[0].stem
    assert len(row["images"]) == 2 and "clip_fraction" in row["images"][0]["degradation"]
    assert "psnr_mu_ntire" in proc.stdout  # the result table is printed
    # same command again: the finished run is skipped, still one row
    again = zoo_cmd(*args, cwd=tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


def test_misspelled_config_key_fails_at_composition(tmp_path):
    proc = zoo_cmd("run", "train.stepz=3", f"results_dir={tmp_path}/runs", cwd=tmp_path)
    assert proc.returncode != 0
    assert "stepz" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_model_is_one_line(tmp_path):
    (tmp_path / "conf").mkdir()
    proc = zoo_cmd(
        "run",
        "model=hdrunet",
        "model.name=nosuch",
        f"results_dir={tmp_path}/runs",
        f"hydra.run.dir={tmp_path}/out",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unknown model 'nosuch'" in errors[0] and "hdrunet" in errors[0]
    assert "Traceback" not in proc.stderr


def test_list():
    proc = zoo_cmd("list", cwd=REPO)
    assert proc.returncode == 0 and "hdrunet" in proc.stdout


def _ntire_folder(folder: Path, ids, seed=0, suffix=""):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for image_id in ids:
        io.write_ntire(folder / f"{image_id}{suffix}.png", (rng.random((12, 16, 3)) * 3).astype(np.float32))


def test_score_pairs_by_name_and_reports_missing(tmp_path):
    _ntire_folder(tmp_path / "ref", ["0001", "0002", "0003"], seed=0, suffix="_gt")
    _ntire_folder(tmp_path / "res", ["0001", "0003", "0009"], seed=1)
    # 0002 missing, 0009 extra: positional pairing would compare 0003's result with 0002's reference
    proc = zoo_cmd("score", str(tmp_path / "ref"), str(tmp_path / "res"), "--json", cwd=tmp_path)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["missing"] == ["0002"] and out["extra"] == ["0009"]
    assert sorted(out["per_image"]) == ["0001", "0003"]
    from zoo import metrics

    ref = io.read_ntire(tmp_path / "ref" / "0003_gt.png", tmp_path / "ref" / "0003_alignratio.npy")
    res = io.read_ntire(tmp_path / "res" / "0003.png")
    assert out["per_image"]["0003"]["psnr_mu_ntire"] == pytest.approx(metrics.psnr_mu(ref, res), abs=1e-9)
    assert "0002" in proc.stderr


def test_score_identical_folder_is_infinite_but_not_a_crash(tmp_path):
    _ntire_folder(tmp_path / "ref", ["0001"], suffix="_gt")
    proc = zoo_cmd("score", str(tmp_path / "ref"), str(tmp_path / "ref"), cwd=tmp_path)
    assert proc.returncode == 0 and "inf" in proc.stdout


def test_score_mismatched_sizes(tmp_path):
    _ntire_folder(tmp_path / "ref", ["0001"], suffix="_gt")
    (tmp_path / "res").mkdir()
    io.write_ntire(tmp_path / "res" / "0001.png", np.ones((5, 5, 3), np.float32))
    proc = zoo_cmd("score", str(tmp_path / "ref"), str(tmp_path / "res"), cwd=tmp_path)
    assert proc.returncode == 2 and "0001.png" in proc.stderr and "differs from the reference" in proc.stderr


def test_score_missing_folder(tmp_path):
    proc = zoo_cmd("score", str(tmp_path / "nope"), str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path / 'nope'}: no such folder"
