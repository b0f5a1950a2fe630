"""Per-pixel kernels: CUDA C sources loaded with CuPy, each with a CPU twin computing the same function."""
