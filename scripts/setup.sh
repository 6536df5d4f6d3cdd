#!/usr/bin/env bash
# Install the library into the active Python environment.
#   bash scripts/setup.sh          # library + MuJoCo tasks
#   bash scripts/setup.sh --dev    # + test, lint and reference (stable-baselines3) tools
# torch comes first: a torch that is already installed (a CUDA build, say) is kept; otherwise
# torch==$TORCH_VERSION is installed, from $TORCH_INDEX_URL when set (on a machine without a
# local CPU wheel, point it at PyTorch's CPU index). Only then is the project installed, and
# its wide `torch>=2.3` requirement is already satisfied, so nothing resolves a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
extras="mujoco"
if [[ "${1:-}" == "--dev" ]]; then extras="mujoco,dev"; fi

if "$PY" -c "import torch" 2>/dev/null; then
  echo "setup: keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  "$PY" -m pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION:-2.13.0}"
fi
"$PY" -m pip install -e ".[${extras}]"
