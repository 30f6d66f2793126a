"""The SingleHDR model: the four sub-nets (``subnets.py``) joined as the official ``test_real_refinement.py`` graph,
with padding to any size and the tiling hooks; see the package docstring for the pipeline and its deviations."""

from __future__ import annotations

import logging

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.models.singlehdr.subnets import (
    HallucinationNet,
    LinearizationNet,
    Taps,
    dequantization_net,
    refinement_net,
)
from zoo.tf_compat import apply_rf, pad_symmetric
from zoo.tileable import GlobalBranchTiling

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 32  # five 2×2 poolings in the VGG16 encoder
OFFICIAL_BORDER = 32  # test_real*.py pads 32 px 'symmetric' on every side
HIGHLIGHT_THRESHOLD = 0.12  # α ramps from 0 at max_c B = 0.88 to 1 at 1 (official code; the paper's γ = 0.95 is 0.05)
BASIS_COMPONENTS = 11


def highlight_mask(b: torch.Tensor, threshold: float = HIGHLIGHT_THRESHOLD) -> torch.Tensor:
    """The soft over-exposure mask α (B, 1, H, W) in [0, 1] of a linear image b (B, 3, H, W), official op order."""
    peak = b.amax(dim=1, keepdim=True)
    return torch.clamp_max(torch.clamp_min((peak - 1.0) + threshold, 0.0) / threshold, 1.0)


def _pad_amounts(size: int, border: int) -> tuple[int, int]:
    extra = -(size + 2 * border) % SIZE_MULTIPLE
    return border + extra // 2, border + extra - extra // 2


class SingleHDR(nn.Module, GlobalBranchTiling):
    """The full SingleHDR model: ``dequantization``, ``linearization``, ``hallucination`` and ``refinement`` sub-nets.

    Args:
        g0, components: the inverse-response basis (1024,) and (1024, 11), see ``LinearizationNet``;
            ``response_basis`` records where it came from.
        refinement: keep the Refinement-Net (``test_real_refinement.py``); False gives the three-net model of
            ``test_real.py``, whose output is A.
        pad_border: symmetric padding on every side before the network (official 32); the pad also rounds the size up
            to a multiple of 32.
        highlight_threshold: width of α's ramp below 1 (official 0.12; the paper's γ = 0.95 is 0.05).
    """

    size_multiple = SIZE_MULTIPLE

    def __init__(
        self,
        g0: torch.Tensor,
        components: torch.Tensor,
        refinement: bool = True,
        pad_border: int = OFFICIAL_BORDER,
        response_basis: str = "",
        highlight_threshold: float = HIGHLIGHT_THRESHOLD,
    ):
        super().__init__()
        self.response_basis = response_basis  # where the basis came from (a path, or the project's asset)
        if pad_border < 0:
            raise ZooError(f"singlehdr: pad_border must be >= 0, got {pad_border}")
        if not 0 < highlight_threshold <= 1:
            raise ZooError(f"singlehdr: highlight_threshold must be in (0, 1], got {highlight_threshold}")
        self.pad_border = pad_border
        self.highlight_threshold = highlight_threshold
        self.dequantization = dequantization_net()
        self.linearization = LinearizationNet(g0, components)
        self.hallucination = HallucinationNet()
        self.refinement = refinement_net() if refinement else None

    def expand_highlights(self, b: torch.Tensor, taps: Taps = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A = b + α·relu(Hallucination-Net(b)): a positive residual only where b is near saturation.

        b: linear (B, 3, H, W), H and W multiples of 32. Returns (A, hal_raw, α)."""
        alpha = highlight_mask(b, self.highlight_threshold)
        hal_raw = self.hallucination(b, taps)
        return b + alpha * torch.relu(hal_raw), hal_raw, alpha

    def run(
        self, x: torch.Tensor, taps: Taps = None, refine: bool = True, invcrf: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The official graph on an input whose H and W are multiples of 32 (no padding).

        Returns deq_raw, C, invcrf (B, 1024), B, alpha (B, 1, H, W), hal_raw, A, and (with refinement) ref_raw; plus
        output = relu(ref_raw), or A without refinement (or with ``refine=False``, which skips the Refinement-Net).
        All image tensors are (B, 3, H, W)."""
        out: dict[str, torch.Tensor] = {"deq_raw": self.dequantization(x)}
        out["C"] = torch.clamp(out["deq_raw"], 0.0, 1.0)
        # a given curve (tiling: computed once on the whole image) replaces the Linearization-Net's on this input
        out["invcrf"] = self.linearization(out["C"], taps) if invcrf is None else invcrf
        out["B"] = apply_rf(out["C"], out["invcrf"])
        out["A"], out["hal_raw"], out["alpha"] = self.expand_highlights(out["B"], taps)
        if self.refinement is None or not refine:
            out["output"] = out["A"]
            return out
        out["ref_raw"] = self.refinement(torch.cat([out["A"], out["B"], out["C"]], dim=1))
        out["output"] = torch.relu(out["ref_raw"])
        return out

    def stages(self, x: torch.Tensor, pad_border: int | None = None, refine: bool = True) -> dict[str, torch.Tensor]:
        """``run`` on any size: pad symmetrically (``pad_border``, default the model's) to a multiple of 32, run, crop
        every image tensor back to x's H×W. The curve ``invcrf`` is computed on the padded image, as officially."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ZooError(f"singlehdr: expected an RGB batch (B, 3, H, W), got shape {tuple(x.shape)}")
        border = self.pad_border if pad_border is None else pad_border
        h, w = x.shape[-2:]
        top, bottom = _pad_amounts(h, border)
        left, right = _pad_amounts(w, border)
        if top or bottom or left or right:
            x = pad_symmetric(x, top, bottom, left, right)
        out = self.run(x, refine=refine)
        return {k: v if v.ndim != 4 else v[..., top : top + h, left : left + w] for k, v in out.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: sRGB LDR (B, 3, H, W) in [0, 1], any H, W → linear relative HDR (B, 3, H, W), ≥ 0."""
        return self.stages(x)["output"]

    # GlobalBranchTiling (zoo/tileable.py): the response curve is the global branch, computed once on the whole image.

    def tiling_frame(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The padding ``stages`` applies to the whole image, and the (top, left) offset of x inside it."""
        h, w = x.shape[-2:]
        top, bottom = _pad_amounts(h, self.pad_border)
        left, right = _pad_amounts(w, self.pad_border)
        framed = pad_symmetric(x, top, bottom, left, right) if top or bottom or left or right else x
        return framed, (top, left)

    def global_context(self, framed: torch.Tensor) -> torch.Tensor:
        """The inverse response curve (B, 1024) of the whole framed image, as ``run`` computes it."""
        return self.linearization(torch.clamp(self.dequantization(framed), 0.0, 1.0))

    def forward_with_context(self, window: torch.Tensor, invcrf: torch.Tensor) -> torch.Tensor:
        """``run`` on a window of the framed image (H, W multiples of 32) with the whole image's curve."""
        return self.run(window, invcrf=invcrf)["output"]


def build_singlehdr(
    response_basis: str | None = None,
    refinement: bool = True,
    pad_border: int = OFFICIAL_BORDER,
    highlight_threshold: float = HIGHLIGHT_THRESHOLD,
    vgg16_encoder: str | None = None,
    vgg16_convention: str = "torchvision",
) -> SingleHDR:
    """``zoo.create_model("singlehdr", ...)``. ``response_basis``: path to the official EMoR ``invemor.txt`` (needed by
    the official weights; a warning is logged if its sha256 differs from the official file) or None for the project's
    own basis. ``vgg16_encoder``: a VGG16 weights file (torchvision layout, input ``vgg16_convention``) to initialise
    the Hallucination-Net encoder for training (officially Places365 VGG16 weights). The other arguments are those of
    ``SingleHDR``."""
    from zoo.data.crf import OFFICIAL_INVEMOR_SHA256, load_inverse_basis

    basis = load_inverse_basis(response_basis, k=BASIS_COMPONENTS)
    if response_basis is not None and basis.sha256 != OFFICIAL_INVEMOR_SHA256:
        log.warning(
            "%s: sha256 %s… is not the official invemor.txt (%s…); official weights expect the official basis",
            response_basis,
            basis.sha256[:12],
            OFFICIAL_INVEMOR_SHA256[:12],
        )
    g0, components = torch.from_numpy(basis.g0), torch.from_numpy(basis.components)
    model = SingleHDR(g0, components, refinement, pad_border, basis.source or "project", highlight_threshold)
    if vgg16_encoder is not None:
        model.hallucination.load_vgg16(vgg16_encoder, vgg16_convention)
    return model
