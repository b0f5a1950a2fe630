"""E2E-HIM in PyTorch behind the Engine protocol, on CPU or CUDA (fp16 autocast, CUDA graphs).

Frames are uploaded once as uint8 and pre-processed on the device (model/input.py's preprocess, a
torch stand-in for the kernels/ pre-process kernel); post-processing stays on the device too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor

from livematte.engine.network_engine import NetworkEngine
from livematte.engine.postprocess import PostprocessConfig
from livematte.model.build import Weights, build_model
from livematte.model.e2ehim import E2EHIM, E2EHIMOutput


class CapturedForward:
    """The model's forward for one input shape recorded as a CUDA graph: a call is one copy and one launch.

    Python and kernel-launch overhead disappear, which matters at batch 1 where the GPU would otherwise
    wait for the CPU. Inputs are copied into a static buffer; the outputs are static buffers overwritten
    by the next call (post-processing copies what it keeps before then).
    """

    def __init__(self, model: E2EHIM, shape: tuple[int, ...], device: torch.device,
                 memory_format: torch.memory_format, autocast_dtype: torch.dtype | None) -> None:
        self.input = torch.zeros(shape, device=device).contiguous(memory_format=memory_format)
        enabled = autocast_dtype is not None
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.autocast("cuda", dtype=autocast_dtype, enabled=enabled):
            for _ in range(3):  # cuDNN/cuBLAS pick and allocate outside the capture, as capture requires
                model(self.input)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # the autocast weight cache would hold casts made during capture only: disabled, the casts are replayed
        with torch.cuda.graph(self.graph), torch.autocast("cuda", dtype=autocast_dtype, enabled=enabled,
                                                          cache_enabled=False):
            self.output: E2EHIMOutput = model(self.input)

    def __call__(self, image: Tensor) -> E2EHIMOutput:
        self.input.copy_(image)
        self.graph.replay()
        return self.output


class TorchEngine(NetworkEngine):
    """E2E-HIM with torch: fp16 autocast on CUDA, inference_mode, warm-up.

    weights: see build_model. input_size: see NetworkEngine.
    channels_last: None chooses: NCHW for fp32 on the CPU, whose large convolutions NNPACK computes
    and which takes NCHW only (livematte/model/conv.py), channels_last everywhere else.
    bf16: bfloat16 autocast on CPU, about twice as fast on CPUs with native bf16 (AVX512-BF16, AMX)
    but no longer the official function to 1e-5 (alpha within about 1e-2); off by default.
    cuda_graphs: on CUDA, record the forward once per batch size as a CUDA graph and replay it.
    """

    def __init__(self, weights: Weights, device: str = "cpu", input_size: tuple[int, int] | None = None,
                 fp16: bool = True, channels_last: bool | None = None,
                 postprocess_config: PostprocessConfig = PostprocessConfig(), warmup: bool = True,
                 bf16: bool = False, cuda_graphs: bool = False) -> None:
        device_ = torch.device(device)
        if device_.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA device; use device='cpu'")
        if cuda_graphs and device_.type != "cuda":
            raise ValueError("cuda_graphs needs device='cuda'; CUDA graphs do not exist on the CPU")
        if device_.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its algorithms once
        self.autocast_dtype = (torch.float16 if fp16 and device_.type == "cuda"
                               else torch.bfloat16 if bf16 and device_.type == "cpu" else None)
        if channels_last is None:
            channels_last = device_.type != "cpu" or self.autocast_dtype is not None
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = build_model(weights).to(device_).eval().to(memory_format=memory_format)
        self.warmup = warmup
        self.cuda_graphs = cuda_graphs
        self._graphs: dict[tuple[int, ...], CapturedForward] = {}
        super().__init__(device_, input_size, postprocess_config, memory_format)

    @property
    def precision(self) -> str:
        return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.autocast_dtype, "fp32")

    def _start(self) -> None:
        """First calls pay for kernel selection and allocation (and graph capture); do it before real frames."""
        if not self.warmup:
            return
        image = torch.zeros(1, 3, *self.input_size, device=self.device).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            for _ in range(1 if self.device.type == "cpu" or self.cuda_graphs else 3):
                self._forward(image)

    def _forward(self, image: Tensor) -> E2EHIMOutput:
        if self.cuda_graphs:
            shape = tuple(image.shape)
            if shape not in self._graphs:
                self._graphs[shape] = CapturedForward(self.model, shape, self.device, self.memory_format,
                                                      self.autocast_dtype)
            return self._graphs[shape](image)
        with self._autocast():
            return self.model(image)

    def _autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)
