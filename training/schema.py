"""Typed config sections built from plain data: the shared sections and the builder.

Every run config shares the sections below (`kind`, `seed`, `total_steps`, `device`, `eval`,
`checkpoint`, `log`, `wandb`, `diagnostics`); each kind adds its own sections (training.registry),
whose dataclasses live with the component that uses them (`envs.EnvConfig`,
`agents.sac.SACConfig`, `vae.config.*`). `build` checks every key and type and reports the
first problem as one line (`ConfigError`); range checks live in each dataclass's
`__post_init__`.

Why not pydantic (measured 2026-12-06, issue #13): validating these dataclasses with pydantic v2
in strict mode, with today's one-line messages kept, took 94 lines of code against the 91 it
replaced here (a translator of its errors back into our messages, a JSON round-trip so strict
mode takes nested dicts, a retry for YAML's `3e-4`, which it reads as a string), changed 3 of
120 bad-input messages, and slowed the first config load from ~6 to ~160 ms (its import). The
214 lines of range checks in the `__post_init__`s would stay: their messages say what is allowed
in words `Field(ge=...)` does not, and they also guard configs built in code.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from estimators.diagnostics import check_every


class ConfigError(ValueError):
    """A config or override that cannot be used; the message is one line for the user."""


@dataclass
class EvalConfig:
    # evaluate every this many steps (0: only at the end of the run)
    every: int = 5000
    # episodes per RL evaluation, deterministic policy
    episodes: int = 10
    # RL runs: film each evaluation's first episode to RUN/videos/step_<N>.mp4 and log it to W&B
    video: bool = False

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"every must be >= 0 (0 = only at the end), got {self.every}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")


@dataclass
class CheckpointConfig:
    # write a checkpoint every this many steps (0: only at the end and on interrupt)
    every: int = 10000
    # how many complete checkpoints to keep on disk (>= 2 so a corrupt newest has a fallback)
    keep: int = 2

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"every must be >= 0 (0 = only at the end), got {self.every}")
        if self.keep < 2:
            raise ValueError(f"keep must be >= 2 so a previous checkpoint survives, "
                             f"got {self.keep}")


@dataclass
class LogConfig:
    # write metrics (metrics.jsonl, W&B) every this many steps
    every: int = 1000

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")


@dataclass
class WandbConfig:
    # offline: a real local run that `wandb sync` uploads later; online; disabled
    mode: Literal["offline", "online", "disabled"] = "offline"
    # W&B project (None: "reparam-rl")
    project: str | None = None
    # W&B entity (team or user; None: your default)
    entity: str | None = None
    # W&B group, e.g. one per experiment with several seeds
    group: str | None = None
    # W&B tags
    tags: list[str] = field(default_factory=list)
    # run name (None: "<kind>-<env or dataset>-s<seed>-<time>")
    name: str | None = None


@dataclass
class DiagnosticsConfig:
    # compute gradient-variance statistics every this many updates (0: off)
    grad_variance_every: int = 0

    def __post_init__(self) -> None:
        check_every(self.grad_variance_every)


@dataclass
class RunConfig:
    """The sections every kind has."""

    # the algorithm or model: a key of training.registry.ALGORITHMS (sac, reinforce, vae, bnn)
    kind: str = "sac"
    # seeds python, numpy, torch, the envs and their action spaces
    seed: int = 0
    # env steps for RL; optimizer steps for the VAE
    total_steps: int = 20000
    # auto picks cuda when torch sees a GPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch CPU threads at most, or auto: OMP_NUM_THREADS when set (Ray sets it for each sweep
    # trial), else the CPUs this process may run on; train.py writes the resolved number in
    # config.yaml
    threads: int | Literal["auto"] = "auto"
    # use fewer threads (down to 1) while other processes use this run's CPUs, read from
    # /proc/stat once a second, and `threads` again when they stop: spinning OpenMP threads are
    # fast idle and collapse under load (README, Performance: threads under load)
    adapt_threads: bool = True
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.threads != "auto" and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


# ---------------------------------------------------------------- building from plain data


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against the type hint `hint` and convert it (int -> float);
    raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1
                          else f"{where} has an invalid value {value!r}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            hint = _did_you_mean(str(value), [str(c) for c in choices])
            raise ConfigError(
                f"{where} must be one of {', '.join(map(str, choices))}; got {value!r}{hint}"
            )
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {_describe(value)}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {_describe(value)}")
        return {_coerce(k, key_hint, f"{where} key"): _coerce(v, value_hint, f"{where}.{k}")
                for k, v in value.items()}
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {_describe(value)}")
        return value
    if hint is float:
        # YAML 1.1 reads `1e-3` (no dot) as a string; accept any numeric spelling.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {_describe(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config field type {hint!r} at {where}")  # a bug in a schema


def _did_you_mean(word: str, valid: list[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `valid`, or '' when none is close."""
    close = difflib.get_close_matches(word, valid, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    hint = _did_you_mean(key, valid)
    at = f"'{where}'" if where else "the top level"
    return ConfigError(
        f"unknown key '{join_key(where, key)}'{hint}; valid keys at {at}: {', '.join(valid)}"
    )


def join_key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def build(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking keys, types and ranges."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the config'} must be a mapping of keys to values, "
                          f"got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(str(key), names, where)
        kwargs[key] = _coerce(value, hints[key], join_key(where, key))
    try:
        return cls(**kwargs)
    except ValueError as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        first_word = message.split(" ", 1)[0]
        # Component messages start with their field name ("batch_size must be ..."): qualify it.
        if where and (first_word in names or first_word.split(".")[0] in names):
            raise ConfigError(f"{where}.{message}") from None
        raise ConfigError(f"{where}: {message}" if where else message) from None
