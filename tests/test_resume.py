"""Exact resume: a run interrupted at any step and resumed ends with bit-identical weights, curve and metrics.

In-process: a toy two-stage GAN-like recipe that draws from the torch, numpy and python RNGs, resumed from every step.
Real CLI: `zoo run` killed with SIGKILL (or stopped by SIGTERM, as SLURM pre-emption does) after a checkpoint
appears, then the same command again, compared with an uninterrupted run. Bit-exactness on CPU needs the same thread
count in every process, so every command sets train.threads explicitly (1: on a loaded 2-core machine, 2 OpenMP threads
per process are ~10x slower than 1).
"""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.recipe import Objective, Recipe, Stage
from zoo.train import (
    PREEMPTED_EXIT_CODE,
    Preempted,
    fit,
    read_resume_state,
    rng_state,
    seed_everything,
    stage_bounds,
    write_resume_state,
)

# ----------------------------------------------------------------------------------------------------------------------
# In-process: every interruption point of a recipe with two stages, two optimisers, an aux module, milestones, RNG use


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))

    def forward(self, x):
        return self.body(x).mean(dim=(1, 2, 3))


@dataclasses.dataclass
class ToyShared:
    fake: torch.Tensor | None = None


def generator_loss(step, adversarial_term: bool):
    nets, batch = step.nets, step.batch
    out = nets["model"](batch["ldr"])
    step.shared.fake = out.detach()
    l1 = (out - batch["target"]).abs().mean() * (1 + 0.01 * np.random.rand()) * (1 + 0.01 * random.random())
    adversarial = -nets["critic"](out).mean() if adversarial_term else out.new_zeros(())
    loss = l1 + 0.1 * adversarial
    return loss, {"l1": float(l1.detach()), "adversarial": float(adversarial.detach())}


def critic_loss(step):
    fake = step.shared.fake + 0.05 * torch.randn_like(step.shared.fake)
    critic = step.nets["critic"]
    loss = torch.relu(1 - critic(step.batch["target"])).mean() + torch.relu(1 + critic(fake)).mean()
    return loss, {}


def toy_recipe() -> Recipe:
    gen = partial(generator_loss, adversarial_term=False)
    warmup = Stage("warmup", (Objective("gen", ("model",), gen, lr=1e-2, writes=("fake",)),), fraction=0.4)
    gen_gan = partial(generator_loss, adversarial_term=True)
    gan = Stage(
        "gan",
        (
            Objective("gen", ("model",), gen_gan, lr=1e-2, writes=("fake",)),
            Objective("critic", ("critic",), critic_loss, lr=2e-2, betas=(0.5, 0.9), reads=("fake",)),
        ),
        fraction=0.6,
        milestones=(0.5,),
        gamma=0.5,
    )
    return Recipe(stages=(warmup, gan), aux_modules={"critic": Critic}, shared=ToyShared)


def toy_nets(init_seed: int) -> nn.ModuleDict:
    torch.manual_seed(init_seed)
    return nn.ModuleDict({"model": Generator(), "critic": Critic()})


def toy_data(n=12):
    g = torch.Generator().manual_seed(0)
    return [{"ldr": torch.rand(3, 8, 8, generator=g), "target": torch.rand(3, 8, 8, generator=g) * 2} for _ in range(n)]


STEPS = 7
FIT = dict(total_steps=STEPS, batch_size=2, seed=3, device=torch.device("cpu"), log_every=1)


def test_stage_boundary_and_milestone_fall_inside_the_toy_run():
    assert stage_bounds(toy_recipe().stages, STEPS) == [(0, 2), (2, 7)]  # resuming at 2 crosses the boundary


def test_resume_from_every_step_is_bit_exact(tmp_path):
    recipe, data = toy_recipe(), toy_data()
    seed_everything(0)
    nets = toy_nets(0)
    saved = []

    def save(payload):
        saved.append(write_resume_state(tmp_path / f"{payload['step']}.pt", payload))

    state = fit(nets, recipe, data, **FIT, checkpoint_every=1, save_checkpoint=save)
    assert [p.name for p in saved] == [f"{k}.pt" for k in range(1, STEPS + 1)]
    reference = {k: v.clone() for k, v in nets.state_dict().items()}
    lrs = [h["lr"] for h in state.history]
    assert lrs[0] == lrs[2] == 1e-2 and lrs[-1] == 5e-3  # the scheduler's milestone is inside the run

    for k in range(1, STEPS):
        seed_everything(1234)  # a fresh process: other RNG states and other initial weights until the resume
        fresh = toy_nets(99)
        resumed = fit(fresh, recipe, data, **FIT, resume=read_resume_state(tmp_path / f"{k}.pt", STEPS))
        for name, value in fresh.state_dict().items():
            assert torch.equal(value, reference[name]), f"resumed at step {k}: {name} differs"
        assert resumed.history == state.history and resumed.step == STEPS

    # the RNG states in the checkpoint matter: resuming with other RNG states gives other weights
    payload = read_resume_state(tmp_path / "3.pt", STEPS)
    seed_everything(1234)
    payload["rng"] = [rng_state()]
    fresh = toy_nets(99)
    fit(fresh, recipe, data, **FIT, resume=payload)
    assert not all(torch.equal(v, reference[k]) for k, v in fresh.state_dict().items())


def test_resume_state_is_checked(tmp_path):
    seed_everything(0)
    nets = toy_nets(0)
    fit(
        nets,
        toy_recipe(),
        toy_data(),
        **FIT,
        checkpoint_every=3,
        save_checkpoint=lambda p: write_resume_state(tmp_path / "last.pt", p),
    )
    with pytest.raises(ZooError, match="checkpoint of a 7-step run, but train.steps=9"):
        read_resume_state(tmp_path / "last.pt", 9)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ZooError, match="bad.pt: unreadable resume checkpoint"):
        read_resume_state(tmp_path / "bad.pt", STEPS)


def _signal_at_step(step: int, sig: int, recipe: Recipe) -> Recipe:
    """The recipe, but its first stage's first objective sends ``sig`` to this process while it computes step ``step``
    (1-based, inside the first stage)."""
    calls = {"n": 0}
    first = recipe.stages[0].objectives[0]

    def loss(context):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), sig)
        return first.loss(context)

    stage = dataclasses.replace(recipe.stages[0], objectives=(dataclasses.replace(first, loss=loss),))
    return dataclasses.replace(recipe, stages=(stage, *recipe.stages[1:]))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
def test_signal_checkpoints_the_step_it_arrives_in_and_stops(sig):
    before = signal.getsignal(sig)
    seed_everything(0)
    saved = []
    with pytest.raises(Preempted) as info:
        fit(
            toy_nets(0),
            _signal_at_step(2, sig, toy_recipe()),
            toy_data(),
            **FIT,
            checkpoint_every=5,
            save_checkpoint=saved.append,
        )
    assert info.value.code == PREEMPTED_EXIT_CODE
    assert f"pre-empted by {signal.Signals(sig).name} after step 2; checkpoint written" in str(info.value)
    assert [p["step"] for p in saved] == [2]
    assert signal.getsignal(sig) is before  # the loop's handlers are gone


def test_signal_is_handed_on_to_the_handler_installed_before():
    """As submitit's: it runs after the checkpoint (and would requeue the job and exit)."""
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        seed_everything(0)
        saved = []
        with pytest.raises(Preempted):
            fit(
                toy_nets(0),
                _signal_at_step(1, signal.SIGUSR2, toy_recipe()),
                toy_data(),
                **FIT,
                save_checkpoint=saved.append,
            )
        assert seen == [signal.SIGUSR2] and [p["step"] for p in saved] == [1]
    finally:
        signal.signal(signal.SIGUSR2, previous)


# ----------------------------------------------------------------------------------------------------------------------
# Real CLI: SIGKILL and SIGTERM, then the same command again

ZOO = [sys.executable, "-m", "zoo.cli", "run"]
TINY = [
    "train.batch_size=2",
    "train.log_every=1",
    "train.threads=1",
    "train.progress=false",
    "data.patch_size=32",
    "data.eval_count=1",
    "data.eval_height=32",
    "data.eval_width=48",
]
ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "HYDRA_FULL_ERROR": "0"}


def run_args(model: str, steps: int, every: int, out: Path) -> list[str]:
    return [
        *ZOO,
        f"model={model}",
        f"train.steps={steps}",
        f"train.checkpoint_every={every}",
        *TINY,
        f"results_dir={out}/runs",
        f"checkpoint_dir={out}/ck",
        f"hydra.run.dir={out}/hydra",
    ]


def finished(out: Path) -> tuple[dict, dict]:
    """(final weights, row) of the one run under ``out``."""
    (row_file,) = (out / "runs").glob("*.json")
    row = json.loads(row_file.read_text())
    weights = torch.load(out / "ck" / row["run_id"] / "model.pt", weights_only=True)
    return weights["state_dict"], row


def start_and_interrupt(args: list[str], out: Path, sig: int, delay: float) -> tuple[int, str, dict]:
    """Start the run, wait for its first checkpoint, wait ``delay`` more seconds, send ``sig``; returns the exit
    status, the output (stdout and stderr) and the checkpoint it left."""
    proc = subprocess.Popen(args, cwd=out, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not list((out / "ck").glob("*/last.pt")):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=240)
    (last,) = (out / "ck").glob("*/last.pt")
    return proc.returncode, output, torch.load(last, weights_only=True)


def assert_same_run(ref: tuple[dict, dict], got: tuple[dict, dict]) -> None:
    (ref_weights, ref_row), (weights, row) = ref, got
    assert row["status"] == "ok" and row["run_id"] == ref_row["run_id"]
    assert weights.keys() == ref_weights.keys()
    for name, value in ref_weights.items():
        assert torch.equal(weights[name], value), name
    assert [h["step"] for h in row["history"]] == list(range(1, row["steps"] + 1))  # no duplicated entries
    assert row["history"] == ref_row["history"]
    metrics = [k for k in ref_row if k.startswith(("psnr", "ssim", "pu21"))]
    assert metrics and all(row[k] == ref_row[k] for k in metrics)
    untimed = [[{k: v for k, v in im.items() if k != "seconds"} for im in r["images"]] for r in (row, ref_row)]
    assert untimed[0] == untimed[1]  # per-image metrics and degradations


HDRUNET_STEPS = 10  # a step takes >= 0.1 s: the interruptions below land well before the end


@pytest.fixture(scope="module")
def hdrunet_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    proc = subprocess.run(
        run_args("hdrunet", HDRUNET_STEPS, 2, out), cwd=out, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return finished(out)


def test_sigkill_at_a_random_step_then_rerun_equals_uninterrupted_run(tmp_path, hdrunet_reference):
    args = run_args("hdrunet", HDRUNET_STEPS, 2, tmp_path)
    code, _, checkpoint = start_and_interrupt(args, tmp_path, signal.SIGKILL, delay=random.uniform(0, 0.3))
    assert code == -signal.SIGKILL
    assert not list((tmp_path / "runs").glob("*.json"))  # killed: no row at all
    assert 2 <= checkpoint["step"] < HDRUNET_STEPS and checkpoint["step"] % 2 == 0
    again = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = f"resuming run {hdrunet_reference[1]['run_id']} at step {checkpoint['step']} of {HDRUNET_STEPS}"
    assert resumed in again.stdout + again.stderr  # Hydra sends log lines to stdout
    assert_same_run(hdrunet_reference, finished(tmp_path))
    assert not list((tmp_path / "ck").glob("*/last.pt"))  # removed once the row is written


def test_sigterm_checkpoints_the_current_step_and_exits_75_then_resumes(tmp_path, hdrunet_reference):
    # checkpoint_every is not semantic (same run id): the periodic checkpoint at step 3 starts the clock, SIGTERM
    # then lands in a later step, which is checkpointed on the way out.
    args = run_args("hdrunet", HDRUNET_STEPS, 3, tmp_path)
    code, output, checkpoint = start_and_interrupt(args, tmp_path, signal.SIGTERM, delay=0.0)
    assert code == PREEMPTED_EXIT_CODE == 75, output[-3000:]
    step = checkpoint["step"]
    assert f"pre-empted by SIGTERM after step {step}; checkpoint written" in output
    assert 3 <= step < HDRUNET_STEPS
    assert not list((tmp_path / "runs").glob("*.json"))  # pre-empted is not failed: no row
    again = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"at step {step} of {HDRUNET_STEPS}" in again.stdout + again.stderr
    got = finished(tmp_path)
    assert_same_run(hdrunet_reference, got)
    assert got[1]["train_seconds"] > checkpoint["train_seconds"] > 0  # time before the interruption is counted


@pytest.mark.slow
def test_twostage_gan_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    """Three optimisers and a discriminator (aux module) through the real CLI (~2 min on 2 cores)."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    ref = subprocess.run(
        run_args("twostage", 4, 1, tmp_path / "a"),
        cwd=tmp_path / "a",
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    args = run_args("twostage", 4, 1, tmp_path / "b")
    code, _, checkpoint = start_and_interrupt(args, tmp_path / "b", signal.SIGKILL, delay=0.0)
    assert code == -signal.SIGKILL and checkpoint["step"] < 4
    again = subprocess.run(args, cwd=tmp_path / "b", env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same_run(finished(tmp_path / "a"), finished(tmp_path / "b"))


def _task_pids(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (the submitit task of this test's sweep folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_submitit_local_requeue_on_sigusr2_resumes_exactly(tmp_path, hdrunet_reference):
    """The SLURM pre-emption path, run locally: submitit's USR2 reaches the run, which checkpoints the step, then hands
    the signal to submitit's handler, which requeues the job (locally: exit 144, the controller restarts the task);
    the restarted task resumes from the checkpoint. Same result as the uninterrupted run (~1 min)."""
    sweep = tmp_path / "sweep"
    args = run_args("hdrunet", HDRUNET_STEPS, 2, tmp_path)
    args = [*args[: len(ZOO)], "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", *args[len(ZOO) :]]
    proc = subprocess.Popen(args, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "ck").glob("*/last.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.02)
    (task,) = _task_pids(f"submitit.core._submit {sweep}")
    os.kill(task, signal.SIGUSR2)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    log = "\n".join(p.read_text() for p in sweep.glob(".submitit/*/*_0_log.out"))
    assert "pre-empted by SIGUSR2 after step" in log and "Requeued job" in log and "resuming run" in log, log[-3000:]
    assert_same_run(hdrunet_reference, finished(tmp_path))
