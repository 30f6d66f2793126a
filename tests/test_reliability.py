"""A sweep survives jobs that die: a real SIGKILL of a job's process mid-training under the joblib launcher (what the
kernel's OOM killer sends), and a job that really runs out of memory under an address-space limit
(``resource.setrlimit``). The other jobs finish with their rows; the killed job leaves a ``failed`` row naming the
signal and its checkpoint; rerunning the sweep resumes it to the very weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "HYDRA_FULL_ERROR": "0"}
JOB = [
    "model=hdrunet",
    "train=smoke",
    "train.steps=24",
    "train.checkpoint_every=4",
    "train.batch_size=2",
    "train.threads=1",
    "train.progress=false",
    "train.bn_recalibration_batches=0",
    "data.patch_size=32",
    "data.eval_count=1",
    "data.eval_height=32",
    "data.eval_width=48",
]


def sweep_command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "zoo.cli",
        "run",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *JOB,
        *extra,
        f"results_dir={out}/runs",
        f"checkpoint_dir={out}/ck",
        f"hydra.sweep.dir={out}/sweep",
    ]


def rows_by_seed(out: Path) -> dict[int, dict]:
    return {row["seed"]: row for row in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}


def job_processes() -> dict[int, Path]:
    """pid → job spec of every running ``python -m zoo.job SPEC``."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"zoo.job" in argv and len(argv) > argv.index(b"zoo.job") + 1:
            found[int(proc.name)] = Path(argv[argv.index(b"zoo.job") + 1].decode())
    return found


def run_id_of(spec: Path) -> str:
    """The run id of the job whose composed config is ``spec`` (what names its checkpoint folder)."""
    from omegaconf import OmegaConf

    from zoo import results
    from zoo.config import RunConfig
    from zoo.run import config_dict

    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.load(spec)))
    return results.run_id(config_dict(cfg))


def kill_when_checkpointed(sweep: subprocess.Popen, out: Path, seed: int, timeout: float = 300) -> None:
    """SIGKILL the job process of ``seed`` once it has written a resume checkpoint (mid-training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sweep.poll() is None:
        for pid, spec in job_processes().items():
            if spec.is_file() and f"seed: {seed}\n" in spec.read_text():
                if (out / "ck" / run_id_of(spec) / "last.pt").is_file():
                    os.kill(pid, signal.SIGKILL)
                    return
        time.sleep(0.05)
    pytest.fail(f"job seed={seed} wrote no checkpoint before the sweep ended")


def test_a_sweep_survives_a_sigkilled_job_and_resumes_it_exactly(tmp_path):
    out = tmp_path / "killed"
    sweep = subprocess.Popen(
        sweep_command(out, "seed=0,1"),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    kill_when_checkpointed(sweep, out, seed=1)
    log, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, log[-3000:]
    rows = rows_by_seed(out)
    assert rows[0]["status"] == "ok"  # the other job finished
    assert rows[1]["status"] == "failed" and "killed by SIGKILL (signal 9)" in rows[1]["error"], rows[1]
    checkpoint = out / "ck" / rows[1]["run_id"] / "last.pt"
    assert checkpoint.is_file() and not (checkpoint.parent / "model.pt").exists()

    rerun = subprocess.run(
        sweep_command(out, "seed=0,1"), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming run {rows[1]['run_id']} at step" in rerun.stdout + rerun.stderr
    resumed = rows_by_seed(out)[1]
    assert resumed["status"] == "ok" and resumed["steps"] == 24

    straight = tmp_path / "straight"  # the same job, never interrupted
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo.cli",
            "run",
            *JOB,
            "seed=1",
            f"results_dir={straight}/runs",
            f"checkpoint_dir={straight}/ck",
            f"hydra.run.dir={straight}/run",
        ],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    reference = rows_by_seed(straight)[1]
    assert reference["run_id"] == resumed["run_id"]
    for key in ("psnr_l_ntire", "psnr_mu_ntire", "pu21_psnr_rgb"):
        assert resumed[key] == reference[key], key
    a = torch.load(resumed["weights"], weights_only=True)["state_dict"]
    b = torch.load(reference["weights"], weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def _limit_address_space() -> None:
    limit = 6 << 30  # 6 GiB: the interpreter, torch and a small job fit; a 4096-px training batch does not
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.slow  # ~90 s on 2 cores: two real training jobs under an address-space limit
def test_a_job_that_runs_out_of_memory_under_a_real_limit_fails_alone(tmp_path):
    out = tmp_path / "oom"
    cases = tmp_path / "conf" / "case"
    cases.mkdir(parents=True)
    (cases / "small.yaml").write_text("# @package _global_\nseed: 0\n")
    # 4096 features instead of 64: ~18 GB of convolution weights, allocated for real, against the 6 GiB limit
    (cases / "huge.yaml").write_text("# @package _global_\nseed: 1\nmodel: {args: {nf: 4096}}\n")
    command = sweep_command(out, "+case=small,huge", f"hydra.searchpath=[file://{tmp_path}/conf]")
    proc = subprocess.run(
        command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600, preexec_fn=_limit_address_space
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_by_seed(out)
    assert rows[0]["status"] == "ok", rows[0].get("error")
    assert rows[1]["status"] == "failed" and "memory" in rows[1]["error"].lower(), rows[1]["error"]


WRITER = """
import sys
from zoo import results
row = {"run_id": "same", "status": "ok", "padding": sys.argv[2] * 400_000}
for _ in range(40):
    results.write_row(sys.argv[1], row)
"""


def test_concurrent_row_writers_never_expose_a_partial_row(tmp_path):
    """Two processes rewrite the same 800 kB row while this one reads it: every read parses, whoever wrote last. A
    writer that wrote in place (not temp + rename) is caught here: readers see truncated JSON."""
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), letter], env=ENV) for letter in "ab"]
    path, reads = tmp_path / "same.json", 0
    while any(w.poll() is None for w in writers):
        if path.is_file():
            row = json.loads(path.read_text())  # raises on a partial file
            assert row["padding"] in ("a" * 400_000, "b" * 400_000)
            reads += 1
    assert all(w.returncode == 0 for w in writers) and reads > 10
    assert [p.name for p in tmp_path.iterdir()] == ["same.json"]  # no temporary file left
