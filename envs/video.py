"""Filming an env without a display: an offscreen renderer that works here, frames into an MP4.

MuJoCo tasks render through OpenGL, and on a headless machine (no X server, maybe no GPU) only
an offscreen platform works: EGL (libEGL with Mesa's software or a GPU driver) or OSMesa.
gymnasium picks the platform from `MUJOCO_GL` when an env first renders, and tries GLFW (a
window) first when it is unset, which fails without a display. `prepare_rendering` therefore
sets `MUJOCO_GL` before that to the first platform that really renders a frame here, probed in
a child process (a failed EGL start can leave PyOpenGL bound to the wrong platform). Classic
control tasks (Pendulum-v1) draw their frames with pygame, on a surface that needs no display.

The MP4 is H.264 in yuv420p (plays in browsers and in W&B), written by imageio's ffmpeg plugin
(imageio-ffmpeg ships the ffmpeg binary), one frame at a time so an episode never sits in memory.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

from envs.make import is_mujoco_task

# Offscreen OpenGL platforms for MuJoCo, in the order tried: EGL is the faster of the two.
GL_BACKENDS = ("egl", "osmesa")
# Debian packages that provide each platform (scripts/setup.sh installs the EGL ones).
GL_PACKAGES = {"egl": "libegl1 libegl-mesa0 libgl1-mesa-dri", "osmesa": "libosmesa6"}

# Renders one frame of an empty MuJoCo model with the platform named by MUJOCO_GL.
_PROBE = (
    "import mujoco\n"
    "model = mujoco.MjModel.from_xml_string('<mujoco/>')\n"
    "with mujoco.Renderer(model, 16, 16) as renderer:\n"
    "    renderer.update_scene(mujoco.MjData(model))\n"
    "    renderer.render()\n"
)
_PROBE_TIMEOUT_S = 120


class RenderError(ValueError):
    """This machine cannot render the task offscreen; the message says what to install."""


def _probe(backend: str) -> str | None:
    """None when MuJoCo renders a frame with `backend` here, else the reason (one line)."""
    env = {**os.environ, "MUJOCO_GL": backend}
    env.pop("PYOPENGL_PLATFORM", None)  # mujoco.egl / mujoco.osmesa set it to match
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                              text=True, timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"no frame within {_PROBE_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def choose_gl_backend(candidates: tuple[str, ...] = GL_BACKENDS) -> str:
    """Set `MUJOCO_GL` to the first of `candidates` that renders here (or check the user's own
    setting) and return it; raise RenderError naming the packages to install when none does."""
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        reason = _probe(chosen)
        if reason is not None:
            raise RenderError(f"MUJOCO_GL={chosen} cannot render offscreen here ({reason}); "
                              f"unset it to let reparam-rl try {' then '.join(candidates)}")
        return chosen
    reasons = {}
    for backend in candidates:
        reason = _probe(backend)
        if reason is None:
            os.environ["MUJOCO_GL"] = backend
            return backend
        reasons[backend] = reason
    tried = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
    packages = " or ".join(f"{GL_PACKAGES[name]} ({name})"
                           for name in candidates if name in GL_PACKAGES)
    raise RenderError(f"MuJoCo cannot render offscreen on this machine ({tried}); install Debian's "
                      f"{packages}, e.g. as root: bash scripts/setup.sh")


def prepare_rendering(env_id: str) -> str:
    """Make `env_id`'s rgb_array frames work headless and return what draws them (the MuJoCo GL
    platform, or pygame); raise RenderError saying what is missing."""
    if is_mujoco_task(env_id):
        return choose_gl_backend()
    if importlib.util.find_spec("pygame") is None:
        raise RenderError(f"rendering {env_id} needs pygame: pip install pygame "
                          '(or pip install "gymnasium[classic-control]")')
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame's greeting on import
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # frames go to a surface, no window
    return "pygame"


def frames_per_second(env: gym.Env) -> float:
    """The env's real-time frame rate (`render_fps`: 1 / dt for MuJoCo tasks, 30 for Pendulum)."""
    return float(env.metadata.get("render_fps") or 30)


class VideoWriter:
    """An H.264 MP4 written frame by frame: `append` (H, W, 3) uint8 frames, then `close`."""

    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as imageio

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.frames = path, 0
        # yuv420p needs even sides: macro_block_size=2 rounds odd ones up instead of to 16.
        self._writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps,
                                          codec="libx264", pixelformat="yuv420p",
                                          macro_block_size=2)

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)
        self.frames += 1

    def capture(self, env: gym.Env) -> None:
        """Append the env's current frame (an env made with render_mode="rgb_array")."""
        frame = env.render()
        if not isinstance(frame, np.ndarray):
            raise RenderError(f"{env.spec.id if env.spec else env} rendered "
                              f"{type(frame).__name__}, not an RGB array: "
                              'make it with render_mode="rgb_array"')
        self.append(frame)

    def close(self) -> None:
        self._writer.close()
