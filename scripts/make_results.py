"""`make results`: regenerate the committed results from scratch or resume them.

Runs the `zoo` sweep and the three ablation sweeps at `train=budget` (finished runs are skipped, interrupted ones
resume), then `zoo report`, and appends one line to the run log in `<results>/README.md`: date, commit, machine, wall
time of each sweep and how many runs it trained. Extra arguments are passed to every `zoo run` as Hydra overrides, e.g.
`python scripts/make_results.py --results /tmp/r train.steps=2 data.eval_count=1` for a quick check of the machinery.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEPS = ("zoo", "ablation_hdrunet_loss", "ablation_hdrunet_modules", "ablation_twostage_stages")
LOG_START, LOG_END = "<!-- run-log:start -->", "<!-- run-log:end -->"
LOG_HEADER = (
    "| date (UTC) | commit | machine | budget | "
    + " | ".join(f"{s} min (new runs)" for s in SWEEPS)
    + " | report s | total min | failed runs | overrides |"
)


def _statuses(runs_dir: Path) -> dict[str, str]:
    statuses = {}
    for path in runs_dir.glob("*.json"):
        if not path.name.startswith("."):
            try:
                statuses[path.stem] = json.loads(path.read_text()).get("status", "?")
            except (OSError, ValueError):
                statuses[path.stem] = "unreadable"
    return statuses


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _budget(overrides: list[str]) -> str:
    """steps×batch of the runs: conf/train/budget.yaml (read as text, no Hydra needed) unless overridden."""
    values = {}
    for line in (REPO / "conf" / "train" / "budget.yaml").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("steps", "batch_size"):
            values[key.strip()] = value.split("#")[0].strip()
    for override in overrides:
        key, _, value = override.partition("=")
        if key in ("train.steps", "train.batch_size"):
            values[key.removeprefix("train.")] = value
    return f"{values.get('steps', '?')}×{values.get('batch_size', '?')}"


def log_section() -> str:
    """The empty run log: markers, header and separator (results/README.md holds this until the first run)."""
    return f"{LOG_START}\n{LOG_HEADER}\n|{'---|' * (LOG_HEADER.count('|') - 1)}\n{LOG_END}"


def append_log(readme: Path, line: str) -> None:
    """Append ``line`` to the run-log table between the markers of ``readme`` (creating the section if missing)."""
    text = readme.read_text() if readme.is_file() else ""
    if LOG_START not in text or LOG_END not in text:
        text = text.rstrip() + f"\n\n## Run log\n\n{log_section()}\n"
    head, rest = text.split(LOG_END, 1)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(head.rstrip("\n") + "\n" + line + "\n" + LOG_END + rest)
    os.replace(tmp, readme)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="results folder (rows in <results>/runs)")
    args, overrides = parser.parse_known_args()
    results = Path(args.results)
    runs = results / "runs"
    zoo = [sys.executable, "-m", "zoo.cli"]
    env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}
    start = time.perf_counter()
    cells, failed_sweeps = [], []
    for sweep in SWEEPS:
        before = _statuses(runs)
        tic = time.perf_counter()
        proc = subprocess.run(
            [*zoo, "run", f"sweep={sweep}", "train=budget", f"results_dir={runs}", *overrides], cwd=REPO, env=env
        )
        after = _statuses(runs)
        new = sum(1 for rid, status in after.items() if status == "ok" and before.get(rid) != "ok")
        cells.append(f"{(time.perf_counter() - tic) / 60:.1f} ({new})")
        if proc.returncode != 0:
            failed_sweeps.append(sweep)
    tic = time.perf_counter()
    report = subprocess.run([*zoo, "report", "--runs", str(runs), "--out", str(results)], cwd=REPO, env=env)
    report_seconds = time.perf_counter() - tic
    statuses = _statuses(runs)
    machine = f"{platform.node()}, {os.cpu_count()} cores, {platform.machine()}"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    line = (
        f"| {date} | {_git_commit()} | {machine} | {_budget(overrides)} | "
        + " | ".join(cells)
        + f" | {report_seconds:.0f} | {(time.perf_counter() - start) / 60:.1f} | "
        f"{sum(s != 'ok' for s in statuses.values())} | {' '.join(overrides) or '—'} |"
    )
    append_log(results / "README.md", line)
    print(f"run log: {line}")
    if failed_sweeps or report.returncode != 0:
        print(
            f"error: sweeps that exited non-zero: {', '.join(failed_sweeps) or 'none'}; report exit "
            f"{report.returncode}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
