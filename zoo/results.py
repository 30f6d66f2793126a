"""Result rows: one JSON file per run in ``results/runs/``, keyed by a hash of the run's semantic config.

A row holds the run's identity (model, data, seed, config, run id, git commit), its status (``ok``/``failed`` with the
error), the mean of every metric, efficiency figures, the training curve and the per-image metrics with each image's
degradation parameters, so any number in a table can be traced to its inputs. Rows are written atomically, and parallel
runs never share a file.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from zoo.io import atomic_write

# Config keys that change how a run executes but not what it computes: excluded from the run id.
NON_SEMANTIC = {"train": {"progress", "tensorboard", "log_every", "checkpoint_every", "threads", "device"}}
TOP_LEVEL_KEYS = ("model", "data", "train", "seed")


def semantic_config(config: dict[str, Any]) -> dict[str, Any]:
    semantic = {k: config[k] for k in TOP_LEVEL_KEYS if k in config}
    for group, keys in NON_SEMANTIC.items():
        if group in semantic:
            semantic[group] = {k: v for k, v in semantic[group].items() if k not in keys}
    return semantic


def config_hash(config: dict[str, Any]) -> str:
    """First 12 hex digits of sha256 over the canonical JSON of ``config``."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_id(config: dict[str, Any]) -> str:
    """The hash of the semantic config."""
    return config_hash(semantic_config(config))


def row_path(results_dir: str | Path, rid: str) -> Path:
    return Path(results_dir) / f"{rid}.json"


def write_row(results_dir: str | Path, row: dict[str, Any]) -> Path:
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(row, indent=1, sort_keys=False, default=_json_default, allow_nan=True)
    return atomic_write(row_path(results_dir, row["run_id"]), lambda tmp: tmp.write_text(text + "\n"))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_row(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_rows(results_dir: str | Path) -> list[dict[str, Any]]:
    """All rows in ``results_dir``, sorted by (model, tag, seed, run id) so reports are deterministic."""
    # skip hidden names: atomic_write's temporary files of rows still being written
    rows = [read_row(p) for p in sorted(Path(results_dir).glob("*.json")) if not p.name.startswith(".")]
    return sorted(rows, key=lambda r: (r.get("model", ""), r.get("tag", ""), r.get("seed", 0), r["run_id"]))


def git_commit() -> str:
    """HEAD of the repository the package lives in, ``+dirty`` when tracked files changed; "unknown" outside git."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
