"""The data engine: HDR sources (procedural scenes, HDR files, NTIRE 2021) → dict samples for training/evaluation.

    >>> from zoo.data import DataConfig, build_dataset
    >>> train = build_dataset(DataConfig(), "train")   # synthetic 64×64 patches through a simulated camera
    >>> batch = train[0]                               # {"ldr": (3,64,64), "target": ..., "inv_crf": (1024,), ...}
    >>> frozen = build_dataset(DataConfig(), "eval")   # 8 fixed 128×192 scenes; frozen.describe(i) → JSON-able dict
"""

from zoo.data.config import CameraConfig, DataConfig
from zoo.data.crf import InverseResponseBasis, load_inverse_basis
from zoo.data.datasets import build_dataset

__all__ = ["CameraConfig", "DataConfig", "InverseResponseBasis", "build_dataset", "load_inverse_basis"]
