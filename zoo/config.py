"""Typed schema of the ``zoo run`` configuration (Hydra structured configs).

Every group YAML in ``conf/`` is validated against these dataclasses when Hydra composes the config, so a misspelled
key fails at composition and names the key. Only ``zoo.cli`` touches Hydra; it converts the composed config once with
``OmegaConf.to_object`` and hands these plain dataclasses to library code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from zoo.data import DataConfig


@dataclass
class ModelConfig:
    """``name`` is the registry key; ``args`` are ``create_model`` overrides (architecture ablations); ``recipe`` are
    options of the model's training recipe (loss ablations, VGG weights path, ...); ``weights`` initialises the model
    from a checkpoint (zoo or official layout) before training."""

    name: str = MISSING
    args: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    weights: Optional[str] = None


@dataclass
class TrainConfig:
    """Step budget and loop settings. Learning rates and schedules come from the model's recipe; ``lr_scale``
    multiplies them (1.0 = the official values)."""

    steps: Optional[int] = 1000  # null: the recipe's official schedule length (train=paper)
    batch_size: Optional[int] = 8  # null: the recipe's official batch size
    lr_scale: float = 1.0
    log_every: int = 25
    checkpoint_every: int = 500  # steps; 0 = only at the end
    threads: int = 2  # torch intra-op threads per run
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    progress: bool = True
    tensorboard: bool = False  # TensorBoard scalars in <checkpoint_dir>/<run_id>/tb (pip install hdr-zoo[tensorboard])
    # Training batches over which BatchNorm running statistics are recomputed before the weights are saved
    # (zoo.train.recalibrate_batchnorm; models without BN are unaffected); 0 keeps the running averages of training.
    bn_recalibration_batches: int = 32
    nan_policy: str = "stop"  # "stop" (error naming step and loss term) or "skip" (drop the step)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    results_dir: str = (
        "outputs/runs"  # one row file per run; relative to the working directory (make results: results/runs)
    )
    checkpoint_dir: str = "outputs/checkpoints"  # <dir>/<run_id>/: resume state and final weights
    force: bool = False  # rerun even if a row for this config already exists
    tag: str = ""  # free text copied into the row (e.g. an ablation label); not part of the run id


@dataclass
class EvalConfig:
    """``zoo eval``: score a model with given weights on a dataset's frozen eval split, without training.

    ``model.weights`` null means the model's shipped pretrained weights (``zoo list``); baselines need none. A row is
    keyed by the weights file's sha256 (its contents, not its path), the model, the data and the seed."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    results_dir: str = "outputs/eval/runs"
    threads: int = 2
    device: str = "auto"
    force: bool = False
    tag: str = ""  # default: "eval-<data.name>", one report table per dataset
    cvvdp: bool = False  # also score ColorVideoVDP (cvvdp_jod; the `perceptual` extra, zoo/cvvdp.py): ~1 s per image


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(name="eval_schema", node=EvalConfig)
