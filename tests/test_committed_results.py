"""Committed numbers are never stale: the report regenerates the committed tables byte for byte from the committed
rows (a change to the report code or the rows without `make report` / `scripts/reference.py tables` fails here)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "MPLBACKEND": "Agg"}


@pytest.mark.parametrize("runs, tables", [("results/runs", "results"), ("results/eval/runs", "results/eval")])
def test_the_report_regenerates_the_committed_tables_byte_for_byte(tmp_path, runs, tables):
    if not (REPO / runs).is_dir():
        pytest.skip(f"{runs} is not committed in this checkout")
    if (REPO / tables / "bench").is_dir():  # the report reads <out>/bench/speed.csv for its latency column
        shutil.copytree(REPO / tables / "bench", tmp_path / "bench")
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "report", "--runs", runs, "--out", str(tmp_path)],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("tables.md", "summary.csv", "tables.tex", "failed.csv", "index.html"):
        committed = (REPO / tables / name).read_text()
        stale = f"{tables}/{name} is stale: run `zoo report --runs {runs} --out {tables}`"
        assert (tmp_path / name).read_text() == committed, stale
