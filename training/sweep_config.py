"""Sweep configuration: which train.py runs a study is made of.

A sweep config names base run configs (`runs`), `seeds`, `overrides` for every trial, an
optional `grid` (one variant per combination of its values) or a `search` (distributions
sampled by Optuna, trials stopped early by ASHA), the resources of one trial and the retries of
a trial whose worker died. `expand` turns it into trials, each a fully resolved and validated
run config, so every problem (an unknown key, a bad value in one combination) is found before
anything starts.

    name: mujoco-100k
    runs: [configs/sac_halfcheetah.yaml, configs/sac_hopper.yaml]
    seeds: [0, 1, 2]
    overrides: {total_steps: 100000}
    grid: {agent.lr: [3.0e-4, 1.0e-3]}
    resources: {cpus_per_trial: 1, gpus_per_trial: 0}
    max_failures: 2
    report: {reps: 10000, curve_reps: 2000}
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.config import ConfigError, apply_override, build, load_config, read_yaml, to_dict

# Distributions a search may sample a dotted key from (Ray Tune's names).
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
# The fewest bootstrap draws a report takes: a 95% percentile interval's ends are then
# the 3rd and 98th of 100 sorted draws.
MIN_REPS = 100


@dataclass
class ResourcesConfig:
    # CPUs one trial holds; its torch threads (threads: auto) follow it
    cpus_per_trial: float = 1.0
    # GPUs one trial holds (a fraction shares one GPU between trials)
    gpus_per_trial: float = 0.0

    def __post_init__(self) -> None:
        if not self.cpus_per_trial > 0:
            raise ValueError(f"cpus_per_trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise ValueError(f"gpus_per_trial must be >= 0, got {self.gpus_per_trial}")


@dataclass
class ReportConfig:
    # bootstrap draws of each group's IQM interval and of the across-task aggregates' intervals
    # (rliable's `reps`); the report's time grows with them (`sweep.py --report DIR report.reps=N`)
    reps: int = 10_000
    # ... of the sample-efficiency curves' bands and the performance profile's
    curve_reps: int = 2_000

    def __post_init__(self) -> None:
        for name in ("reps", "curve_reps"):
            if getattr(self, name) < MIN_REPS:
                raise ValueError(f"{name} must be >= {MIN_REPS} bootstrap draws, "
                                 f"got {getattr(self, name)}")


@dataclass
class SchedulerConfig:
    # asha: successive halving that stops the worse trials at each rung; none: run all to the end
    name: Literal["asha", "none"] = "asha"
    # env (or optimizer) steps every trial runs before it can be stopped
    grace_period: int = 1
    # keep 1 / reduction_factor of the trials at each rung
    reduction_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.grace_period < 1:
            raise ValueError(f"grace_period must be >= 1, got {self.grace_period}")
        if not self.reduction_factor > 1:
            raise ValueError(f"reduction_factor must be > 1, got {self.reduction_factor}")


@dataclass
class SearchConfig:
    # dotted key -> {loguniform: [lo, hi]} | {uniform: [lo, hi]} | {randint: [lo, hi]}
    # | {choice: [...]}
    distributions: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    # the metric every evaluation reports (a metrics.jsonl key)
    metric: str = "eval/return_mean"
    # max: higher is better; min: lower is better
    mode: Literal["max", "min"] = "max"
    # configurations to sample
    samples: int = 8
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

    def __post_init__(self) -> None:
        if not self.distributions:
            raise ValueError("distributions must name at least one dotted key to search over")
        for key, spec in self.distributions.items():
            if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
                raise ValueError(f"distributions.{key} must be one of "
                                 f"{{{': [...]}, {'.join(DISTRIBUTIONS)}: [...]}}, got {spec!r}")
            (name, args), = spec.items()
            if name != "choice" and (len(args) != 2
                                     or not all(isinstance(a, int | float) for a in args)
                                     or not args[0] < args[1]):
                raise ValueError(f"distributions.{key}.{name} must be [low, high] numbers "
                                 f"with low < high, got {args!r}")
            if name == "loguniform" and args[0] <= 0:
                raise ValueError(f"distributions.{key}.loguniform needs low > 0, got {args!r}")
            if name == "choice" and not args:
                raise ValueError(f"distributions.{key}.choice must list at least one value")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")


@dataclass
class SweepConfig:
    # the sweep's name: the W&B group of every trial and the default output directory
    name: str = ""
    # base run configs (paths relative to the working directory, like train.py's --config)
    runs: list[str] = field(default_factory=list)
    # every variant x run is trained once per seed
    seeds: list[int] = field(default_factory=lambda: [0])
    # dotted key -> value, applied to every trial
    overrides: dict[str, Any] = field(default_factory=dict)
    # named variants, each a mapping of dotted key -> value (e.g. paper settings vs. others)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # dotted key -> list of values: one variant per combination (cartesian product, and with
    # every named variant)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # a hyperparameter search instead of a grid (Optuna sampler, ASHA scheduler)
    search: SearchConfig | None = None
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    # retries of a trial whose worker process died; each resumes from the trial's last checkpoint
    max_failures: int = 2
    # the statistics of the report written at the end
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError("name must be letters, digits, '.', '_' or '-' "
                             f"(it names a directory), got {self.name!r}")
        if not self.runs:
            raise ValueError("runs must list at least one run config")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct integers >= 0, got {self.seeds}")
        for name in self.variants:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._]*", name):
                raise ValueError("variants: a name must be letters, digits, '.' or '_', got "
                                 f"{name!r}")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key} must list at least one value")
        if self.search is not None and (self.grid or self.variants):
            raise ValueError("a sweep takes grid / variants or search, not both")
        if self.search is not None and (len(self.runs) != 1 or len(self.seeds) != 1):
            raise ValueError("a search samples configurations of one run config and one seed: "
                             f"got {len(self.runs)} runs and {len(self.seeds)} seeds")
        if self.max_failures < 0:
            raise ValueError(f"max_failures must be >= 0, got {self.max_failures}")


@dataclass(frozen=True)
class Trial:
    """One train.py run of a sweep."""

    name: str                # <variant>-<task>-s<seed>: its directory under DIR/trials/
    variant: str             # the grid combination (or search sample); the report groups by it
    task: str                # env id, or the dataset of a VAE run
    seed: int
    config: dict[str, Any]   # the resolved run config, exactly what train.py gets


def flatten(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{agent: {lr: 1e-3}} and {agent.lr: 1e-3} both -> {"agent.lr": 1e-3}."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat |= flatten(value, dotted)
        else:
            flat[dotted] = value
    return flat


def load_sweep_config(path: Path, overrides: list[str]) -> SweepConfig:
    """A validated sweep config from YAML plus `dotted.key=value` overrides (ConfigError if bad)."""
    data = read_yaml(path)
    for override in overrides:
        apply_override(data, override)
    data.setdefault("name", path.stem)
    config: SweepConfig = build(SweepConfig, data)
    config.overrides = flatten(config.overrides)
    config.variants = {name: flatten(values) for name, values in config.variants.items()}
    return config


def _label(value: Any) -> str:
    """A value as it appears in a variant name:
    0.0003 -> 3e-4-style short text, [64, 64] -> 64x64."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(_label(v) for v in value)
    return re.sub(r"[^A-Za-z0-9._-]", "-", str(value))


def variant_name(prefix: str, combination: dict[str, Any]) -> str:
    """`prefix` (a named variant, or the kind) alone without a grid; `sac_lr0.001_tau0.01` for a
    grid combination (the keys' last parts, or the whole keys where those repeat)."""
    short = [key.split(".")[-1] for key in combination]
    keys = short if len(set(short)) == len(short) else [k.replace(".", "-") for k in combination]
    return "_".join(
        [prefix, *(f"{k}{_label(v)}" for k, v in zip(keys, combination.values(), strict=True))]
    )


def task_of(config: dict[str, Any]) -> str:
    if "env" in config:
        return str(config["env"]["id"]).replace("/", "-")
    return str(config.get("data", {}).get("name", config["kind"]))


def resolve_trial(sweep: SweepConfig, base: dict[str, Any], variant: str, values: dict[str, Any],
                  seed: int) -> Trial:
    """The trial of run config `base` with the sweep's overrides, then `values`, then the seed,
    and the trial's W&B group (the sweep), name and tags (its variant and values)."""
    settings = {**sweep.overrides, **values, "seed": seed}
    try:
        config = load_config(None, [], base=base, values=settings)
    except ConfigError as e:
        raise ConfigError(f"{variant}: {e}") from None
    data = to_dict(config)
    task = task_of(data)
    name = f"{variant}-{task}-s{seed}"
    tags = [*data["wandb"]["tags"], variant, *(f"{k}={_label(v)}" for k, v in values.items())]
    data["wandb"] |= {"group": data["wandb"]["group"] or sweep.name, "name": name,
                      "tags": [t[:64] for t in dict.fromkeys(tags)]}  # W&B caps a tag at 64 chars
    if "threads" not in settings:
        data["threads"] = "auto"  # torch threads = the trial's CPUs (OMP_NUM_THREADS from Ray)
    return Trial(name=name, variant=variant, task=task, seed=seed, config=data)


def expand(sweep: SweepConfig) -> list[Trial]:
    """Every (variant, run, seed) of a sweep, validated, in that order; names must be unique."""
    keys = list(sweep.grid)
    combinations = [dict(zip(keys, values, strict=True))
                    for values in itertools.product(*sweep.grid.values())] or [{}]
    named: list[tuple[str | None, dict[str, Any]]] = list(sweep.variants.items()) or [(None, {})]
    bases = {run: read_yaml(Path(run)) for run in sweep.runs}
    trials = []
    for (label, settings), combination in itertools.product(named, combinations):
        for run, base in bases.items():
            variant = variant_name(label or str(base.get("kind", "sac")), combination)
            for seed in sweep.seeds:
                try:
                    trials.append(resolve_trial(sweep, base, variant, settings | combination, seed))
                except ConfigError as e:
                    raise ConfigError(f"{run}: {e}") from None
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"two trials would share the directory {twice}: "
                          "runs must differ in kind or task")
    return trials


def check_search(sweep: SweepConfig) -> dict[str, Any]:
    """The base run config of a search; every distribution's bounds must make a valid trial."""
    assert sweep.search is not None
    run = sweep.runs[0]
    base = read_yaml(Path(run))
    for end in (0, -1):
        values = {key: args[end] for key, spec in sweep.search.distributions.items()
                  for args in spec.values()}
        try:
            resolve_trial(sweep, base, "search", values, sweep.seeds[0])
        except ConfigError as e:
            raise ConfigError(f"{run}: {e}") from None
    return base


def search_space(search: SearchConfig) -> dict[str, Any]:
    """The search's distributions as Ray Tune sample spaces, keyed by dotted key."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, spec in search.distributions.items():
        (name, args), = spec.items()
        if name == "choice":
            space[key] = tune.choice(args)
        elif name == "randint":
            # Tune's upper bound is exclusive
            space[key] = tune.randint(int(args[0]), int(args[1]) + 1)
        else:
            space[key] = getattr(tune, name)(float(args[0]), float(args[1]))
    return space


def cpus_to_threads(cpus: float) -> int:
    """Torch threads for a trial holding `cpus` CPUs (at least one)."""
    return max(1, math.floor(cpus))
