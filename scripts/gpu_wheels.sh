#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.sh needs into .whl/ (gitignored), for a GPU machine
# without network: `scripts/gpu_wheels.sh [PYTHON_VERSION]` (default 3.12, the GPU image's).
# Binary wheels only, no dependencies (benchmarks/gpu_wheels.txt lists every one needed).
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.12}"
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
    manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
mkdir -p .whl
grep -v '^#' benchmarks/gpu_wheels.txt | xargs python -m pip download --quiet --no-deps \
  --only-binary=:all: --implementation cp --python-version "$version" "${platforms[@]}" -d .whl
ls -s --block-size=K .whl
