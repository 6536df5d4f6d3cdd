"""The run-config loader: a YAML file plus `key=value` overrides -> a validated run config.

`load_config` reads the data, applies the overrides and builds the run config of its `kind`
(training.registry) with training.schema's checks; `resume_config` does the same for a run
being resumed, refusing changes its checkpoint cannot take. The section and run-config
classes are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from training.registry import (
    ALGORITHMS,
    BNNRunConfig,
    ReinforceRunConfig,
    SACRunConfig,
    VAERunConfig,
)
from training.schema import (
    CheckpointConfig,
    ConfigError,
    DiagnosticsConfig,
    EvalConfig,
    LogConfig,
    RunConfig,
    WandbConfig,
    build,
    join_key,
)

__all__ = [
    "BNNRunConfig", "CheckpointConfig", "ConfigError", "DiagnosticsConfig", "EvalConfig",
    "LogConfig", "ReinforceRunConfig", "RunConfig", "SACRunConfig", "VAERunConfig",
    "WandbConfig", "apply_override", "build", "load_config", "read_yaml", "resume_config",
    "save_config", "set_dotted", "to_dict",
]


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
        raise ConfigError(f"{path} must hold a mapping of keys to values, "
                          f"got {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one `dotted.key=value` override to raw config data; the value parses as YAML."""
    key, sep, text = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {override!r} must look like dotted.key=value, "
                          "e.g. agent.batch_size=512")
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
            raise ConfigError(f"override {key}={value!r}: '{'.'.join(parents[: i + 1])}' "
                              "is a value, not a section")
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
    kind = data.get("kind", RunConfig.kind)
    if kind not in ALGORITHMS:
        raise ConfigError(f"kind must be one of {', '.join(ALGORITHMS)}; got {kind!r}")
    config: RunConfig = build(ALGORITHMS[kind].config, data)
    return config


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain data (for config.yaml and W&B) that `load_config(base=...)` reads back unchanged."""
    return dataclasses.asdict(config)


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


# Sections a resumed run may change: how long it runs and how it evaluates, checkpoints and
# reports. Everything else (kind, seed, env, agent, data, model, optim, estimator) is what the
# checkpoint was trained with.
RESUME_MAY_CHANGE = ("total_steps", "device", "threads", "adapt_threads", "eval", "checkpoint",
                     "log", "wandb", "diagnostics")


def _flatten(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= _flatten(value, join_key(where, key))
        else:
            flat[join_key(where, key)] = value
    return flat


def resume_config(saved: dict[str, Any], overrides: list[str]) -> RunConfig:
    """The config of a resumed run: its saved config.yaml data plus overrides that may change.

    Raises ConfigError for an override that the saved run cannot take (another kind, seed, env,
    network or estimator): the checkpoint holds a learner trained with the saved values.
    """
    before = load_config(None, [], base=saved)
    kinds = [text.strip() for key, _, text in (o.partition("=") for o in overrides)
             if key == "kind"]
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
