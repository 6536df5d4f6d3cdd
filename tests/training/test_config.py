"""Configs: every key and type is checked on load, overrides are dotted YAML scalars, and any
malformed input ends in one clear line (exit 2 from train.py), never a traceback."""

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import train
from training.config import ConfigError, SACRunConfig, VAERunConfig, load_config, to_dict

REPO = Path(__file__).resolve().parents[2]
SAC_PENDULUM = REPO / "configs" / "sac_pendulum.yaml"


def test_default_config_is_the_pendulum_sac_of_the_contract() -> None:
    config = load_config(SAC_PENDULUM, [])
    assert isinstance(config, SACRunConfig)
    assert (config.kind, config.env.id, config.total_steps) == ("sac", "Pendulum-v1", 20000)
    assert config.agent.lr == pytest.approx(1e-3)
    assert config.wandb.mode == "offline"


def test_every_shipped_config_loads() -> None:
    for path in sorted((REPO / "configs").glob("*.yaml")):
        config = load_config(path, [])
        assert config.kind in path.name, path


def test_overrides_parse_as_yaml_scalars() -> None:
    config = load_config(SAC_PENDULUM, ["agent.batch_size=512", "seed=3", "agent.lr=3e-4",
                                        "agent.hidden_sizes=[64, 64]", "wandb.tags=[a, b]",
                                        "wandb.mode=disabled", "agent.autotune_alpha=false"])
    assert config.agent.batch_size == 512 and config.seed == 3
    assert config.agent.lr == pytest.approx(3e-4) and isinstance(config.agent.lr, float)
    assert config.agent.hidden_sizes == [64, 64] and config.wandb.tags == ["a", "b"]
    assert config.wandb.mode == "disabled" and config.agent.autotune_alpha is False


def test_resolved_config_reads_back_unchanged() -> None:
    config = load_config(SAC_PENDULUM, ["seed=7"])
    again = load_config(None, [], base=yaml.safe_load(yaml.safe_dump(to_dict(config))))
    assert again == config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.batchsize=5",
         "unknown key 'agent.batchsize' (did you mean 'batch_size'?); valid keys at 'agent': "
         "lr, batch_size"),
        ("nonsense=1", "unknown key 'nonsense'; valid keys at the top level: kind, seed"),
        ("agent.batch_size=-3", "agent.batch_size"),
        ("agent.batch_size=abc", "agent.batch_size must be an integer, got str 'abc'"),
        ("agent.lr=fast", "agent.lr must be a number"),
        ("agent.autotune_alpha=3", "agent.autotune_alpha must be true or false"),
        ("device=tpu", "device must be one of auto, cpu, cuda; got 'tpu'"),
        ("agent.policy_distribution=laplce",
         "agent.policy_distribution must be one of normal, laplace, logistic; got 'laplce' "
         "(did you mean 'laplace'?)"),
        ("agent.learning_starts=50000",
         "agent.learning_starts (50000) must be < total_steps (20000)"),
        ("agent=3", "agent must be a mapping"),
        ("seed.x=1", "'seed' is a value, not a section"),
        ("batch_size", "must look like dotted.key=value"),
        ("kind=ppo", "kind must be one of"),
    ],
)
def test_bad_overrides_are_one_line_errors_that_say_what_is_allowed(
    override: str, message: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(SAC_PENDULUM, [override])
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"kind: sac\nseed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(evil, [])
    assert not marker.exists()


def test_vae_config_has_data_model_estimator_in_place_of_env_and_agent() -> None:
    config = load_config(REPO / "configs" / "vae_digits.yaml", [])
    assert isinstance(config, VAERunConfig)
    assert config.estimator == "pathwise" and config.data.name == "digits"
    with pytest.raises(ConfigError, match="unknown key 'env'"):
        load_config(REPO / "configs" / "vae_digits.yaml", ["env.id=Pendulum-v1"])


# ------------------------------------------------------------------ property: malformed input

# Values of the wrong type for each kind of field (the schema's fields are int, float, bool,
# str, Literal and list): whatever the field, one of these is wrong for it.
WRONG_FOR = {
    int: st.sampled_from(["abc", "[1, 2]", "{a: 1}", "1.5", "true"]),
    float: st.sampled_from(["abc", "[1, 2]", "{a: 1}", "true"]),
    bool: st.sampled_from(["abc", "[1]", "3", "0.5"]),
    str: st.sampled_from(["[1, 2]", "{a: 1}", "3", "true"]),
    list: st.sampled_from(["abc", "3", "{a: 1}", "[[1], 2]"]),
}


def _leaf_fields(cls, prefix=""):  # (dotted key, kind of value) for every scalar field
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, key = hints[f.name], f"{prefix}{f.name}"
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if dataclasses.is_dataclass(hint):
            yield from _leaf_fields(hint, key + ".")
        elif typing.get_origin(hint) is typing.Literal:
            yield key, str
        elif typing.get_origin(hint) is list or any(typing.get_origin(a) is list for a in args):
            yield key, list
        else:
            base = hint if not args else args[0]
            yield key, (str if typing.get_origin(base) is typing.Literal else base)


SAC_FIELDS = [(k, t) for k, t in _leaf_fields(SACRunConfig) if k != "kind"]
identifier = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@st.composite
def malformed_override(draw: st.DrawFn) -> str:
    choice = draw(st.sampled_from(["wrong_type", "unknown_key", "unknown_nested", "no_equals",
                                   "kind"]))
    if choice == "wrong_type":
        key, kind = draw(st.sampled_from(SAC_FIELDS))
        value = draw(WRONG_FOR[kind])
        if kind is str and key in ("wandb.project", "wandb.entity", "wandb.group", "wandb.name",
                                   "env.id"):
            value = "[1, 2]"  # these accept any string, so only a non-string is wrong
        return f"{key}={value}"
    if choice == "unknown_key":
        key = draw(identifier.filter(
            lambda k: k not in {f.split(".")[0] for f, _ in SAC_FIELDS} | {"kind"}))
        return f"{key}={draw(st.integers())}"
    if choice == "unknown_nested":
        section = draw(st.sampled_from(["agent", "env", "eval", "checkpoint", "wandb",
                                        "diagnostics", "log"]))
        key = draw(identifier.filter(lambda k: f"{section}.{k}" not in {f for f, _ in SAC_FIELDS}))
        return f"{section}.{key}=1"
    if choice == "no_equals":
        return draw(identifier)
    return f"kind={draw(identifier.filter(lambda k: k not in ('sac', 'vae', 'reinforce')))}"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(malformed_override(), min_size=1, max_size=3), valid_first=st.booleans())
def test_any_malformed_override_exits_2_with_one_line_and_no_run_dir(
    overrides: list[str], valid_first: bool, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path_factory.mktemp("run") / "never"
    argv = ["--out", str(out), *(["seed=1"] if valid_first else []), *overrides]
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not out.exists()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | identifier,
    lambda children: (st.lists(children, max_size=3)
                      | st.dictionaries(identifier, children, max_size=3)),
    max_leaves=8,
))
def test_any_malformed_config_file_exits_2_with_one_line(
    document: object, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
) -> None:
    # A random YAML document is (almost) never a valid config; when it happens to be one,
    # it must at least not crash, so only the malformed outcome is asserted.
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load_config(path, [])
    except ConfigError as e:
        assert "\n" not in str(e)
        out = tmp_path_factory.mktemp("run") / "never"
        assert train.main(["--config", str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
        assert not out.exists()
