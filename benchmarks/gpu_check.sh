#!/usr/bin/env bash
# The GPU check, one script of under 8 minutes: install the carried wheels, run the `cuda` tests
# (tests/cuda/) and time SAC on device=cuda (ours compiled, eager, and compiled with inductor's
# CUDA graphs; SB3 and sbx on the same GPU), writing what it finds under $OUT (default
# benchmarks/results/gpu_check/).
#
#   scripts/gpu_wheels.sh 3.12      # here, with network: the wheels into .whl/ (gitignored)
#   benchmarks/gpu_check.sh         # there: carry .whl; no network needed
#   benchmarks/gpu_check.sh --dry-run   # check the wheel folder and print the commands
# GPU_WHEELS names another wheel folder, PYTHON another python, OUT the output folder.
#
# Where torch sees no GPU it runs the CPU parts briefly instead (the cuda tests skip with their
# reason; a short CPU benchmark of ours eager against SB3 on Pendulum-v1), which is what
# tests/benchmarks/test_gpu_check.py runs.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out="${OUT:-$repo/benchmarks/results/gpu_check}"
python="${PYTHON:-python3}"
dry_run=0
[[ "${1:-}" == "--dry-run" ]] && dry_run=1
[[ $# -gt 0 && $dry_run -eq 0 ]] && { echo "usage: benchmarks/gpu_check.sh [--dry-run]" >&2; exit 2; }

# the wheels: every pin of benchmarks/gpu_wheels.txt, for this python, if the folder was carried
wheel_dir="${GPU_WHEELS:-.whl}"
wheels=()
if [[ -d "$wheel_dir" ]]; then
  tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  missing=0
  while read -r pin; do
    name=${pin%%==*}; version=${pin##*==}
    pattern="$(echo "$name" | tr 'A-Z-' 'a-z_')-$version-"
    found=$(ls "$wheel_dir" | tr 'A-Z' 'a-z' | grep -F "$pattern" | grep -E "py3|$tag" | head -1)
    [[ -z "$found" ]] && { echo "missing wheel: $pin for $tag (run scripts/gpu_wheels.sh)" >&2; missing=1; }
  done < <(grep -v '^#' benchmarks/gpu_wheels.txt)
  [[ $missing -eq 1 ]] && exit 2
  wheels=("$wheel_dir"/*.whl)
  echo "wheels: ${#wheels[@]} in $wheel_dir for $tag"
fi

site=/tmp/gpu_check_site
install=("$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
         --target "$site" "${wheels[@]}")
tests=("$python" -m pytest tests/cuda -m cuda -rs -p no:cacheprovider)
if "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  gpu=1
  bench=("$python" benchmarks/sac_throughput.py --config configs/sac_halfcheetah.yaml --device cuda
         --impl ours ours-eager ours-cudagraphs sb3 sbx --rounds 1 --steps 1500 3000 --timeout 150
         --profile-steps 100 --json "$out/sac_throughput_cuda.json")
  budget=(timeout 330)
else
  gpu=0
  bench=("$python" benchmarks/sac_throughput.py --config configs/sac_pendulum.yaml --device cpu
         --impl ours-eager sb3 --rounds 1 --steps 150 450 --learning-starts 100 --timeout 120
         --profile-steps 10 --json "$out/sac_throughput_cpu_fallback.json"
         agent.hidden_sizes=[32,32] agent.batch_size=32)
  budget=(timeout 300)
fi

if [[ $dry_run -eq 1 ]]; then
  [[ ${#wheels[@]} -gt 0 ]] && echo "would run: ${install[*]}"
  echo "would run: ${tests[*]}"
  echo "would run: ${bench[*]}"
  exit 0
fi

mkdir -p "$out"
if [[ ${#wheels[@]} -gt 0 ]]; then
  "${install[@]}" || { echo "installing the wheels failed" >&2; exit 1; }
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
[[ -d "$site" ]] && export PYTHONPATH="$PYTHONPATH:$site"  # after the checkout: ours wins
export PYTHONUNBUFFERED=1 MUJOCO_GL=egl
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())'
} | tee "$out/machine.txt"

status=0
echo "== cuda tests"
timeout 150 "${tests[@]}" 2>&1 | tee "$out/cuda_tests.txt"
test_status=${PIPESTATUS[0]}
# pytest exits 5 when every test was deselected or skipped: without a GPU that is expected
[[ $test_status -ne 0 && ! ($gpu -eq 0 && $test_status -eq 5) ]] && status=1
echo "== throughput ($([[ $gpu -eq 1 ]] && echo cuda || echo 'no GPU: the brief CPU fallback'))"
"${budget[@]}" "${bench[@]}" 2>&1 | tee "$out/sac_throughput.txt"
[[ ${PIPESTATUS[0]} -ne 0 ]] && status=1
echo "gpu_check: $([[ $status -eq 0 ]] && echo passed || echo FAILED); figures in $out"
exit $status
