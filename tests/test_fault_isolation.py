"""Failure is boring: a sweep whose jobs fail in different ways still finishes the others and records every failure;
non-finite losses stop (or skip) with the step and term named; a checkpoint never holds NaN; a run whose evaluation
did not complete writes no metrics.

The sweep is one real `zoo run -m` process; its jobs are cases of a config group in a temporary search path
(``+case=...``), so each job can change several keys.
"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.recipe import Objective, Recipe, Stage
from zoo.train import first_nonfinite, fit, read_resume_state, seed_everything, write_resume_state

ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "HYDRA_FULL_ERROR": "0"}
TINY = [
    "model=hdrunet",
    "train.steps=3",
    "train.batch_size=2",
    "train.log_every=1",
    "train.threads=1",
    "train.progress=false",
    "data.eval_count=1",
    "data.eval_height=32",
    "data.eval_width=48",
]
METRICS = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb")

# Each case: (config of the job, what its row's error must say). The good job runs last: the failures before it must
# not stop the sweep.
CASES = {
    "unknown_model": ({"model": {"name": "nosuch"}}, "unknown model 'nosuch'"),
    "bad_recipe_option": ({"model": {"recipe": {"loss": "l7"}}}, "hdrunet: unknown loss 'l7'"),
    "out_of_memory": ({"data": {"patch_size": 1_000_000}}, "MemoryError: Unable to allocate"),  # 10.9 TiB: refused
    "nan_stop": (
        {"train": {"lr_scale": 1e30, "checkpoint_every": 1}},
        "non-finite loss at step 2/3 (stage 'main'), objective 'model': model/tanh_l1=nan",
    ),
    "nan_skip": (
        {"train": {"lr_scale": 1e30, "nan_policy": "skip"}},
        "evaluation incomplete: 1 of 1 images gave NaN metrics",
    ),
    "good": ({}, ""),
}


def case_yaml(name: str, overrides: dict) -> str:
    """A config-group file that sets ``tag`` and the job's keys (JSON is YAML); small patches unless overridden."""
    body = {"tag": name, **overrides, "data": {"patch_size": 32, **overrides.get("data", {})}}
    return "# @package _global_\n" + json.dumps(body) + "\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    (out / "conf" / "case").mkdir(parents=True)
    for name, (overrides, _) in CASES.items():
        (out / "conf" / "case" / f"{name}.yaml").write_text(case_yaml(name, overrides))
    args = [
        sys.executable,
        "-m",
        "zoo.cli",
        "run",
        "-m",
        f"+case={','.join(CASES)}",
        *TINY,
        f"hydra.searchpath=[file://{out}/conf]",
        f"results_dir={out}/runs",
        f"checkpoint_dir={out}/ck",
        f"hydra.sweep.dir={out}/sweep",
    ]
    proc = subprocess.run(args, cwd=out, env=ENV, capture_output=True, text=True, timeout=600)
    rows = {row["tag"]: row for row in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    return proc, rows, out


def test_sweep_finishes_every_job_and_exits_0(sweep):
    proc, rows, _ = sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(rows) == sorted(CASES)
    good = rows["good"]
    assert good["status"] == "ok" and good["error"] == "" and good["steps"] == 3
    assert all(math.isfinite(good[m]) for m in METRICS)


@pytest.mark.parametrize("case", [c for c in CASES if c != "good"])
def test_failed_job_is_a_failed_row_with_its_error_and_no_metrics(sweep, case):
    proc, rows, _ = sweep
    row = rows[case]
    assert row["status"] == "failed"
    assert CASES[case][1] in row["error"] and "\n" not in row["error"]
    assert not any(m in row for m in METRICS) and "images" not in row  # nothing from an incomplete evaluation
    assert row["run_id"] and row["config"]["model"]["name"] and row["wall_seconds"] > 0
    assert f"run failed: {row['error'][:40]}" in proc.stdout + proc.stderr  # logged as it happened


def test_nan_stop_keeps_the_last_good_checkpoint(sweep):
    _, rows, out = sweep
    checkpoint = read_resume_state(out / "ck" / rows["nan_stop"]["run_id"] / "last.pt", total_steps=3)
    assert checkpoint["step"] == 1  # written after step 1; step 2 diverged
    assert all(torch.isfinite(v).all() for v in checkpoint["nets"].values() if v.is_floating_point())
    assert not (out / "ck" / rows["nan_stop"]["run_id"] / "model.pt").exists()


def test_nan_skip_drops_the_steps_and_names_them(sweep):
    proc, _, _ = sweep
    log = proc.stdout + proc.stderr
    for step in (2, 3):
        assert f"skipping non-finite loss at step {step}/3 (stage 'main'), objective 'model': model/tanh_l1=nan" in log


def test_config_error_in_a_sweep_stops_it_before_any_job(tmp_path):
    args = [
        sys.executable,
        "-m",
        "zoo.cli",
        "run",
        "-m",
        "train.steps=2,two",
        *TINY[2:],
        f"results_dir={tmp_path}/runs",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    proc = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "train.steps" in proc.stderr and "two" in proc.stderr
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------------------------------------------------
# In-process: a corrupt training sample in a model with BatchNorm


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _nets():
    torch.manual_seed(0)
    return nn.ModuleDict({"model": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))})


def _l1(step):
    loss = (step.nets["model"](step.batch["ldr"]) - step.batch["target"]).abs().mean()
    return loss, {"l1": float(loss.detach())}


RECIPE = Recipe(stages=(Stage("main", (Objective("model", ("model",), _l1, lr=1e-2),)),))


class CorruptAt:
    """Samples; the one at ``bad_index`` (or every one) holds an inf pixel, as read from a corrupt file."""

    def __init__(self, bad_index, everywhere=False):
        self.bad_index, self.everywhere = bad_index, everywhere

    def __len__(self):
        return 1000

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        ldr = torch.rand(3, 6, 6, generator=g)
        if index == self.bad_index or self.everywhere:
            ldr[0, 2, 2] = math.inf
        return {"ldr": ldr, "target": torch.rand(3, 6, 6, generator=g)}


def _index_at(step, seed=0):
    """The dataset index batch_stream draws at 0-based ``step`` (batch size 1)."""
    from zoo.train import StepBatchSampler

    return next(iter(StepBatchSampler(1000, 1, seed, step, step + 1)))[0]


FIT = dict(total_steps=5, batch_size=1, seed=0, device=torch.device("cpu"), log_every=1, checkpoint_every=1)


def test_stop_names_step_and_term_and_keeps_the_previous_checkpoint(tmp_path, one_thread):
    seed_everything(0)
    saved = []
    message = r"non-finite loss at step 3/5 \(stage 'main'\), objective 'model': model/l1=nan"
    with pytest.raises(ZooError, match=message):
        fit(
            _nets(),
            RECIPE,
            CorruptAt(_index_at(2)),
            **FIT,
            save_checkpoint=lambda p: saved.append(write_resume_state(tmp_path / "last.pt", p)),
        )
    assert len(saved) == 2 and read_resume_state(tmp_path / "last.pt", 5)["step"] == 2


def test_skip_drops_the_step_and_restores_batchnorm_statistics(one_thread):
    seed_everything(0)
    nets = _nets()
    state = fit(nets, RECIPE, CorruptAt(_index_at(2)), **FIT, nan_policy="skip")
    assert state.step == 5 and state.skipped_steps == [3]
    assert [h["step"] for h in state.history] == [1, 2, 4, 5]
    assert first_nonfinite(nets) is None  # the bad forward pass had put inf into the running statistics


def test_a_finite_loss_with_a_nan_gradient_is_not_applied(one_thread):
    """sqrt at 0 has a finite value and an infinite derivative: the loss passes its check, the gradient must not."""
    from zoo.train import build_stage_optim, train_step

    def sqrt_at_zero(step):
        loss = (step.nets["model"][0].weight * 0).sqrt().sum()
        return loss, {"sqrt": float(loss.detach())}

    recipe = Recipe(stages=(Stage("main", (Objective("model", ("model",), sqrt_at_zero, lr=1e-2),)),))
    nets = _nets()
    before = [p.detach().clone() for p in nets.parameters()]
    optim = build_stage_optim(nets, recipe.stages[0], n_steps=5, lr_scale=1.0)
    batch = {"ldr": torch.rand(1, 3, 6, 6), "target": torch.rand(1, 3, 6, 6)}
    logs, problem = train_step(nets, recipe, recipe.stages[0], optim, batch, where="step 1/5")
    assert problem == "non-finite gradient at step 1/5, objective 'model' (loss 0)"
    assert logs == {} and all(torch.equal(a, b) for a, b in zip(nets.parameters(), before))


def test_skip_gives_up_when_training_diverged(one_thread):
    seed_everything(0)
    with pytest.raises(ZooError, match="3 steps in a row had non-finite values"):
        fit(
            _nets(),
            RECIPE,
            CorruptAt(-1, everywhere=True),
            **{**FIT, "total_steps": 10},
            nan_policy="skip",
            max_skips_in_a_row=3,
        )


def test_a_checkpoint_with_nan_weights_is_refused_and_the_good_one_stays(tmp_path, one_thread):
    """Weights corrupted in memory (here: by hand, after a good checkpoint) are never written over that checkpoint."""
    seed_everything(0)
    path = tmp_path / "last.pt"
    fit(
        _nets(),
        RECIPE,
        CorruptAt(-1),
        **{**FIT, "total_steps": 2},
        save_checkpoint=lambda p: write_resume_state(path, p),
    )
    good = path.read_bytes()
    payload = read_resume_state(path, 2)
    payload["total_steps"] = 4
    payload["nets"]["model.1.running_var"][0] = math.nan
    message = r"refusing to save a checkpoint after step 3: model.1.running_var is not finite"
    with pytest.raises(ZooError, match=message):
        fit(
            _nets(),
            RECIPE,
            CorruptAt(-1),
            **{**FIT, "total_steps": 4},
            resume=payload,
            nan_policy="skip",
            save_checkpoint=lambda p: write_resume_state(path, p),
        )
    assert path.read_bytes() == good
