"""The sweep runner: every trial of a sweep is one `python train.py` run inside a Ray Tune trial.

Layout of a sweep directory DIR:

    DIR/sweep.yaml              the validated sweep config
    DIR/trials.json             every trial: name, variant, task, seed and its resolved run config
    DIR/trials/<name>/          each trial's run directory, exactly train.py's contract
    DIR/logs/<name>.log         each trial's stderr (train.py's messages and progress bar)
    DIR/tune/                   Ray Tune's own experiment state
    DIR/report.md, report.json, figures/   written at the end (training.report)

Faults. Each trial's train.py runs as a child of its Ray worker and dies with it
(PR_SET_PDEATHSIG), so a dead worker leaves no orphan writing into the run directory. Tune
retries the trial up to `max_failures` times, and a retry resumes the run from its last good
checkpoint (`train.py --resume`), never from step 0. If the driver dies, `--resume DIR` runs
every trial whose run directory does not say completed or failed, each from its checkpoint.
Ctrl-C (or SIGTERM) writes DIR/STOP: every trial sends SIGTERM to its train.py, which writes a
checkpoint and exits 130; the sweep then exits 130 and `--resume DIR` continues it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from agents.checkpoint import list_checkpoints
from training.config import ConfigError
from training.loop import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_FAILED, EXIT_INTERRUPTED, StopFlag
from training.sweep_config import (
    SweepConfig,
    Trial,
    check_search,
    cpus_to_threads,
    expand,
    load_sweep_config,
    resolve_trial,
    search_space,
    task_of,
)

TRAIN_PY = Path(__file__).resolve().parents[1] / "train.py"
STOP_FILE = "STOP"
POLL_S = 0.5
# How long a trial's train.py may take to write its checkpoint after SIGTERM (a full Humanoid
# replay buffer takes about 2 minutes to write: README, "Runs that survive").
STOP_GRACE_S = 600.0


# ---------------------------------------------------------------- the state on disk


def trial_status(run_dir: Path) -> str:
    """completed | failed | interrupted (summary.json's status), resumable (a checkpoint but no
    summary: the process died), or new."""
    summary = run_dir / "summary.json"
    checkpointed = bool(list_checkpoints(run_dir / "checkpoints"))
    if summary.is_file():
        status = str(json.loads(summary.read_text())["status"])
        # an interrupted run whose checkpoints are gone (results copied without them) starts over
        return "new" if status == "interrupted" and not checkpointed else status
    return "resumable" if checkpointed else "new"


def write_trials(out: Path, trials: list[Trial]) -> None:
    (out / "trials.json").write_text(
        json.dumps([dataclasses.asdict(t) for t in trials], indent=1) + "\n"
    )


def read_trials(out: Path) -> list[Trial]:
    path = out / "trials.json"
    if not path.is_file():
        return []
    return [Trial(**t) for t in json.loads(path.read_text())]


def read_sweep(out: Path, overrides: list[str] | None = None) -> SweepConfig:
    """The sweep config of directory `out`, with `dotted.key=value` overrides (ConfigError)."""
    path = out / "sweep.yaml"
    if not path.is_file():
        raise ConfigError(f"{out} is not a sweep directory (no sweep.yaml)")
    return load_sweep_config(path, overrides or [])


# ---------------------------------------------------------------- one trial in a Ray worker


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL me when the Ray worker that started me dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1  # linux/prctl.h
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _read_new_rows(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines of metrics.jsonl after byte `offset`, and the new offset."""
    if not path.is_file():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
    rows = [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]
    return rows, offset + end


def make_trainable() -> type:
    """The Tune trainable (a class, so Tune can stop it between results); built on demand so that
    importing this module does not import Ray."""
    from ray import tune

    class TrainPy(tune.Trainable):
        """Runs one trial's train.py as a child process; one Tune result per evaluation."""

        # sweep_dir, cpus, metric, trials, search: the kwargs of tune.with_parameters
        def setup(self, config: dict[str, Any], sweep_dir: str, cpus: float,  # type: ignore[override]
                  metric: str, trials: dict[str, Trial] | None = None,
                  search: dict[str, Any] | None = None) -> None:
            out = Path(sweep_dir)
            if trials is not None:  # a grid sweep: the trial is named in the config
                trial = trials[config["trial"]]
            else:  # a search: this sample's values on the base run config
                assert search is not None
                sweep: SweepConfig = search["sweep"]  # the trial's name is its sample's: sample003
                trial = resolve_trial(sweep, search["base"], self.trial_name, dict(config),
                                      sweep.seeds[0])
            self.trial, self.metric = trial, metric
            self.stop_file = out / STOP_FILE
            self.run_dir = out / "trials" / trial.name
            self.metrics_path = self.run_dir / "metrics.jsonl"
            self.offset = 0
            self.last: dict[str, Any] = {}
            self.process: subprocess.Popen[bytes] | None = None
            status = trial_status(self.run_dir)
            if status in ("completed", "failed") or self.stop_file.exists():
                return  # finished before, or the sweep is stopping: step() reports, nothing runs
            if status in ("resumable", "interrupted"):
                command = [sys.executable, str(TRAIN_PY), "--resume", str(self.run_dir)]
            else:
                if self.run_dir.exists():  # started but died before its first checkpoint
                    shutil.rmtree(self.run_dir)
                config_file = out / "configs" / f"{trial.name}.yaml"
                config_file.parent.mkdir(parents=True, exist_ok=True)
                config_file.write_text(yaml.safe_dump(trial.config, sort_keys=False))
                command = [sys.executable, str(TRAIN_PY), "--config", str(config_file),
                           "--out", str(self.run_dir)]
            env = os.environ | {"OMP_NUM_THREADS": str(cpus_to_threads(cpus)),
                                "PYTHONUNBUFFERED": "1"}
            log = out / "logs" / f"{trial.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as stderr:
                self.process = subprocess.Popen(command, stdout=stderr, stderr=stderr, env=env,
                                                preexec_fn=_die_with_parent)

        def step(self) -> dict[str, Any]:
            while True:
                rows, self.offset = _read_new_rows(self.metrics_path, self.offset)
                for row in rows:
                    self.last = row
                    if self.metric in row:
                        return {"global_step": row["global_step"], self.metric: row[self.metric],
                                "trial": self.trial.name}
                if self.process is None or self.process.poll() is not None:
                    return self._final()
                if self.stop_file.exists():
                    self._stop_child()
                time.sleep(POLL_S)

        def _final(self) -> dict[str, Any]:
            summary_path = self.run_dir / "summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
            code = None if self.process is None else self.process.returncode
            status = summary.get("status", "not started" if self.process is None else "failed")
            if code == EXIT_BAD_INPUT or (code not in (None, 0) and not summary):
                status = "failed"
            value = summary.get("eval_return_mean", self.last.get(self.metric, math.nan))
            return {"done": True, "status": status, "exit_code": code, "trial": self.trial.name,
                    "global_step": summary.get("total_steps", self.last.get("global_step", 0)),
                    self.metric: value, "message": summary.get("message", "")}

        def _stop_child(self) -> None:
            if self.process is None or self.process.poll() is not None:
                return
            self.process.send_signal(signal.SIGTERM)  # train.py: checkpoint, then exit 130
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            """Nothing for Tune to keep: the run's own checkpoints are in its run directory, and a
            retried trial resumes from them (setup)."""

        def load_checkpoint(self, checkpoint: Any) -> None:
            """See save_checkpoint."""

        def cleanup(self) -> None:  # Tune stops a trial (ASHA) or the experiment ends
            self._stop_child()

    return TrainPy


# ---------------------------------------------------------------- the driver


class SweepProgress:
    """A tqdm bar over all trials' steps: trials done / running / failed, as Tune reports them."""

    def __init__(self, total_steps: int, trials: int, finished: dict[str, int]) -> None:
        """`finished`: trial name -> its steps, for the trials an earlier run completed. They
        start the bar (tqdm's `initial`), so its rate and ETA count only this run's steps."""
        self.steps = dict(finished)
        self.bar = tqdm(total=total_steps, initial=sum(finished.values()), unit="step",
                        desc="sweep", dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
        self.counts = {"done": len(finished), "running": 0, "failed": 0, "trials": trials}
        self._show()

    def _show(self) -> None:
        c = self.counts
        self.bar.set_postfix_str(f"{c['done']}/{c['trials']} done, {c['running']} running, "
                                 f"{c['failed']} failed")

    def result(self, trial: str, global_step: int) -> None:
        self.bar.update(max(0, global_step - self.steps.get(trial, 0)))
        self.steps[trial] = max(self.steps.get(trial, 0), global_step)
        self._show()

    def started(self) -> None:
        self.counts["running"] += 1
        self._show()

    def ended(self, status: str) -> None:
        self.counts["running"] = max(0, self.counts["running"] - 1)
        if status == "completed":
            self.counts["done"] += 1
        elif status == "failed":
            self.counts["failed"] += 1
        self._show()

    def close(self) -> None:
        self.bar.close()


def _progress_callback(progress: SweepProgress) -> Any:
    from ray.tune import Callback

    class ProgressCallback(Callback):
        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any,
                           **info: Any) -> None:
            progress.started()

        def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                            result: dict[str, Any], **info: Any) -> None:
            progress.result(str(result.get("trial", trial.trial_id)),
                            int(result.get("global_step", 0)))
            if result.get("done"):
                progress.ended(str(result.get("status", "")))

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                           **info: Any) -> None:
            progress.ended("failed")

    return ProgressCallback()


def check_address(address: str) -> None:
    """Raise a one-line ConfigError unless `address` is `auto` or a `[ray://]host:port` that
    accepts a connection (Ray itself would retry an unreachable one for minutes)."""
    if address == "auto":
        return  # Ray finds the cluster of this machine, or says there is none at once
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address must be auto or host:port (e.g. 10.0.0.1:6379), "
                          f"got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConfigError(f"no Ray cluster answers at {address} ({e.strerror or e}): start one "
                          "with `ray start --head`, or leave out --address for a local "
                          "instance") from None


def start_ray(address: str | None, cpus_per_trial: float) -> None:
    """Join the cluster at `address`, or start a private local instance sized to this machine."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # the sweep's own handler stops trials well
    # Ray starts its workers at nice 15, where any other job on the machine starves a trial (seen
    # here: a MuJoCo trial at 23 steps/s beside a test run); a trial is the job, not background.
    os.environ.setdefault("RAY_worker_niceness", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.WARNING, "configure_logging": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local",
                 num_cpus=max(len(os.sched_getaffinity(0)), math.ceil(cpus_per_trial)),
                 object_store_memory=256 * 1024**2, **kwargs)


def prepare(config_path: Path, overrides: list[str], out: Path) -> tuple[SweepConfig, list[Trial]]:
    """Validate a new sweep and write DIR/sweep.yaml and DIR/trials.json; ConfigError if bad."""
    from training.sweep_config import load_sweep_config

    sweep = load_sweep_config(config_path, overrides)
    if sweep.search is not None:
        check_search(sweep)
        trials: list[Trial] = []
    else:
        trials = expand(sweep)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"sweep directory {out} is not empty; continue it with --resume {out} "
                          "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(yaml.safe_dump(dataclasses.asdict(sweep), sort_keys=False))
    write_trials(out, trials)
    return sweep, trials


def lock(out: Path) -> Any:
    """Hold DIR/.lock for this process's life (the kernel drops it when the process dies, even
    by SIGKILL): a second driver on the same sweep is refused instead of racing the first."""
    handle = open(out / ".lock", "a+")  # noqa: SIM115 (held open for the sweep)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"another sweep.py is running the sweep in {out}; "
                          "wait for it or stop it") from None
    return handle


def run(sweep: SweepConfig, trials: list[Trial], out: Path, address: str | None) -> int:
    """Run every trial not yet completed or failed; write the report; return the exit code."""
    from ray import tune

    out = out.resolve()
    (out / STOP_FILE).unlink(missing_ok=True)
    metric = sweep.search.metric if sweep.search else "eval/return_mean"
    resources = {"cpu": sweep.resources.cpus_per_trial, "gpu": sweep.resources.gpus_per_trial}
    statuses = {t.name: trial_status(out / "trials" / t.name) for t in trials}
    todo = [t for t in trials if statuses[t.name] not in ("completed", "failed")]
    if sweep.search is None and not todo:
        print(f"every trial of {out} has finished; writing the report", file=sys.stderr)
        return _finish(out, sweep)
    try:
        start_ray(address, sweep.resources.cpus_per_trial)
    except ConnectionError as e:  # no cluster for `auto`; a cluster that wants a token
        if not address:
            raise  # a private instance that did not start is no input problem
        hint = ("" if address == "auto" else "; a cluster `ray start` made (Ray >= 2.59) wants "
                "its token: set RAY_AUTH_MODE=token beside ~/.ray/auth_token, or run with "
                "--address auto on its head node")
        print(f"error: cannot join the Ray cluster at {address}: "
              f"{str(e).splitlines()[0].rstrip('.')}{hint}; nothing ran: "
              f"`python sweep.py --resume {out} --address ...` starts it", file=sys.stderr)
        return EXIT_BAD_INPUT
    trainable: Any = make_trainable()
    kwargs: dict[str, Any] = {"sweep_dir": str(out), "cpus": sweep.resources.cpus_per_trial,
                              "metric": metric}
    tune_config: dict[str, Any] = {}
    if sweep.search is None:
        kwargs["trials"] = {t.name: t for t in todo}
        param_space: dict[str, Any] = {"trial": tune.grid_search([t.name for t in todo])}
        total = sum(t.config["total_steps"] for t in trials)
        progress = SweepProgress(total, len(trials),
                                 {t.name: t.config["total_steps"] for t in trials if t not in todo})
    else:
        from optuna.samplers import TPESampler
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        search = sweep.search
        base = check_search(sweep)
        kwargs["search"] = {"sweep": sweep, "base": base}
        param_space = search_space(search)
        total_steps = int(
            resolve_trial(sweep, base, "search", {}, sweep.seeds[0]).config["total_steps"]
        )
        scheduler = None
        if search.scheduler.name == "asha":
            scheduler = ASHAScheduler(time_attr="global_step", max_t=total_steps,
                                      grace_period=search.scheduler.grace_period,
                                      reduction_factor=search.scheduler.reduction_factor)
        tune_config = {"search_alg": OptunaSearch(sampler=TPESampler(seed=sweep.seeds[0])),
                       "scheduler": scheduler, "num_samples": search.samples,
                       "metric": metric, "mode": search.mode}
        progress = SweepProgress(total_steps * search.samples, search.samples, {})
    samples: dict[str, str] = {}

    def name_trial(t: Any) -> str:  # Tune's name for a trial: ours, or sample<N> in a search
        if "trial" in t.config:
            return str(t.config["trial"])
        return samples.setdefault(t.trial_id, f"sample{len(samples):03d}")

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, **kwargs), resources),
        param_space=param_space,
        tune_config=tune.TuneConfig(trial_name_creator=name_trial, trial_dirname_creator=name_trial,
                                    **tune_config),
        run_config=tune.RunConfig(name=f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=str(out / "tune"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                                  callbacks=[_progress_callback(progress)]),
    )
    # Ctrl-C / SIGTERM: DIR/STOP tells every trial to checkpoint and stop; a second Ctrl-C aborts
    interrupt = StopFlag("every trial writes a checkpoint and stops (press Ctrl-C again to abort "
                         "without checkpoints)", on_stop=(out / STOP_FILE).touch)
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:
        progress.close()
        print(f"aborted without checkpoints; `python sweep.py --resume {out}` continues from the "
              "last periodic ones", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        interrupt.restore()
        import ray

        ray.shutdown()
    progress.close()
    for result in (grid[i] for i in range(len(grid))):
        if result.error is not None:  # the trial's worker kept dying (max_failures), or a bug here
            first = str(result.error).strip().splitlines()
            print(f"trial {result.path.rsplit('/', 1)[-1]} errored in Ray: "
                  f"{first[-1] if first else ''}", file=sys.stderr)
    if sweep.search is not None:
        _record_search(out, grid, metric, sweep.search.mode)
        if not (out / "best_config.yaml").is_file():
            _finish(out, sweep)
            print("error: no search trial reported the metric; see the logs in "
                  f"{out / 'logs'}", file=sys.stderr)
            return EXIT_FAILED
    if interrupt.signal is not None:
        print("interrupted; every trial has its checkpoint. "
              f"Continue with: python sweep.py --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _finish(out, sweep)


def _record_search(out: Path, grid: Any, metric: str, mode: str) -> None:
    """Write the sampled trials to trials.json, every sample's values and last result to
    DIR/search.json, and the best one as DIR/best_config.yaml: the best `metric` among the
    samples that trained furthest (ASHA stops the others earlier, on a smaller budget)."""
    results = [r for r in (grid[i] for i in range(len(grid))) if r.metrics and "trial" in r.metrics]
    trials, samples = [], []
    for r in sorted(results, key=lambda r: r.metrics["trial"]):
        name = r.metrics["trial"]
        config = yaml.safe_load((out / "trials" / name / "config.yaml").read_text())
        trials.append(Trial(name=name, variant=name.split("-", 1)[0], task=task_of(config),
                            seed=int(config["seed"]), config=config))
        samples.append({"trial": name, "values": dict(r.config),
                        "global_step": r.metrics["global_step"], metric: r.metrics.get(metric),
                        "status": "completed" if r.metrics["global_step"] >= config["total_steps"]
                        else "stopped early"})
    write_trials(out, trials)
    (out / "search.json").write_text(json.dumps({"metric": metric, "mode": mode,
                                                 "samples": samples}, indent=1) + "\n")
    finite = [s for s in samples if isinstance(s[metric], int | float) and math.isfinite(s[metric])]
    if not finite:
        return
    furthest = max(s["global_step"] for s in finite)
    best = (max if mode == "max" else min)((s for s in finite if s["global_step"] == furthest),
                                           key=lambda s: s[metric])
    config = yaml.safe_load((out / "trials" / best["trial"] / "config.yaml").read_text())
    config["wandb"] |= {"name": None, "group": None, "tags": []}
    header = (f"# The best configuration of sweep {out.name}: trial {best['trial']}, {metric} = "
              f"{best[metric]:.6g} at step {best['global_step']} (values: {best['values']}).\n"
              f"# Train it: python train.py --config {out / 'best_config.yaml'}\n")
    (out / "best_config.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))


def _finish(out: Path, sweep: SweepConfig) -> int:
    from training.report import write_report

    trials = read_trials(out)
    statuses = [trial_status(out / "trials" / t.name) for t in trials]
    for t, s in zip(trials, statuses, strict=True):
        if s == "failed":
            message = json.loads(
                (out / "trials" / t.name / "summary.json").read_text()).get("message", "")
            print(f"trial {t.name} failed: {message}", file=sys.stderr)
    write_report(out, sweep.report)
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    if sweep.search is None and any(s not in ("completed", "failed") for s in statuses):
        return EXIT_INTERRUPTED
    return EXIT_FAILED if "failed" in statuses else EXIT_COMPLETED
