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

# Offscreen OpenGL for MuJoCo videos (agents.play --video, eval.video) on a machine without a
# display: EGL with Mesa's drivers (envs/video.py falls back to OSMesa: libosmesa6). Installed
# only where missing, and only as root; anyone else is told the command.
gl_packages="libegl1 libegl-mesa0 libgl1-mesa-dri"
if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
  missing=""
  for package in $gl_packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
  done
  if [[ -n "$missing" && $(id -u) -eq 0 ]]; then
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; } ||
      echo "setup: could not install$missing; MuJoCo videos need them" >&2
  elif [[ -n "$missing" ]]; then
    echo "setup: MuJoCo videos need Debian's$missing: sudo apt-get install$missing" >&2
  fi
fi
