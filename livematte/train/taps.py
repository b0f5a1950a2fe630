"""What the losses need that E2EHIMOutput does not carry: the per-query segmentation logits of the
united guidance, and the alpha before its clamp to [0, 1].

Forward hooks keep the perception network's kernels, the context features F_dc and the alpha
head's 64-channel features of the last forward pass; the two maps are recomputed from them with
the network's own per-query 1x1 convolution, with gradients. The alpha loss uses the unclamped
alpha because the clamp has no gradient outside [0, 1]: a query whose alpha drifted below 0 where
a person is would never recover. Needs the alpha head unfused (its features exist only then).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from livematte.model.e2ehim import E2EHIM
from livematte.model.layers import dynamic_conv


@dataclass(frozen=True)
class Taps:
    seg_logits: Tensor  # (B, Q, H/8, W/8)
    raw_alpha: Tensor  # (B, Q, H, W), unclamped


class TapRecorder:
    """Call after a forward pass for that pass's Taps."""

    def __init__(self, model: E2EHIM) -> None:
        if model.alpha.fused:
            raise ValueError("the alpha head must run unfused for training: set model.alpha.fused = False")
        self._kept: dict[str, object] = {}
        model.perception.register_forward_hook(self._keeper("kernels"))
        model.context.register_forward_hook(self._keeper("context"))
        model.alpha.conv2.register_forward_hook(self._keeper("alpha_features"))

    def _keeper(self, key: str):
        def keep(module, inputs, output) -> None:
            self._kept[key] = output

        return keep

    def __call__(self) -> Taps:
        if len(self._kept) != 3:
            raise RuntimeError("no forward pass recorded: run the model before asking for its taps")
        k, (_, context), features = self._kept["kernels"], self._kept["context"], self._kept["alpha_features"]
        self._kept = {}
        return Taps(dynamic_conv(context, k.seg, k.seg_bias), dynamic_conv(features, k.alpha, k.alpha_bias))
