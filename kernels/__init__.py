"""Per-pixel kernels: CUDA C sources loaded with CuPy, each with a CPU twin computing the same function.

The CPU twins release the GIL (numba nogil): the pipeline's other threads (decoding, encoding,
tracking) keep running while a kernel works.

Every function takes NumPy arrays (CPU twin, numba), CuPy arrays (CUDA kernel) or torch tensors
(CPU -> NumPy view, CUDA -> CuPy by DLPack) and returns the kind it was given.
"""

from kernels._cuda import gpu_available
from kernels.blur import background_blur, masked_blur
from kernels.composite import Background, Effect, PersonLayers, Scene, composite, isolated_layer, person_boxes
from kernels.feather import feather
from kernels.letterbox import Letterbox, input_size_for
from kernels.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess
from kernels.temporal import Evidence, Fused, FusionParams, Motion, frame_changes, fuse_causal, fuse_exact, track_motion

__all__ = [
    "Background", "Effect", "Evidence", "Fused", "FusionParams", "IMAGENET_MEAN", "IMAGENET_STD", "Letterbox",
    "Motion", "PersonLayers", "Scene", "composite", "feather", "frame_changes", "fuse_causal", "fuse_exact",
    "gpu_available", "background_blur", "input_size_for", "isolated_layer", "masked_blur", "person_boxes",
    "preprocess", "track_motion",
]
