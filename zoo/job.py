"""Sweep jobs in processes of their own, so a job killed by a signal cannot take the sweep down.

Under Hydra's joblib launcher (``make sweep``, ``make results``) jobs run in loky worker processes; a worker killed by
SIGKILL or the kernel's OOM killer makes joblib raise ``TerminatedWorkerError`` in the parent, which aborts the whole
multirun, and the dead job writes no row. So in a multirun (every launcher but submitit, whose jobs are SLURM jobs of
their own) the Hydra task function only supervises: it saves the job's composed config (``zoo_job.yaml`` in the job's
folder), runs the job as ``python -m zoo.job zoo_job.yaml`` and waits.

- exit 0: the child wrote its row; exit 1 or 2: it failed and wrote a ``failed`` row (``zoo.run.run``);
- exit 75: pre-empted after a checkpoint (no row, as in a single run);
- killed by a signal (negative return code): the supervisor writes the ``failed`` row, naming the signal. The child's
  last checkpoint (``train.checkpoint_every``) is left in place, so rerunning the sweep resumes that job where it
  stopped and ends bit-for-bit where an uninterrupted run ends (``tests/test_reliability.py``).

Pre-emption and interrupt signals that reach the supervisor (SIGTERM, SIGUSR1, SIGUSR2, SIGINT) are forwarded to the
child, which checkpoints and stops as a single run does. ``hydra/launcher=...`` is chosen as before; nothing changes
for single runs or under torchrun.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.errors import ZooError

log = logging.getLogger(__name__)

SPEC_NAME = "zoo_job.yaml"
FORWARDED = ("SIGTERM", "SIGUSR1", "SIGUSR2", "SIGINT")


def isolated(launcher: DictConfig | None) -> bool:
    """Whether multirun jobs under ``launcher`` run in a process of their own (all but submitit's SLURM jobs)."""
    target = str((launcher or {}).get("_target_", ""))
    return "submitit" not in target


def run_isolated(cfg: DictConfig, job_dir: Path) -> dict[str, Any] | None:
    """Run the job of composed config ``cfg`` in a child process; its row, or None when it wrote none / failed."""
    from zoo import results
    from zoo.config import RunConfig
    from zoo.run import config_dict, record_failure

    run_cfg: RunConfig = OmegaConf.to_object(cfg)
    job_dir.mkdir(parents=True, exist_ok=True)
    spec = job_dir / SPEC_NAME
    OmegaConf.save(cfg, spec, resolve=True)
    tic = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "zoo.job", str(spec)])
    previous = {}
    for name in FORWARDED:
        sig = getattr(signal, name)
        previous[sig] = signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    rid = results.run_id(config_dict(run_cfg))
    row_path = results.row_path(run_cfg.results_dir, rid)
    if code < 0:
        name = signal.Signals(-code).name
        error = (
            f"job process killed by {name} (signal {-code}); its last checkpoint is kept: rerun the sweep to "
            "resume it"
        )
        log.error("run %s failed: %s", rid, error)
        record_failure(run_cfg, error, time.perf_counter() - tic)
        return None
    if code == 0 and row_path.is_file():
        return results.read_row(row_path)
    if code == 75:
        log.warning("run %s was pre-empted after a checkpoint; rerun the sweep to resume it", rid)
    return None


def main(argv: list[str]) -> int:
    """``python -m zoo.job SPEC``: run the job whose composed config is the YAML file SPEC."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    if len(argv) != 1:
        print("usage: python -m zoo.job ZOO_JOB_YAML", file=sys.stderr)
        return 2
    from zoo.config import RunConfig
    from zoo.run import run

    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.load(argv[0])))
        run(cfg)
    except ZooError as exc:
        log.error("run failed: %s", exc)
        return 2
    except SystemExit as exc:  # Preempted: the checkpoint is written
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        log.exception("run failed: %s: %s", type(exc).__name__, exc)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    sys.exit(main(sys.argv[1:]))
