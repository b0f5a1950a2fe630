"""Linear layers that, in fp32 CPU inference, multiply through oneDNN with their weight packed once.

oneDNN's matrix product with the weight reordered to its blocked layout is 10-25 % faster here than
MKL's sgemm, which nn.Linear calls, on most of Swin's shapes (e.g. 7.2 -> 5.5 ms for 14080 tokens,
384 -> 96 channels). The packing depends on the number of rows, so one is kept per row count
(KeptWeights). Elsewhere (gradients, autocast, exports, CUDA, a torch without oneDNN) nn.Linear's own
path runs. A GELU after the product (`gelu=True`) is applied inside oneDNN's product on that path,
while the rows are in cache: Swin's first MLP layer at 88 x 160 tokens, 96 -> 384, 6.7 ms against 7.7 ms
for the product and a separate GELU.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livematte.model.kept import KeptWeights, eager_cpu_inference


@functools.cache
def packed_ready() -> bool:
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class Linear(nn.Linear):
    """nn.Linear, followed by the exact (erf) GELU when `gelu`."""

    def __init__(self, *args, gelu: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gelu = gelu
        self.kept = KeptWeights()

    def forward(self, x: Tensor) -> Tensor:
        rows = x.numel() // x.shape[-1]
        if not (rows and packed_ready() and eager_cpu_inference(x) and self.kept.keeps(self.weight)):
            out = super().forward(x)
            return F.gelu(out) if self.gelu else out
        packed = self.kept.get(self.weight, f"packed {rows}",
                               lambda: torch.ops.mkldnn._reorder_linear_weight(self.weight, rows))
        activation, algorithm = ("gelu", "none") if self.gelu else ("none", "")
        out = torch.ops.mkldnn._linear_pointwise(x.reshape(rows, x.shape[-1]), packed, self.bias, activation, [],
                                                 algorithm)
        return out.reshape(*x.shape[:-1], out.shape[-1])
