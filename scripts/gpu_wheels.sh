#!/usr/bin/env bash
# The wheels a CUDA machine's image lacks for bench/gpu_check.py (it has torch, CuPy, numba, OpenCV, scipy,
# rich, pyyaml, safetensors, aiohttp, pytest), for CPython 3.12 on manylinux x86-64, into .gpu-wheels/
# (git-ignored). Versions are those this project is tested with; --no-deps, so every need is named here.
#
#   bash scripts/gpu_wheels.sh
# then, on the CUDA machine, from the repository root:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu-wheels/*.whl \
#     && PYTHONPATH=/tmp/site:. python3 bench/gpu_check.py --out OUT
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
  av==18.1.0
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  platformdirs==4.14.9
  aiortc==1.16.0 aioice==0.13.0 pylibsrtp==1.0.0 pyee==13.0.1 google-crc32c==1.9.0 pyopenssl==26.4.0
  cryptography==50.0.2 dnspython==2.9.2 ifaddr==0.2.0 cffi==2.1.1 pycparser==3.12
)
PLATFORMS=()
for tag in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64 \
           manylinux_2_34_x86_64 manylinux_2_35_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$tag")
done
mkdir -p .gpu-wheels
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none "${PLATFORMS[@]}" -d .gpu-wheels "${WHEELS[@]}"
du -sh .gpu-wheels
