"""Repeated-estimate statistics, and the `python -m estimators.variance` command line
(run as a subprocess: exit codes, stdout table, JSON schema, PNG)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from estimators.categorical import CATEGORICAL_ESTIMATORS, CategoricalProblem
from estimators.distributions import DiagNormal
from estimators.exponential_problem import ExponentialSecondMoment
from estimators.gradients import pathwise_surrogate
from estimators.problems import ESTIMATORS, PROBLEMS, toy_problem
from estimators.variance import gradient_samples, gradient_stats, main

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- gradient_samples / gradient_stats ------------------------------------------------------


def test_gradient_samples_flattens_every_parameter_per_draw():
    torch.manual_seed(0)
    loc = torch.zeros(2, 3, requires_grad=True)
    scale = torch.ones(3, requires_grad=True)
    unused = torch.ones(4, requires_grad=True)
    draws = []

    def estimate():
        z = DiagNormal(loc, scale).rsample()  # (2, 3)
        draws.append(z.detach())
        return pathwise_surrogate(z.sum(-1))

    samples = gradient_samples(estimate, [loc, scale, unused], num_samples=5)
    assert samples.shape == (5, 6 + 3 + 4)
    for row, eps in zip(samples, draws, strict=True):  # z = eps, since loc = 0 and scale = 1
        torch.testing.assert_close(row[:6], torch.full((6,), 0.5))  # d mean_b(sum_j z)/d loc
        torch.testing.assert_close(row[6:9], eps.sum(0) / 2)  # d/d scale_j = mean_b eps_bj
        assert torch.equal(row[9:], torch.zeros(4))  # unused parameter: zero gradient
    assert loc.grad is None and scale.grad is None  # .grad fields untouched
    assert not samples.requires_grad


def test_gradient_stats_summarises_samples():
    samples = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0], [2.0, 3.0]], dtype=torch.float64)
    reference = torch.tensor([1.0, 1.0], dtype=torch.float64)
    stats = gradient_stats(samples, reference)
    torch.testing.assert_close(stats.mean, torch.tensor([2.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(stats.var, samples.var(0))
    assert stats.var_trace == pytest.approx(float(samples.var(0).sum()))
    assert stats.snr == pytest.approx(math.sqrt(13.0) / math.sqrt(stats.var_trace))
    cosines = (samples @ reference) / (samples.norm(dim=1) * reference.norm())
    assert stats.cosine_to_reference == pytest.approx(float(cosines.mean()))
    assert stats.num_samples == 4
    assert gradient_stats(samples).cosine_to_reference is None


def test_gradient_stats_of_a_noise_free_estimator():
    stats = gradient_stats(torch.tensor([[1.0, -1.0]] * 3), reference=torch.tensor([2.0, -2.0]))
    assert stats.var_trace == 0.0 and stats.snr == math.inf
    assert stats.cosine_to_reference == pytest.approx(1.0)
    assert gradient_stats(torch.zeros(3, 2)).snr == 0.0


def test_variance_helpers_reject_bad_input():
    with pytest.raises(ValueError, match=r"shape mismatch: reference \(3,\) vs one sample \(2,\)"):
        gradient_stats(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"K >= 2, got \(1, 2\)"):
        gradient_stats(torch.zeros(1, 2))
    param = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="0-dim surrogate"):
        gradient_samples(lambda: param * 2, [param], 2)
    with pytest.raises(ValueError, match="does not depend on params"):
        gradient_samples(lambda: torch.tensor(1.0), [param], 2)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        gradient_samples(lambda: param.sum(), [param], 0)


# --- command line ---------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "estimators.variance", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_table_json_and_plot(tmp_path):
    out_json, out_png = tmp_path / "q.json", tmp_path / "plots" / "q.png"
    result = run_cli(
        "--problem", "quadratic", "--mu", "1", "--sigma", "0.5", "--samples", "2000",
        "--seed", "3", "--json", str(out_json), "--plot", str(out_png),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ESTIMATORS:
        assert name in result.stdout
    assert "d/dmu" in result.stdout and "d/dsigma" in result.stdout

    report = json.loads(out_json.read_text())
    # The keys the README documents, plus the noise family
    # (normal unless --distribution says otherwise).
    assert set(report) == {"problem", "mu", "sigma", "samples", "estimators", "distribution"}
    assert report["distribution"] == "normal"
    assert ((report["problem"], report["mu"], report["sigma"], report["samples"])
            == ("quadratic", 1.0, 0.5, 2000))
    assert list(report["estimators"]) == list(ESTIMATORS)
    for name, entry in report["estimators"].items():
        assert set(entry) == {"mean", "var", "analytic_mean", "analytic_var"}
        assert all(len(entry[key]) == 2 and all(isinstance(v, float) for v in entry[key])
                   for key in entry)
        moments = PROBLEMS["quadratic"].moments(name, 1.0, 0.5)
        assert entry["analytic_mean"] == list(moments.mean)
        assert entry["analytic_var"] == list(moments.var)
        # The measured figures, against the estimator's moments by quadrature (written out
        # below, independent of the library), within 5 standard errors of 2000 draws.
        mean, var, fourth = quadratic_estimator_moments(name, mu=1.0, sigma=0.5)
        for k in range(2):  # d/dmu, d/dsigma
            assert abs(entry["mean"][k] - mean[k]) <= 5 * math.sqrt(var[k] / 2000), (name, k)
            se_var = math.sqrt((fourth[k] - var[k] ** 2) / 2000)  # SE of a sample variance
            assert abs(entry["var"][k] - var[k]) <= 5 * se_var, (name, k)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def quadratic_estimator_moments(estimator: str, mu: float, sigma: float) -> tuple[np.ndarray, ...]:
    """Mean, variance and 4th central moment of the one-sample (d/dmu, d/dsigma) estimates of
    E[z^2], z = mu + sigma eps, by Gauss-Hermite quadrature (exact: polynomials of degree <= 24)."""
    eps, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    z = mu + sigma * eps
    if estimator == "pathwise":  # d/dmu z^2 = 2z, d/dsigma z^2 = 2z eps
        g = np.stack([2 * z, 2 * z * eps])
    else:  # f(z) - b times the score (eps / sigma, (eps^2 - 1) / sigma); b = E z^2 = mu^2 + sigma^2
        b = mu**2 + sigma**2 if estimator == "score_function_baseline" else 0.0
        g = (z**2 - b) * np.stack([eps / sigma, (eps**2 - 1) / sigma])
    mean = g @ w  # (2, J) -> (2,)
    return mean, (g - mean[:, None]) ** 2 @ w, (g - mean[:, None]) ** 4 @ w


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--problem", "cubic", "--mu", "0", "--sigma", "1", "--samples", "10"],
         "invalid choice: 'cubic' (choose from 'linear', 'quadratic', 'residual', 'lognormal', "
         "'exponential', 'categorical')"),
        (["--problem", "linear", "--mu", "0", "--sigma", "0", "--samples", "10"],
         "sigma must be > 0"),
        (["--problem", "linear", "--mu", "0", "--sigma", "1", "--samples", "0"],
         "--samples must be >= 2"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2_with_one_error_line(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and fragment in error_lines[0], result.stderr


def test_main_categorical_sweep_writes_table_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "c.json", tmp_path / "c.png"
    code = main([
        "--problem", "categorical", "--logits", "1,0,-1", "--costs", "1,2,4", "--samples", "3000",
        "--temperature", "0.5", "--temperatures", "0.1,1,10", "--json", str(out_json),
        "--plot", str(out_png),
    ])  # fmt: skip
    assert code == 0
    stdout = capsys.readouterr().out
    for name in CATEGORICAL_ESTIMATORS:
        assert name in stdout
    assert "temperature sweep" in stdout and "d/dlogit2" in stdout
    report = json.loads(out_json.read_text())
    assert set(report) == {
        "problem", "logits", "costs", "temperature", "samples", "draws", "exact_gradient",
        "estimators", "sweep",
    }  # fmt: skip
    problem = CategoricalProblem((1.0, 0.0, -1.0), (1.0, 2.0, 4.0))
    assert report["exact_gradient"] == list(problem.exact_gradient())
    assert (report["temperature"], report["samples"], report["draws"]) == (0.5, 3000, 2)
    assert list(report["estimators"]) == list(CATEGORICAL_ESTIMATORS)
    for name, entry in report["estimators"].items():
        assert set(entry) == {"mean", "var", "bias", "bias_norm", "var_trace", "analytic_mean",
                              "analytic_var"}
        bias = [m - g for m, g in zip(entry["mean"], report["exact_gradient"], strict=True)]
        assert entry["bias"] == pytest.approx(bias, abs=1e-12)
        assert entry["bias_norm"] == pytest.approx(math.hypot(*bias))
        assert entry["var_trace"] == pytest.approx(sum(entry["var"]))
        moments = problem.moments(name, 2)
        assert entry["analytic_var"] == (None if moments is None else list(moments.var))
    assert report["estimators"]["pathwise_hard"]["mean"] == [0.0, 0.0, 0.0]
    sweep = report["sweep"]
    assert sweep["temperatures"] == [0.1, 1.0, 10.0]
    for name in ("gumbel_softmax", "straight_through"):
        assert len(sweep[name]["bias_norm"]) == len(sweep[name]["var_trace"]) == 3
        assert sweep[name]["var_trace"][0] > sweep[name]["var_trace"][2]  # variance falls with T
        assert sweep[name]["bias_norm"][0] < sweep[name]["bias_norm"][2]  # bias grows with T
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_exponential_and_laplace_json(tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["--problem", "exponential", "--rate", "2", "--samples", "500",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"problem", "rate", "samples", "estimators"}
    for name, entry in report["estimators"].items():
        moments = ExponentialSecondMoment().moments(name, 2.0)
        assert ((entry["analytic_mean"], entry["analytic_var"])
                == (list(moments.mean), list(moments.var)))
        assert len(entry["mean"]) == len(entry["var"]) == 1
    assert "d/drate" in capsys.readouterr().out

    out = tmp_path / "l.json"
    args = ["--problem", "linear", "--mu", "1", "--sigma", "0.5", "--distribution", "laplace"]
    assert main([*args, "--samples", "500", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["distribution"] == "laplace"
    moments = toy_problem("linear", "laplace").moments("score_function", 1.0, 0.5)
    assert report["estimators"]["score_function"]["analytic_var"] == list(moments.var)
    assert "z ~ Laplace(loc mu, scale sigma), mu=1, sigma=0.5" in capsys.readouterr().out


# The same entry point in-process (no interpreter start-up) for the remaining bad inputs.


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--problem", "linear", "--mu", "0", "--sigma", "-1", "--samples", "10"],
         "sigma must be > 0"),
        (["--problem", "linear", "--mu", "0", "--sigma", "nan", "--samples", "10"],
         "sigma must be > 0"),
        (["--problem", "linear", "--mu", "inf", "--sigma", "1", "--samples", "10"],
         "mu must be finite"),
        (["--problem", "linear", "--mu", "0", "--sigma", "1", "--samples", "-5"],
         "--samples must be >= 2"),
        (["--problem", "residual", "--mu", "1", "--sigma", "1", "--samples", "10"],
         "residual fixes mu at 0"),
        (["--problem", "linear", "--sigma", "1", "--samples", "10"], "--problem linear needs --mu"),
        (["--problem", "lognormal", "--mu", "0", "--sigma", "1", "--distribution", "laplace",
          "--samples", "10"],
         "lognormal has closed forms for --distribution normal only"),
        (["--problem", "linear", "--mu", "0", "--sigma", "1", "--rate", "2", "--samples", "10"],
         "--rate does not apply to --problem linear"),
        (["--problem", "exponential", "--samples", "10"], "--problem exponential needs --rate"),
        (["--problem", "exponential", "--rate", "0", "--samples", "10"], "rate must be > 0"),
        (["--problem", "exponential", "--rate", "1", "--mu", "0", "--samples", "10"],
         "--mu does not apply to --problem exponential"),
        (["--problem", "exponential", "--rate", "1", "--samples", "10", "--plot", "x.png"],
         "--plot is not available for --problem exponential"),
        (["--problem", "categorical", "--logits", "1,0", "--samples", "10"], "needs --costs"),
        (["--problem", "categorical", "--logits", "1,0", "--costs", "1,2,3", "--samples", "10"],
         "3 costs vs 2 logits"),
        (["--problem", "categorical", "--logits", "1", "--costs", "1", "--samples", "10"],
         "K >= 2 categories"),
        (["--problem", "categorical", "--logits", "1,0", "--costs", "1,2", "--temperature", "0",
          "--samples", "10"],
         "temperatures must be > 0"),
        (["--problem", "categorical", "--logits", "1,0", "--costs", "1,2", "--temperatures", "1,-2",
          "--samples", "10"],
         "temperatures must be > 0 and finite, got -2"),
        (["--problem", "categorical", "--logits", "1,0", "--costs", "1,2", "--draws", "1",
          "--samples", "10"],
         "--draws must be >= 2"),
        (["--problem", "categorical", "--logits", "1,0", "--costs", "1,2", "--samples", "10",
          "--plot", "x.png"],
         "--plot for --problem categorical sweeps --temperatures"),
        (["--problem", "categorical", "--logits", "1,a", "--costs", "1,2", "--samples", "10"],
         "expected comma-separated numbers, got '1,a'"),
        (["--problem", "categorical", "--logits", "1,0", "--costs", "1,2", "--sigma", "1",
          "--samples", "10"],
         "--sigma does not apply to --problem categorical"),
    ],
)  # fmt: skip
def test_main_bad_input_exits_2(args, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    error_lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert captured.out == "" and len(error_lines) == 1 and fragment in error_lines[0]


def test_main_is_deterministic_given_the_seed(capsys):
    args = ["--problem", "lognormal", "--mu", "0.2", "--sigma", "0.4", "--samples", "500",
            "--seed", "7"]
    outputs = []
    for _ in range(2):
        assert main(args) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "score_function_baseline" in outputs[0]
