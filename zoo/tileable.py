"""The tiling protocol a model with a global branch implements (explicitly, by subclassing) to be tiled.

A purely local network (HDRUNet, the two-stage net) needs nothing: the tiler frames the image by replicate-padding it
to the spec's ``size_multiple`` and runs the model on windows. A network whose output depends on the whole image
(SingleHDR: the inverse camera response is estimated from the whole frame) cannot be tiled by cutting its input, since
each window would see another global value; it tiles only by implementing ``GlobalBranchTiling``, and otherwise runs
untiled (``zoo.tiling.plan_tiles``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class GlobalBranchTiling(Protocol):
    """``forward_with_context(framed, global_context(framed))``, cropped at the offset ``tiling_frame`` returns, must
    equal ``forward(x)``; then windows of ``framed`` computed with one shared context reproduce the untiled pass."""

    def tiling_frame(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The padding the forward applies to the whole image (B, 3, H, W) → (B, 3, H', W'), H' and W' multiples of
        ``size_multiple``, and the (top, left) offset of x inside it."""
        ...

    def global_context(self, framed: torch.Tensor) -> Any:
        """The global branch, computed once on the whole framed image."""
        ...

    def forward_with_context(self, window: torch.Tensor, context: Any) -> torch.Tensor:
        """The network on an aligned window of the framed image (no padding of its own), with ``context`` in place of
        its own global branch."""
        ...
