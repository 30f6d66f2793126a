"""The two-stage RDAB network of Sharif et al., "A Two-stage Deep Network for High Dynamic Range Image Reconstruction",
CVPRW 2021 (NTIRE 2021 HDR challenge, track 1), arXiv 2104.09386.

Written from the paper and docs/models.md (the official repo, sharif-apu/twostageHDR_NTIRE21, has no licence file; no
code is copied). Layer for layer it matches the official modules, without their registered-but-unused layers:

- stage I (``stage1``, official ``ResMKHDR``): 3×3 input conv 3→64, two residual dense attention blocks (RDAB), 1×1
  output conv 64→3 plus the input, ReLU: 555,655 parameters. It maps the LDR input to an enhanced 8-bit-like image.
- stage II (``stage2``, official ``HDRRangeNet``): the same with one RDAB: 278,821 parameters. It maps stage I's output
  to the HDR image in the NTIRE gamma-2.24 encoding (≥ 0 because of the final ReLU).
- an RDAB is RRDB(x) + SpatialAttention(x). RRDB(x) = 0.8·(m·x5 + x) + x around a 5-conv residual dense block
  (64 channels, growth 32, plain ReLUs), with m = 0.2 in stage I and 0.5 in stage II. The spatial attention
  multiplies a 3×3 convolution of x (not x itself) by sigmoid(conv7×7([mean_c x, max_c x])).

Stride 1 throughout, so any H×W works (size multiple 1). PyTorch default initialisation, as the official code.

Training (``twostage_recipe``): all three networks are stepped every iteration with their own Adam (lr 5e-4,
betas (0.9, 0.99)), constant learning rate (the official StepLRs are never stepped at HEAD):

1. stage I: L1 + (1 − MS-SSIM) + 1e-3·BCE(D(out1), 1) against the clipped 8-bit target
   gt8 = round(clip(target·255, 0, 255)) / 255 (what the official data tool writes as ``_gt8.png``). The paper's
   eq. 6 weights the adversarial term 1e-4; the official code uses 1e-3, kept here. The paper calls D conditional;
   the official D sees only the image (3 input channels), kept here.
2. discriminator: BCE(D(gt8), U[0.7, 1.2]) + BCE(D(out1.detach()), U[0, 0.3]) (noisy soft labels, per sample; the
   "real" label can exceed 1, as in the official code). It runs after stage I's step, so stage I's adversarial term
   back-propagates through the discriminator's weights before they change.
3. stage II on out1.detach() (it never back-propagates into stage I): L1 + ΔE2000/255 against the HDR target. The
   official colour loss passes no gradient (it returns a new leaf tensor computed in numpy); the default here is a
   differentiable CIEDE2000 (the paper's intent); ``ciede2000_grad=False`` is the official behaviour (the term is
   computed without gradient and only logged).

Ablation (paper Table 2): ``create_model("twostage", stages="stage1" | "stage2")`` builds a one-stage network whose
output is that stage's, and ``recipe(stages=...)`` trains it; the two options must agree (the losses check). A
one-stage network has to produce the HDR image by itself, so it is trained against the HDR target (the paper does not
say more): "stage1" with stage I's losses (L1 + MS-SSIM + GAN, with the discriminator), "stage2" with stage II's
losses on the LDR input.

Official checkpoints (``{"stateDictEG", "stateDictER", "stateDictED", "optimizer*", "schedulerLR", "step"}``) hold a
pickled StepLR, so ``zoo.load_weights`` (weights_only) refuses them: convert once with
``convert_official_checkpoint(path, out, trust=True)``. ``convert_official`` maps the official layer names (and the
fixture's flat ``stage1.``/``stage2.`` layout) to this module's and drops the known unused layers by name.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.losses.ciede2000 import ciede2000_loss
from zoo.losses.msssim import ms_ssim
from zoo.registry import ModelSpec, Objective, Recipe, Stage, create_model, register
from zoo.sample_noise import per_sample_uniform
from zoo.weights import load_weights, save_checkpoint

log = logging.getLogger(__name__)

STAGE_CHOICES = ("both", "stage1", "stage2")
FEATURES = 64
GROWTH = 32
RRDB_SCALE = 0.8  # the official RRDB's outer residual scale
STAGE1_DENSE_SCALE = 0.2  # m in stage I
STAGE2_DENSE_SCALE = 0.5  # m in stage II

LEARNING_RATE = 5e-4
ADAM_BETAS = (0.9, 0.99)
ADVERSARIAL_WEIGHT = 1e-3  # official code; the paper's eq. 6 says 1e-4
COLOUR_SCALE = 1 / 255  # the official colour loss divides the mean ΔE2000 by 255
REAL_LABEL_RANGE = (0.7, 1.2)
FAKE_LABEL_RANGE = (0.0, 0.3)


# --------------------------------------------------------------------------------------------------------------------
# Network


class SpatialAttention(nn.Module):
    """sigmoid(conv7×7([mean over channels, max over channels])) · conv3×3(x); (B, 64, H, W) → same shape."""

    def __init__(self, channels: int = FEATURES):
        super().__init__()
        self.gate = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.gate(pooled)) * self.conv(x)


class ResidualDenseBlock(nn.Module):
    """The official RRDB holding one 5-conv residual dense block: 0.8·(dense_scale·x5 + x) + x."""

    def __init__(self, dense_scale: float, channels: int = FEATURES, growth: int = GROWTH):
        super().__init__()
        self.dense_scale = dense_scale
        self.conv1 = nn.Conv2d(channels, growth, 3, padding=1)
        self.conv2 = nn.Conv2d(channels + growth, growth, 3, padding=1)
        self.conv3 = nn.Conv2d(channels + 2 * growth, growth, 3, padding=1)
        self.conv4 = nn.Conv2d(channels + 3 * growth, growth, 3, padding=1)
        self.conv5 = nn.Conv2d(channels + 4 * growth, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(torch.cat([x, x1], dim=1)))
        x3 = F.relu(self.conv3(torch.cat([x, x1, x2], dim=1)))
        x4 = F.relu(self.conv4(torch.cat([x, x1, x2, x3], dim=1)))
        x5 = self.conv5(torch.cat([x, x1, x2, x3, x4], dim=1))
        return (x5 * self.dense_scale + x) * RRDB_SCALE + x


class RDAB(nn.Module):
    """Residual dense attention block (paper eq. 2): RRDB(x) + SpatialAttention(x)."""

    def __init__(self, dense_scale: float, channels: int = FEATURES):
        super().__init__()
        self.dense = ResidualDenseBlock(dense_scale, channels)
        self.attention = SpatialAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x) + self.attention(x)


class StageNet(nn.Module):
    """One stage: ReLU(conv1×1(RDABs(conv3×3(x))) + x); (B, 3, H, W) → (B, 3, H, W), values ≥ 0."""

    def __init__(self, n_blocks: int, dense_scale: float, channels: int = FEATURES):
        super().__init__()
        self.input_conv = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(RDAB(dense_scale, channels) for _ in range(n_blocks)))
        self.output_conv = nn.Conv2d(channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.output_conv(self.blocks(self.input_conv(x))) + x)


class TwoStageHDR(nn.Module):
    """Stage I (enhancement) then stage II (HDR reconstruction).

    ``stages``: "both" (the paper's model), or "stage1" / "stage2" for the one-stage ablations of Table 2 (only that
    stage exists and its output is the model's). Input (B, 3, H, W) sRGB LDR in [0, 1], any H×W; output the same size
    in the NTIRE gamma-2.24 domain, ≥ 0.
    """

    def __init__(self, stages: str = "both"):
        super().__init__()
        if stages not in STAGE_CHOICES:
            raise ZooError(f"twostage: stages must be one of {', '.join(STAGE_CHOICES)}, got {stages!r}")
        self.stages = stages
        if stages in ("both", "stage1"):
            self.stage1 = StageNet(n_blocks=2, dense_scale=STAGE1_DENSE_SCALE)
        if stages in ("both", "stage2"):
            self.stage2 = StageNet(n_blocks=1, dense_scale=STAGE2_DENSE_SCALE)

    def forward_stages(self, x: torch.Tensor, detach: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(out1, out2): stage I's output (8-bit-like, ≥ 0) and stage II's (NTIRE gamma HDR); None for a stage the
        model lacks. ``detach``: stage II reads out1.detach(), as in official training, so its gradient never reaches
        stage I."""
        out1 = self.stage1(x) if self.stages != "stage2" else None
        if self.stages == "stage1":
            return out1, None
        stage2_input = x if out1 is None else (out1.detach() if detach else out1)
        return out1, self.stage2(stage2_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The HDR prediction (stage II's output, or the only stage's). Gradients flow through both stages here;
        training uses ``forward_stages`` / the recipe, which detach between the stages."""
        out1, out2 = self.forward_stages(x, detach=False)
        return out2 if out2 is not None else out1


# --------------------------------------------------------------------------------------------------------------------
# Discriminator (training only)


class Discriminator(nn.Module):
    """The official ``attentiomDiscriminator`` (4,689,601 parameters + BatchNorm buffers); layer names as official.

    conv1 3→64 + swish, then conv3×3 + BN + swish: 64→64 s2, 64→128, 128→128 s2, 128→256, 256→256 s2, 256→512,
    512→512 s2; ``conv9`` 1×1 512→1 with padding 1 (an official quirk: the zero-input border, equal to the bias,
    enters the global average); global average; sigmoid. Input (B, 3, H, W); ``forward`` gives P(real) (B, 1).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
        widths = [(64, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2), (256, 512, 1), (512, 512, 2)]
        for index, (c_in, c_out, stride) in enumerate(widths, start=2):
            setattr(self, f"conv{index}", nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1))
            setattr(self, f"bn{index}", nn.BatchNorm2d(c_out))
        self.conv9 = nn.Conv2d(512, 1, 1, padding=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid score (B, 1); the losses use it with BCE-with-logits (same value, numerically stable)."""
        x = F.silu(self.conv1(x))
        for index in range(2, 9):
            x = F.silu(getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x)))
        return self.conv9(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


# --------------------------------------------------------------------------------------------------------------------
# Official checkpoints

_BATCHNORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# Registered in the official modules but never used in forward (docs/models.md); dropped by exact name.
UNUSED_OFFICIAL_KEYS = {
    "stage1": frozenset(
        [f"norm1.{p}" for p in _BATCHNORM]
        + [f"attention{i}.fc.{j}.weight" for i in (1, 2) for j in (0, 2)]
        + [f"noiseGate{i}.{p}" for i in (1, 2) for p in ("weight", "bias")]
    ),
    "stage2": frozenset(
        [f"norm1.{p}" for p in _BATCHNORM]
        + [f"attention.fc.{j}.weight" for j in (0, 2)]
        + [f"noiseGate1.{p}" for p in ("weight", "bias")]
        + [f"block1.RDB1.conv{k}.{p}" for k in range(1, 6) for p in ("weight", "bias")]
    ),
}
# Official names of the blocks that are used: (dense block, spatial attention) per RDAB, in order.
_OFFICIAL_BLOCKS = {
    "stage1": (("block1", "attentionSpatial1"), ("block2", "attentionSpatial2")),
    "stage2": (("blockG", "attentionSpatial"),),
}


def official_key_map(stage: str) -> dict[str, str]:
    """Official state-dict key → this module's key (both without the ``stage1.``/``stage2.`` prefix)."""
    names = {f"inpConv.{p}": f"input_conv.{p}" for p in ("weight", "bias")}
    names |= {f"convOut.{p}": f"output_conv.{p}" for p in ("weight", "bias")}
    for index, (dense, attention) in enumerate(_OFFICIAL_BLOCKS[stage]):
        for k in range(1, 6):
            for p in ("weight", "bias"):
                names[f"{dense}.RDB1.conv{k}.{p}"] = f"blocks.{index}.dense.conv{k}.{p}"
        names[f"{attention}.spatialAttenton.conv1.weight"] = f"blocks.{index}.attention.gate.weight"  # sic
        for p in ("weight", "bias"):
            names[f"{attention}.conv.{p}"] = f"blocks.{index}.attention.conv.{p}"
    return names


def _convert_stage(official: Mapping[str, Any], stage: str, origin: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Rename one official module's state dict (``prefix`` + official name, as the keys appear in ``origin``) to
    ``stage.<zoo name>``; unused official layers are dropped by exact name, anything else is an error."""
    if not isinstance(official, Mapping):
        raise ZooError(f"{origin}: expected a state dict, got {type(official).__name__}")
    state = dict(official)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    names = official_key_map(stage)
    unused = UNUSED_OFFICIAL_KEYS[stage]
    unexpected = sorted(prefix + k for k in state if k not in names and k not in unused)
    missing = sorted(prefix + k for k in names if k not in state)
    if unexpected or missing:
        parts = [f"unexpected keys: {', '.join(unexpected)}" if unexpected else "",
                 f"missing keys: {', '.join(missing)}" if missing else ""]
        raise ZooError(f"{origin}: not the official two-stage {stage} layout; " + "; ".join(p for p in parts if p))
    return {f"{stage}.{names[k]}": torch.as_tensor(v) for k, v in state.items() if k in names}


def _is_flat_official(obj: Mapping[str, Any]) -> bool:
    """True when some key is an official layer name under a ``stage1.``/``stage2.`` prefix (the fixture layout)."""
    official = {f"{stage}.{name}" for stage in ("stage1", "stage2") for name in official_key_map(stage)}
    return any(k in official for k in obj)


def convert_official(obj: Any) -> dict[str, torch.Tensor] | None:
    """A zoo state dict for the two-stage model (``stage1.*`` and ``stage2.*``) from an official layout, or None when
    ``obj`` is not one.

    Accepted: the official checkpoint dict (``stateDictEG`` = stage I, ``stateDictER`` = stage II; ``stateDictED``,
    optimiser states, ``step`` and ``schedulerLR`` are ignored), the fixture's flat dict of official keys under
    ``stage1.``/``stage2.``, or a dict holding either under ``state_dict``. The official modules' unused layers are
    dropped by exact name; any other difference raises ``ZooError`` naming the keys.
    """
    if not isinstance(obj, Mapping):
        return None
    if "stateDictEG" in obj or "stateDictER" in obj:
        for key in ("stateDictEG", "stateDictER"):
            if key not in obj:
                raise ZooError(f"official two-stage checkpoint: key {key!r} is missing (need stateDictEG, stateDictER)")
        return _convert_stage(obj["stateDictEG"], "stage1", "stateDictEG") | _convert_stage(
            obj["stateDictER"], "stage2", "stateDictER"
        )
    if isinstance(obj.get("state_dict"), Mapping):
        return convert_official(obj["state_dict"])
    if not _is_flat_official(obj):
        return None
    stray = sorted(k for k in obj if not (isinstance(k, str) and k.startswith(("stage1.", "stage2."))))
    if stray:
        listed = ", ".join(map(str, stray))
        raise ZooError(f"official two-stage state dict: unexpected keys outside stage1./stage2.: {listed}")
    converted: dict[str, torch.Tensor] = {}
    for stage in ("stage1", "stage2"):
        part = {k[len(stage) + 1:]: v for k, v in obj.items() if k.startswith(stage + ".")}
        if part:
            converted |= _convert_stage(part, stage, "state dict", prefix=stage + ".")
    return converted


def convert_official_checkpoint(path: str | Path, out_path: str | Path, trust: bool = False) -> Path:
    """Convert an official two-stage checkpoint file into a plain zoo checkpoint (tensors only) at ``out_path``.

    The official file pickles a StepLR object, so reading it means unpickling, which can run arbitrary code from the
    file. The file is first read safely (``weights_only=True``); only if that fails *and* ``trust=True`` is it read with
    ``weights_only=False``. Without ``trust`` such a file raises ``ZooError``. The output holds the model's state dict,
    the discriminator's (``discriminator_state_dict``, if the file has ``stateDictED``), the training ``step``, the
    source file name and its sha256, and loads anywhere with ``zoo.load_weights`` (weights_only).

    How to convert an untrusted file: never unpickle it on a machine that matters. Run this function with
    ``trust=True`` inside a throwaway sandbox (a container or VM with no network, no credentials, no home directory;
    mount the input read-only and an empty output folder), e.g.
    ``docker run --rm --network none -v $PWD/in:/in:ro -v $PWD/out:/out IMAGE zoo convert twostage-official --trust
    /in/ckpt.pth /out/twostage.pt``, discard the sandbox, and use only the converted file (it is plain tensors, read
    with weights_only=True). Record the printed source sha256 alongside it.
    """
    path, out_path = Path(path), Path(out_path)
    if not path.is_file():
        raise ZooError(f"{path}: no such checkpoint file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises several types for pickled objects)
        if not trust:
            raise ZooError(
                f"{path}: the file holds pickled Python objects ({type(exc).__name__}); unpickling can run code from "
                "the file, so it is only done with trust=True (--trust), ideally inside a sandbox"
            ) from None
        log.warning("unpickling %s (sha256 %s) with weights_only=False because trust=True", path, digest)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    state = convert_official(obj)
    if state is None:
        raise ZooError(
            f"{path}: not an official two-stage checkpoint (expected stateDictEG/stateDictER or stage1./stage2. keys)"
        )
    model = load_weights(create_model("twostage"), state)
    extra: dict[str, Any] = {"source_file": path.name, "source_sha256": digest}
    if isinstance(obj, Mapping) and isinstance(obj.get("stateDictED"), Mapping):
        discriminator = Discriminator()
        try:
            discriminator.load_state_dict(dict(obj["stateDictED"]), strict=True)
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise ZooError(f"{path}: stateDictED does not fit the two-stage discriminator ({reason})") from None
        extra["discriminator_state_dict"] = discriminator.state_dict()
    if isinstance(obj, Mapping) and isinstance(obj.get("step"), int):
        extra["step"] = obj["step"]
    log.info("converted %s (sha256 %s) to %s", path, digest, out_path)
    return save_checkpoint(out_path, model, **extra)


# --------------------------------------------------------------------------------------------------------------------
# Training recipe


def eight_bit_target(target: torch.Tensor) -> torch.Tensor:
    """gt8 = round(clip(target·255, 0, 255)) / 255: the clipped 8-bit version of the NTIRE-gamma target, as the
    official data tool writes it (OpenCV saturates a float image to uint8). Same shape, values in [0, 1]."""
    return torch.round((target * 255).clamp(0, 255)) / 255


def _model_for(nets: nn.ModuleDict, expected: str) -> TwoStageHDR:
    model = nets["model"]
    found = getattr(model, "stages", None)
    if found != expected:
        raise ZooError(
            f"twostage recipe(stages={expected!r}) needs create_model('twostage', stages={expected!r}); "
            f"the model was built with stages={found!r}"
        )
    return model


def _stage1_loss(nets: nn.ModuleDict, batch: dict[str, torch.Tensor], cache: dict[str, Any], *, stages: str,
                 msssim_official_bug: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage I: L1 + (1 − MS-SSIM) + 1e-3·BCE(D(out1), 1), against gt8 (two-stage) or the HDR target (stage-I-only
    ablation). Caches out1 (detached) and the target for the discriminator and stage II."""
    model = _model_for(nets, stages)
    out1 = model.stage1(batch["ldr"])
    target = eight_bit_target(batch["target"]) if stages == "both" else batch["target"]
    cache["out1"] = out1.detach()
    cache["stage1_target"] = target
    l1 = F.l1_loss(out1, target)
    similarity = ms_ssim(out1, target, data_range=1.0, official_bug=msssim_official_bug)
    fake_logits = nets["discriminator"].logits(out1)
    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    loss = l1 + (1 - similarity) + ADVERSARIAL_WEIGHT * adversarial
    return loss, {"l1": l1.item(), "msssim": similarity.item(), "adversarial": adversarial.item()}


def _discriminator_loss(nets: nn.ModuleDict, batch: dict[str, torch.Tensor],
                        cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """BCE(D(real), U[0.7, 1.2]) + BCE(D(out1.detach()), U[0, 0.3]), labels drawn per sample each step
    (``zoo.sample_noise.per_sample_uniform``: seeded by the sample's identity)."""
    if "out1" not in cache:
        raise ZooError("twostage recipe: the discriminator objective must run after stage I's (it reuses out1)")
    discriminator = nets["discriminator"]
    real_logits = discriminator.logits(cache["stage1_target"])
    fake_logits = discriminator.logits(cache["out1"])
    # per sample from its identity: a data-parallel run draws the labels a single process draws
    real_labels = per_sample_uniform(batch, real_logits, *REAL_LABEL_RANGE, stream=1)
    fake_labels = per_sample_uniform(batch, fake_logits, *FAKE_LABEL_RANGE, stream=2)
    loss = F.binary_cross_entropy_with_logits(real_logits, real_labels) + F.binary_cross_entropy_with_logits(
        fake_logits, fake_labels
    )
    p_real, p_fake = torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item()
    return loss, {"p_real": p_real, "p_fake": p_fake}


def _stage2_loss(nets: nn.ModuleDict, batch: dict[str, torch.Tensor], cache: dict[str, Any], *, stages: str,
                 ciede2000_grad: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage II: L1 + mean ΔE2000 / 255 against the HDR target, on out1.detach() (or the LDR input in the
    stage-II-only ablation). ``ciede2000_grad=False``: the colour term is computed without gradient and only logged
    (official behaviour)."""
    model = _model_for(nets, stages)
    if stages == "stage2":
        stage2_input = batch["ldr"]
    elif "out1" in cache:
        stage2_input = cache["out1"]
    else:  # stage I's objective did not run this step: stage II still reads stage I's (detached) output
        with torch.no_grad():
            stage2_input = model.stage1(batch["ldr"])
    out2 = model.stage2(stage2_input)
    target = batch["target"]
    l1 = F.l1_loss(out2, target)
    if ciede2000_grad:
        colour = ciede2000_loss(out2, target) * COLOUR_SCALE
        loss = l1 + colour
    else:
        with torch.no_grad():
            colour = ciede2000_loss(out2, target) * COLOUR_SCALE
        loss = l1
    return loss, {"l1": l1.item(), "ciede2000": colour.item() / COLOUR_SCALE}


# The paper's schedule: 7,551 training patches, 25 epochs, batch 8 → ceil(7551 · 25 / 8) steps.
PAPER_STEPS = -(-7551 * 25 // 8)


def twostage_recipe(stages: str = "both", ciede2000_grad: bool = True, msssim_official_bug: bool = False) -> Recipe:
    """The official HEAD recipe: one stage, three objectives stepped every iteration (stage I, discriminator,
    stage II), Adam lr 5e-4, betas (0.9, 0.99), constant learning rate.

    ``stages``: "both", or the Table 2 ablations "stage1" / "stage2" (build the model with the same ``stages``).
    ``ciede2000_grad``: differentiable colour term (default) or the official gradient-free one.
    ``msssim_official_bug``: combine MS-SSIM scales as the official code does (see zoo.losses.msssim).
    """
    if stages not in STAGE_CHOICES:
        raise ZooError(f"twostage recipe: stages must be one of {', '.join(STAGE_CHOICES)}, got {stages!r}")
    adam = {"lr": LEARNING_RATE, "betas": ADAM_BETAS}
    stage1 = Objective("stage1", ("model.stage1",), partial(_stage1_loss, stages=stages,
                                                            msssim_official_bug=msssim_official_bug), **adam)
    discriminator = Objective("discriminator", ("discriminator",), _discriminator_loss, **adam)
    stage2 = Objective("stage2", ("model.stage2",), partial(_stage2_loss, stages=stages,
                                                            ciede2000_grad=ciede2000_grad), **adam)
    objectives = {"both": (stage1, discriminator, stage2), "stage1": (stage1, discriminator), "stage2": (stage2,)}
    uses_discriminator = stages != "stage2"
    return Recipe(
        stages=(Stage(name="joint", objectives=objectives[stages], fraction=1.0, milestones=()),),
        aux_modules={"discriminator": Discriminator} if uses_discriminator else {},
        notes=(
            f"two-stage official HEAD recipe (stages={stages}): Adam 5e-4 (0.9, 0.99), constant LR; stage I vs gt8 "
            "(L1 + 1-MS-SSIM + 1e-3 GAN), D with soft noisy labels, stage II on detached out1 (L1 + dE2000/255, "
            f"gradient {'on' if ciede2000_grad else 'off (official)'}); MS-SSIM official bug "
            f"{'on' if msssim_official_bug else 'off'}. Paper schedule: batch 8, 25 epochs of 7,551 patches."
        ),
        official_steps=PAPER_STEPS,
        official_batch_size=8,
    )


def build(stages: str = "both") -> TwoStageHDR:
    return TwoStageHDR(stages=stages)


SPEC = register(
    ModelSpec(
        name="twostage",
        build=build,
        output_domain="ntire_gamma",
        size_multiple=1,
        paper="Sharif, Naqvi, Biswas & Kim, A Two-stage Deep Network for High Dynamic Range Image Reconstruction, "
        "CVPRW 2021 (NTIRE 2021), arXiv:2104.09386",
        code_licence="MIT (this port, written from the paper and notes); the official repository "
        "sharif-apu/twostageHDR_NTIRE21 has no LICENSE file and none of its code is used",
        weights_licence="none shipped; the official weights (weights/singleShotAtentionFinal_checkpoint.pth in the "
        "official repo) carry no licence: treat them as data with provenance (convert_official_checkpoint records "
        "the source sha256)",
        recipe=twostage_recipe,
        convert_official=convert_official,
        description="two-stage residual dense attention network: stage I enhances the LDR image (8-bit target), "
        "stage II maps it to NTIRE gamma HDR",
    )
)
