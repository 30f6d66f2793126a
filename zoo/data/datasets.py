"""``build_dataset``: the one front door from a ``DataConfig`` to a torch Dataset of dict samples.

A sample is a dict of C×H×W float32 tensors: "ldr" (8-bit LDR in [0, 1]) and "target" (NTIRE gamma-2.24 HDR aligned
to the LDR exposure: linear = target ** 2.24) always; the camera-simulated sources (synthetic, folder) add "linear",
"linear_noisy", "linear_clipped", "ldr_unquantized" and "inv_crf" ((1024,)). ``dataset.keys`` lists what a source
gives; ``dataset.describe(i)`` returns the JSON-able id and degradation parameters of item i, to be written next to
the results; ``dataset.set_epoch(e)`` draws a fresh set of training samples.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from zoo.data.common import check_config
from zoo.data.config import DataConfig
from zoo.data.folder import FolderDataset
from zoo.data.ntire import NtireDataset
from zoo.data.real import MixedDataset, RealDataset
from zoo.data.synthetic import SyntheticDataset
from zoo.errors import ZooError

SOURCES = {
    "synthetic": SyntheticDataset,
    "folder": FolderDataset,
    "real": RealDataset,
    "mixed": MixedDataset,
    "ntire2021": NtireDataset,
}


def build_dataset(cfg: DataConfig, split: str) -> Dataset:
    """The dataset named by ``cfg.name`` for ``split`` ("train": random augmented patches; "eval": the frozen split)."""
    if cfg.name not in SOURCES:
        raise ZooError(f"data.name: unknown dataset {cfg.name!r}; expected one of {', '.join(SOURCES)}")
    check_config(cfg, split)
    return SOURCES[cfg.name](cfg, split)
