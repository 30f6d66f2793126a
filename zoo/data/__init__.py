"""The data engine: HDR sources (procedural scenes, HDR files, NTIRE 2021) → dict samples for training/evaluation.

    >>> from zoo.data import DataConfig, build_dataset
    >>> train = build_dataset(DataConfig(), "train")   # synthetic 64×64 patches through a simulated camera
    >>> batch = train[0]                               # {"ldr": (3,64,64), "target": ..., "inv_crf": (1024,), ...}
    >>> frozen = build_dataset(DataConfig(), "eval")   # 8 fixed 128×192 scenes; frozen.describe(i) → JSON-able dict

Modules: ``config`` (DataConfig, CameraConfig), ``crf`` (curve family, inverses, PCA basis, invemor.txt reader),
``make_basis`` (the committed basis generator), ``camera`` (the forward camera), ``scenes`` (procedural HDR content),
``common`` (seeding, splits, augmentation), ``synthetic`` / ``folder`` / ``ntire`` (the sources), ``datasets``
(``build_dataset``).

Design choices and deviations (docs/data.md):
- Noise: σ_s, σ_c, n₁ and n₂ are drawn independently per sample (σ's per channel). The official SingleHDR graph
  seeds both uniform and both normal draws identically, so there they are shared; that is a bug we do not copy.
- Quantisation is ⌊255·y + 0.5⌋ (the SingleHDR paper), not NumPy's round-half-to-even.
- Target: the clean aligned scene (``linear``), encoded as linear ** (1/2.24); SingleHDR's Hallucination-Net trained
  against the noisy scene, which recipes can use through ``linear_noisy``.
- Response curves: the project's own family (DoRF/EMoR are not redistributable), 535 training curves, 28 held-out
  curves of the training families and the whole held-out "filmic" family (60 curves); the PCA basis (mean + 25
  components, models use 11) is a committed, sha256-checked file built by ``python -m zoo.data.make_basis`` from the
  training curves only, so it is bit-identical on every machine. Curves are applied by the 1024-sample lookup of
  SingleHDR's ``apply_rf``. Weights trained with this basis are not interchangeable with official SingleHDR weights,
  which need the user's ``invemor.txt`` (``load_inverse_basis(path)``).
- Frozen evaluation splits are a pure function of (source, seed, size, image id); ``describe(i)`` gives every
  parameter. JPEG bytes depend on the libjpeg build, so evaluation JPEG is off by default; with it on, a frozen split
  is reproducible only on the same OpenCV build (the encoder is recorded in each sample's ``jpeg_encoder``).
"""

from zoo.data.config import CameraConfig, DataConfig
from zoo.data.crf import InverseResponseBasis, load_inverse_basis
from zoo.data.datasets import build_dataset

__all__ = ["CameraConfig", "DataConfig", "InverseResponseBasis", "build_dataset", "load_inverse_basis"]
