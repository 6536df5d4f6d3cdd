"""Many runs:
`python sweep.py --config configs/sweeps/NAME.yaml [--out DIR] [--address ADDR] [key=value ...]`,
`python sweep.py --resume DIR [--address ADDR]`,
`python sweep.py --report DIR [--json OUT] [report.reps=N ...]`.

Each trial is exactly a `python train.py` run (its resolved config, its run directory under
DIR/trials/), run in a Ray Tune trial on a private local Ray instance, or on the cluster at
`--address` (`auto` or host:port). Overrides are dotted keys of the sweep config
(`seeds=[0,1]`, `overrides.total_steps=5000`); `--report` takes only `report.*` ones (the
bootstrap draws of that report). Exit codes as train.py's: 0 every trial
completed, 1 a trial failed, 2 bad input (one line on stderr, nothing started), 130 interrupted
(continue with --resume). The layout of DIR is described in training/sweep.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.sweep import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETED,
    check_address,
    lock,
    prepare,
    read_sweep,
    read_trials,
    run,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a sweep of train.py runs (seeds x tasks x variants, or a search) "
                    "on Ray Tune.",
        epilog="Overrides use dotted keys of the sweep config, e.g. seeds=[0,1] "
               "overrides.total_steps=5000",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", type=Path,
                      help="sweep config (YAML), e.g. configs/sweeps/mujoco_100k.yaml")
    what.add_argument("--resume", type=Path, metavar="DIR", help="finish the sweep in DIR")
    what.add_argument("--report", type=Path, metavar="DIR",
                      help="(re)write the report of the sweep in DIR")
    parser.add_argument("--out", type=Path, help="sweep directory (default: sweeps/<name>)")
    parser.add_argument("--address", help="join this Ray cluster (auto, or host:port) "
                                          "instead of a local instance")
    parser.add_argument("--json", type=Path, help="with --report: also write report.json here")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="sweep config overrides")
    args = parser.parse_args(argv)
    if args.out and not args.config:
        parser.error("--out goes with --config; --resume and --report take the sweep's own DIR")
    if args.resume and args.overrides:
        parser.error("overrides go with --config (--resume continues the sweep as configured)")
    not_report = [o for o in args.overrides if not o.startswith("report.")]
    if args.report and not_report:
        parser.error("with --report, overrides may set report.* only (e.g. report.reps=1000); "
                     f"got {' '.join(not_report)}")
    if args.address and args.report:
        parser.error("--address goes with --config or --resume (--report runs no trials)")
    if args.json and not args.report:
        parser.error("--json goes with --report")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.address:
            check_address(args.address)
        if args.report:
            from training.report import write_report

            sweep = read_sweep(args.report, args.overrides)
            write_report(args.report, sweep.report, args.json)
            print((args.report / "report.md").read_text())
            return EXIT_COMPLETED
        if args.resume:
            out = args.resume
            sweep = read_sweep(out)
            trials = read_trials(out)
        else:
            from training.sweep_config import load_sweep_config

            name = load_sweep_config(args.config, args.overrides).name
            out = args.out or Path("sweeps") / name
            sweep, trials = prepare(args.config, args.overrides, out)
        held = lock(out)  # noqa: F841 (released when this process ends)
    except (ValueError, OSError) as e:  # ConfigError, a missing file...
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run(sweep, trials, out, args.address)


if __name__ == "__main__":
    sys.exit(main())
