"""The one entry point:
`python train.py [--config PATH] [--out DIR] [--resume DIR] [key=value ...]`.

Everything that can be wrong with the input (the config, an override, the env id, the device,
the checkpoint to resume) is checked while the run is built, before any file is written: such
a problem ends the program with exit code 2 and one line on stderr. Exit codes: 0 completed,
1 failed (a non-finite loss or parameter, or a bug), 2 bad input, 130 interrupted after a
checkpoint was written. The run directory it writes is described in README.md (Training).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from agents.checkpoint import load_latest
from training.config import (
    ConfigError,
    RunConfig,
    load_config,
    read_yaml,
    resume_config,
    save_config,
    to_dict,
)
from training.loop import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETED,
    Learner,
    Resume,
    StopFlag,
    seed_everything,
    train,
)
from training.registry import ALGORITHMS
from training.runtime import configure_torch, resolve_threads

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "sac_pendulum.yaml"


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when torch sees a GPU; asking for CUDA without one is bad input."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was requested but torch sees no CUDA GPU; "
                          "use device=cpu or device=auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_learner(config: RunConfig, device: torch.device, run_dir: Path) -> Learner:
    """Build the learner of `config.kind` (training.registry); raises ValueError on bad input."""
    video_dir = run_dir / "videos" if config.eval.video else None
    return ALGORITHMS[config.kind].learner(config, device, video_dir)


def run_name(config: RunConfig) -> str:
    task = (getattr(getattr(config, "env", None), "id", None)
            or getattr(getattr(config, "data", None), "name", ""))
    return config.wandb.name or (f"{config.kind}-{task}-s{config.seed}-"
                                 f"{time.strftime('%Y%m%d-%H%M%S')}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train SAC, REINFORCE, a VAE or a Bayesian network from a YAML config.",
        epilog="Overrides use dotted keys, e.g. agent.batch_size=512 seed=3 wandb.mode=disabled",
    )
    parser.add_argument("--config", type=Path,
                        help="YAML config (default: "
                             f"{DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])})")
    parser.add_argument("--out", type=Path, help="run directory (default: a fresh one under runs/)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last good checkpoint")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_args(argv)
    if args.resume and (args.config or args.out):
        parser.error("--resume takes the config and directory of the run it continues; "
                     "drop --config/--out")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = StopFlag()
    try:
        try:
            if args.resume:
                run_dir = args.resume
                if not (run_dir / "config.yaml").is_file():
                    raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
                config = resume_config(read_yaml(run_dir / "config.yaml"), args.overrides)
                config.threads = resolve_threads(config.threads)
                state, path = load_latest(run_dir / "checkpoints")
                if state["step"] >= config.total_steps:
                    print(f"{run_dir} already reached total_steps={config.total_steps}; "
                          "raise it with total_steps=N to train further", file=sys.stderr)
                    return EXIT_COMPLETED
                configure_torch(config.threads)
                learner = make_learner(config, resolve_device(config.device), run_dir)
                try:
                    learner.load_state_dict(state["learner"])
                except KeyError as e:  # written by a version whose learner kept other state
                    raise ConfigError(f"{path} lacks the {e} entry this version's {config.kind} "
                                      "learner restores; it was written by another version of "
                                      "reparam-rl and cannot be resumed") from None
                # tensor shapes that config.yaml does not give
                except (RuntimeError, ValueError) as e:
                    raise ConfigError(f"{path} does not fit {run_dir / 'config.yaml'} "
                                      f"(was it edited?): {str(e).splitlines()[0]}") from None
                resume: Resume | None = Resume.from_checkpoint(state)
                name = run_dir.name
                print(f"resuming {run_dir} from {path.name} (step {state['step']})",
                      file=sys.stderr)
            else:
                config = load_config(args.config or DEFAULT_CONFIG, args.overrides)
                config.threads = resolve_threads(config.threads)
                name = run_name(config)
                run_dir = args.out or Path("runs") / name
                if run_dir.exists() and any(run_dir.iterdir()):
                    raise ConfigError(f"run directory {run_dir} is not empty; continue it with "
                                      f"--resume {run_dir} or choose another --out")
                device = resolve_device(config.device)
                configure_torch(config.threads)
                seed_everything(config.seed)
                learner = make_learner(config, device, run_dir)
                resume = None
        # ConfigError, UnsafeCheckpointError, bad env id, missing file...
        except (ValueError, OSError) as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"error: {message}", file=sys.stderr)
            return EXIT_BAD_INPUT
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        return train(config, to_dict(config), learner, run_dir, name, resume, stop)
    finally:
        stop.restore()


if __name__ == "__main__":
    sys.exit(main())
