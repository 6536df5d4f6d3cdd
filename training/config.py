"""Run configuration: typed dataclasses built from YAML plus `key=value` overrides.

Every run config shares the sections below (`kind`, `seed`, `total_steps`, `device`, `eval`,
`checkpoint`, `log`, `wandb`, `diagnostics`); each kind adds its own sections, whose
dataclasses live with the component that uses them (`envs.EnvConfig`, `agents.sac.SACConfig`,
`vae.config.*`). Loading checks every key and type and reports the first problem as one line
(`ConfigError`); range checks live in each dataclass's `__post_init__`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

import bnn.config
from agents.reinforce import ReinforceConfig
from agents.sac import SACConfig
from envs import EnvConfig
from vae.config import DataConfig, ModelConfig, OptimConfig


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
            raise ValueError(f"keep must be >= 2 so a previous checkpoint survives, got {self.keep}")


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
        if self.grad_variance_every < 0:
            raise ValueError(f"grad_variance_every must be >= 0, got {self.grad_variance_every}")


@dataclass
class RunConfig:
    """The sections every kind has."""

    # sac | reinforce | vae | bnn
    kind: Literal["sac", "reinforce", "vae", "bnn"] = "sac"
    # seeds python, numpy, torch, the envs and their action spaces
    seed: int = 0
    # env steps for RL; optimizer steps for the VAE
    total_steps: int = 20000
    # auto picks cuda when torch sees a GPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch CPU threads, or auto: OMP_NUM_THREADS when set (Ray sets it for each sweep trial),
    # else the CPUs this process may run on; train.py writes the resolved number in config.yaml.
    # Waiting OpenMP threads do not spin for long (train.py sets the wait policy), so extra
    # threads do not stall a loaded machine (README, Performance).
    threads: int | Literal["auto"] = "auto"
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


@dataclass
class SACRunConfig(RunConfig):
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.agent.learning_starts >= self.total_steps:
            raise ValueError(
                f"agent.learning_starts ({self.agent.learning_starts}) must be < total_steps "
                f"({self.total_steps}), or no update would ever run"
            )


@dataclass
class ReinforceRunConfig(RunConfig):
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: ReinforceConfig = field(default_factory=ReinforceConfig)


@dataclass
class VAERunConfig(RunConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # gradient estimator for the encoder: pathwise (z = mu + sigma*eps) or score_function
    estimator: Literal["pathwise", "score_function"] = "pathwise"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eval.video:
            raise ValueError("eval.video films RL episodes; a vae run has none (set eval.video=false)")


@dataclass
class BNNRunConfig(RunConfig):
    data: bnn.config.DataConfig = field(default_factory=bnn.config.DataConfig)
    model: bnn.config.ModelConfig = field(default_factory=bnn.config.ModelConfig)
    optim: bnn.config.OptimConfig = field(default_factory=bnn.config.OptimConfig)
    # weight-noise estimator: global (one W per minibatch), local (pre-activations), flipout
    estimator: Literal["global", "local", "flipout"] = "local"


SCHEMAS: dict[str, type[RunConfig]] = {
    "sac": SACRunConfig,
    "reinforce": ReinforceRunConfig,
    "vae": VAERunConfig,
    "bnn": BNNRunConfig,
}


# ---------------------------------------------------------------- building from plain data


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against the type hint `hint` and convert it (int -> float); raise ConfigError."""
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
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where} has an invalid value {value!r}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))}; got {value!r}")
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


def _unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    at = f"'{where}'" if where else "the top level"
    return ConfigError(
        f"unknown key '{_join(where, key)}'{hint}; valid keys at {at}: {', '.join(valid)}"
    )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def build(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking keys, types and ranges."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the config'} must be a mapping of keys to values, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(str(key), names, where)
        kwargs[key] = _coerce(value, hints[key], _join(where, key))
    try:
        return cls(**kwargs)
    except ValueError as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        first_word = message.split(" ", 1)[0]
        # Component messages start with their field name ("batch_size must be ..."): qualify it.
        if where and (first_word in names or first_word.split(".")[0] in names):
            raise ConfigError(f"{where}.{message}") from None
        raise ConfigError(f"{where}: {message}" if where else message) from None


# ---------------------------------------------------------------- files and overrides


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with `safe_load` (no Python objects can be constructed)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"cannot parse {path}{at}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values, got {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one `dotted.key=value` override to raw config data; the value parses as YAML."""
    key, sep, text = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {override!r} must look like dotted.key=value, e.g. agent.batch_size=512")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"override {override!r}: the value is not a valid YAML scalar") from None
    set_dotted(data, key, value)


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `data[a][b][c] = value` for the key `a.b.c`, creating sections on the way."""
    *parents, last = key.split(".")
    node = data
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}={value!r}: '{'.'.join(parents[: i + 1])}' is a value, not a section")
        node = child
    node[last] = value


def load_config(path: Path | None, overrides: list[str], base: dict[str, Any] | None = None,
                values: dict[str, Any] | None = None) -> RunConfig:
    """Resolve a run config from a YAML file (or `base` data), `key=value` overrides and then
    dotted-key `values` (already parsed), fully validated."""
    data = copy.deepcopy(base) if base is not None else read_yaml(path) if path is not None else {}
    for override in overrides:
        apply_override(data, override)
    for key, value in (values or {}).items():
        set_dotted(data, key, value)
    kind = data.get("kind", "sac")
    if kind not in SCHEMAS:
        raise ConfigError(f"kind must be one of {', '.join(SCHEMAS)}; got {kind!r}")
    return build(SCHEMAS[kind], data)


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain data (for config.yaml and W&B) that `load_config(base=...)` reads back unchanged."""
    return dataclasses.asdict(config)


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


# Sections a resumed run may change: how long it runs and how it evaluates, checkpoints and
# reports. Everything else (kind, seed, env, agent, data, model, optim, estimator) is what the
# checkpoint was trained with.
RESUME_MAY_CHANGE = ("total_steps", "device", "threads", "eval", "checkpoint", "log", "wandb",
                     "diagnostics")


def _flatten(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= _flatten(value, _join(where, key))
        else:
            flat[_join(where, key)] = value
    return flat


def resume_config(saved: dict[str, Any], overrides: list[str]) -> RunConfig:
    """The config of a resumed run: its saved config.yaml data plus overrides that may change.

    Raises ConfigError for an override that the saved run cannot take (another kind, seed, env,
    network or estimator): the checkpoint holds a learner trained with the saved values.
    """
    before = load_config(None, [], base=saved)
    kinds = [text.strip() for key, _, text in (o.partition("=") for o in overrides) if key == "kind"]
    if kinds and kinds[-1] != before.kind:  # checked first: the other sections differ across kinds
        raise _fixed_on_resume("kind", before.kind, kinds[-1])
    after = load_config(None, overrides, base=saved)
    old, new = _flatten(to_dict(before)), _flatten(to_dict(after))
    for key in [*old, *(k for k in new if k not in old)]:
        if old.get(key) != new.get(key) and key.split(".")[0] not in RESUME_MAY_CHANGE:
            raise _fixed_on_resume(key, old.get(key), new.get(key))
    return after


def _fixed_on_resume(key: str, old: Any, new: Any) -> ConfigError:
    return ConfigError(
        f"--resume cannot change {key} from {old!r} to {new!r}: the checkpoint holds a learner "
        f"trained with it; a resumed run may change only {', '.join(RESUME_MAY_CHANGE)} "
        "(start a new run with --out for another configuration)"
    )
