"""Train, evaluate and ship the reference weights of the three models (``make reference``).

    python scripts/reference.py train hdrunet      # zoo run on data=mixed at the budget below (resumes if interrupted)
    python scripts/reference.py ship hdrunet       # copy the final weights into zoo/pretrained/ (+ zoo eval, model card)

Budgets (steps × batch 8 × 64 px, one thread each) are the largest that fitted one working session on the project's
2-core CPU machine with two models training side by side; the model cards record the wall time actually taken.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "reference"
BUDGETS = {"hdrunet": 5000, "twostage": 1600, "singlehdr": 2000}


def zoo(*args: str) -> None:
    env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}
    command = [str(Path(sys.executable).parent / "zoo"), *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, env=env)


def train_args(model: str) -> list[str]:
    return [f"model={model}", "data=mixed", "train=reference", f"train.steps={BUDGETS[model]}", "seed=0",
            f"results_dir={OUT / 'runs'}", f"checkpoint_dir={OUT / 'checkpoints'}",
            f"hydra.run.dir={OUT / 'hydra' / model}"]  # fmt: skip


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("train", "ship") or argv[1] not in BUDGETS:
        sys.exit(f"usage: python scripts/reference.py train|ship {'|'.join(BUDGETS)}")
    action, model = argv
    if action == "train":
        zoo("run", *train_args(model))
    else:
        raise SystemExit("ship: not implemented yet")


if __name__ == "__main__":
    main(sys.argv[1:])
