"""Policy-gradient estimators against a problem whose answers are known in closed form.

The problem: a linear-Gaussian policy a ~ N(W s + c, diag(sigma^2)) (no tanh: the estimators
only use `rsample_and_log_prob`, `sample_pre_squash`, `squash` and `log_prob_pre_squash`, which a
Gaussian provides with squash = identity) and a quadratic critic Q(s, a) = -1/2 ||a - K s||^2.
With d(s) = W s + c - K s and a = mu + sigma * eps, the objective
J = mean_s E_a[Q(s, a) - alpha log pi(a|s)] = mean_s[-1/2 (||d||^2 + sum sigma^2)] + alpha H
has the gradient
    dJ/dW = -mean_s d s^T,   dJ/dc = -mean_s d,   dJ/dlog sigma_i = alpha - sigma_i^2,
and the one-action pathwise estimate at state s, g_W = -(d + sigma eps) s^T, g_c = -(d + sigma eps),
g_log sigma_i = alpha - (d_i + sigma_i eps_i) sigma_i eps_i, has per-coordinate variances
    sigma_i^2 s_j^2,   sigma_i^2,   d_i^2 sigma_i^2 + 2 sigma_i^4   (E eps^4 = 3, odd moments 0);
an estimate over B states, one action each, has the mean of these divided by B.
Tolerances are k standard errors estimated from the K repeated estimates.
"""

import io
import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml
from torch import Tensor, nn

import agents.policy_gradients as policy_gradients
from agents import variance
from agents.checkpoint import list_checkpoints, save_checkpoint
from agents.policy_gradients import (
    BASELINE_SAMPLES,
    ESTIMATORS,
    actor_objective,
    actor_surrogate,
    reference_gradient,
    sac_gradient_figures,
    sac_gradient_metrics,
    soft_value_baseline,
    summarize,
)
from agents.reinforce import ReinforceConfig, ReinforceLearner, policy_surrogate
from agents.sac import SACConfig, SACLearner, actor_loss
from envs import EnvConfig
from estimators.distributions import DiagNormal
from estimators.gradients import baseline_regression_loss
from estimators.variance import gradient_samples
from policies.actor import TanhSquashedActor
from policies.critic import EnsembleQ
from policies.value import ValueNetwork

OBS_DIM, ACT_DIM, BATCH, ALPHA = 3, 2, 8, 0.3
# Standard errors allowed between a sample statistic and its closed form.
K_SE = 4.0


class IdentitySquashedNormal(DiagNormal):
    """A diagonal Gaussian with TanhSquashed's sampling interface and no squashing (action = u)."""

    def squash(self, u: Tensor) -> Tensor:
        return u

    def sample_pre_squash(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        return self.sample(sample_shape)

    def log_prob_pre_squash(self, u: Tensor) -> Tensor:
        return self.log_prob(u)

    def rsample_and_log_prob(self, sample_shape: tuple[int, ...] = ()) -> tuple[Tensor, Tensor]:
        action = self.rsample(sample_shape)
        return action, self.log_prob(action)


class LinearGaussianPolicy(nn.Module):
    """pi(a | s) = N(W s + c, diag(exp(log_std))^2); parameters in the order W, c, log_std."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.weight = nn.Parameter(torch.randn(ACT_DIM, OBS_DIM, generator=generator))
        self.bias = nn.Parameter(torch.randn(ACT_DIM, generator=generator))
        self.log_std = nn.Parameter(torch.tensor([-0.5, 0.2]))

    def forward(self, obs: Tensor) -> IdentitySquashedNormal:
        loc = obs @ self.weight.T + self.bias  # (B, O) @ (O, A) -> (B, A)
        return IdentitySquashedNormal(loc, self.log_std.exp().expand_as(loc), validate_args=False)


class QuadraticCritic(nn.Module):
    """Q(s, a) = -1/2 ||a - K s||^2, as a one-member ensemble (output (1, B)).

    `action_gradient_bias` adds bias * (a - a.detach()): zero in value, but it shifts dQ/da,
    so an estimator that differentiates through the action sees a different gradient.
    """

    def __init__(self, action_gradient_bias: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("gain", torch.tensor([[1.0, -0.5, 0.0], [0.3, 0.0, 2.0]]))
        self.action_gradient_bias = action_gradient_bias
        self.action_requires_grad: list[bool] = []

    def forward(self, obs: Tensor, action: Tensor, detach_params: bool = False) -> Tensor:
        self.action_requires_grad.append(action.requires_grad)
        q = -0.5 * (action - obs @ self.gain.T).pow(2).sum(-1)  # (B, A) -> (B,)
        q = q + self.action_gradient_bias * (action - action.detach()).sum(-1)  # (B, A) -> (B,)
        return q.unsqueeze(0)  # (B,) -> (1, B)


def states(n: int = BATCH) -> Tensor:
    return torch.randn(n, OBS_DIM, generator=torch.Generator().manual_seed(2))


def closed_form_gradient(policy: LinearGaussianPolicy, critic: QuadraticCritic,
                         obs: Tensor) -> Tensor:
    with torch.no_grad():
        d = obs @ (policy.weight - critic.gain).T + policy.bias  # (B, A)
        grad_w = -(d.unsqueeze(2) * obs.unsqueeze(1)).mean(0)  # (B, A, O) -> (A, O)
        grad_c = -d.mean(0)  # (B, A) -> (A,)
        grad_log_std = ALPHA - policy.log_std.exp() ** 2
    return torch.cat([grad_w.reshape(-1), grad_c, grad_log_std])


def closed_form_pathwise_var(policy: LinearGaussianPolicy, critic: QuadraticCritic,
                             obs: Tensor) -> Tensor:
    with torch.no_grad():
        d = obs @ (policy.weight - critic.gain).T + policy.bias  # (B, A)
        var_sigma = policy.log_std.exp() ** 2  # (A,)
        var_w = (var_sigma.view(-1, 1) * obs.pow(2).unsqueeze(1)).mean(0)  # (B, A, O) -> (A, O)
        var_c = var_sigma
        var_log_std = (d.pow(2) * var_sigma + 2 * var_sigma.pow(2)).mean(0)  # (B, A) -> (A,)
    return torch.cat([var_w.reshape(-1), var_c, var_log_std]) / obs.shape[0]


def estimates(estimator: str, policy: nn.Module, critic: nn.Module, obs: Tensor, k: int) -> Tensor:
    return gradient_samples(lambda: actor_surrogate(estimator, policy, critic, obs, ALPHA),
                            list(policy.parameters()), k)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_estimator_is_unbiased_for_the_closed_form_gradient(estimator: str) -> None:
    torch.manual_seed(0)
    policy, critic, obs = LinearGaussianPolicy(), QuadraticCritic(), states()
    samples = estimates(estimator, policy, critic, obs, 1500)  # (K, P)
    std_err = (samples.var(0) / samples.shape[0]).sqrt()  # (K, P) -> (P,)
    z = (samples.mean(0) - closed_form_gradient(policy, critic, obs)) / std_err
    assert z.abs().max() < K_SE, z


def test_pathwise_variance_matches_its_closed_form() -> None:
    torch.manual_seed(0)
    policy, critic, obs = LinearGaussianPolicy(), QuadraticCritic(), states()
    samples = estimates("pathwise", policy, critic, obs, 2500)  # (K, P)
    centred_sq = (samples - samples.mean(0)).pow(2)  # (K, P)
    var = centred_sq.mean(0) * samples.shape[0] / (samples.shape[0] - 1)  # (K, P) -> (P,)
    # SE of a variance: sd of (g - mean)^2 / sqrt(K)
    std_err = (centred_sq.var(0) / samples.shape[0]).sqrt()
    z = (var - closed_form_pathwise_var(policy, critic, obs)) / std_err
    assert z.abs().max() < K_SE, z


def test_the_reference_gradient_is_the_closed_form_within_its_standard_error() -> None:
    torch.manual_seed(0)
    policy, critic, obs = LinearGaussianPolicy(), QuadraticCritic(), states()
    draws = 512
    reference = reference_gradient(policy, critic, obs, ALPHA, draws)
    # draws actions per state
    std_err = (closed_form_pathwise_var(policy, critic, obs) / draws).sqrt()
    z = (reference - closed_form_gradient(policy, critic, obs)) / std_err
    assert z.abs().max() < K_SE, z


def test_the_score_function_gets_no_gradient_through_the_sampled_action() -> None:
    policy, obs = LinearGaussianPolicy(), states()
    plain, biased = QuadraticCritic(), QuadraticCritic(action_gradient_bias=100.0)
    for estimator in ESTIMATORS:
        torch.manual_seed(0)
        with_plain = estimates(estimator, policy, plain, obs, 3)
        torch.manual_seed(0)
        with_biased = estimates(estimator, policy, biased, obs, 3)
        # Same values, different dQ/da: only an estimator that differentiates through a changes.
        assert torch.equal(with_plain, with_biased) == (estimator != "pathwise"), estimator
    assert all(plain.action_requires_grad[:3]), "pathwise evaluates Q on a differentiable action"
    assert not any(plain.action_requires_grad[3:]), "score-function actions must carry no gradient"


def trace_and_std_err(samples: Tensor) -> tuple[float, float]:
    """Variance trace of K estimates and its standard error (sd of ||g_k - mean||^2 / sqrt(K))."""
    k = samples.shape[0]
    sq_dist = (samples - samples.mean(0)).pow(2).sum(1)  # (K, P) -> (K,)
    return float(sq_dist.mean()) * k / (k - 1), float(sq_dist.std() / k**0.5)


def test_the_state_baseline_reduces_the_score_function_variance() -> None:
    torch.manual_seed(0)
    policy, critic, obs = LinearGaussianPolicy(), QuadraticCritic(), states()
    plain, plain_se = trace_and_std_err(estimates("score_function", policy, critic, obs, 800))
    based, based_se = trace_and_std_err(
        estimates("score_function_baseline", policy, critic, obs, 800)
    )
    assert plain - based > K_SE * math.hypot(plain_se, based_se)  # independent estimates


def test_a_learned_value_baseline_keeps_reinforce_unbiased_and_reduces_its_variance() -> None:
    """REINFORCE's estimator on the same problem with alpha = 0: return G = Q(s, a), a ~ pi(.|s),
    states drawn from a pool. V(s) fitted by regression to G (as the learner does) keeps the
    estimate unbiased and, since E[G | s] varies across states, removes most of its variance."""
    torch.manual_seed(0)
    policy, critic, pool = LinearGaussianPolicy(), QuadraticCritic(), states(64)
    value = ValueNetwork(OBS_DIM, [32, 32])
    optimizer = torch.optim.Adam(value.parameters(), lr=1e-2)
    with torch.no_grad():
        fit_obs = pool.repeat(32, 1)  # (64, O) -> (2048, O)
        fit_returns = critic(fit_obs, policy(fit_obs).sample()).squeeze(0)  # (1, 2048) -> (2048,)
    for _ in range(300):
        loss = baseline_regression_loss(value(fit_obs), fit_returns)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def estimate(with_baseline: bool) -> Tensor:
        obs = pool[torch.randint(len(pool), (16,))]  # (16, O)
        dist = policy(obs)
        action = dist.sample_pre_squash()
        returns = critic(obs, action).squeeze(0)  # (1, 16) -> (16,)
        baseline = value(obs).detach() if with_baseline else None
        return policy_surrogate(dist.log_prob_pre_squash(action), returns, baseline,
                                normalize=False)

    params = list(policy.parameters())
    with_value = gradient_samples(lambda: estimate(True), params, 1000)  # (K, P)
    without = gradient_samples(lambda: estimate(False), params, 1000)
    truth = closed_form_gradient(policy, critic, pool)
    truth[-ACT_DIM:] = -policy.log_std.detach().exp() ** 2  # alpha = 0 here
    z = (with_value.mean(0) - truth) / (with_value.var(0) / with_value.shape[0]).sqrt()
    assert z.abs().max() < K_SE, z
    based, based_se = trace_and_std_err(with_value)
    plain, plain_se = trace_and_std_err(without)
    assert plain - based > K_SE * math.hypot(plain_se, based_se), (plain, based)


def test_pathwise_is_sacs_own_actor_gradient() -> None:
    torch.manual_seed(0)
    actor, critic = TanhSquashedActor(OBS_DIM, ACT_DIM, [16]), EnsembleQ(OBS_DIM, ACT_DIM, [16])
    obs, alpha = states(), torch.tensor(ALPHA)
    params = list(actor.parameters())
    torch.manual_seed(5)
    ours = torch.autograd.grad(actor_surrogate("pathwise", actor, critic, obs, alpha), params)
    torch.manual_seed(5)
    sacs = torch.autograd.grad(-actor_loss(actor, critic, obs, alpha)[0], params)
    for a, b in zip(ours, sacs, strict=True):
        torch.testing.assert_close(a, b)


def test_sac_gradient_metrics_cover_the_three_estimators() -> None:
    torch.manual_seed(0)
    actor, critic = TanhSquashedActor(OBS_DIM, ACT_DIM, [16]), EnsembleQ(OBS_DIM, ACT_DIM, [16])
    metrics = sac_gradient_metrics(actor, critic, states(32), torch.tensor(ALPHA))
    assert set(metrics) == {f"grad/{e}_{m}" for e in ESTIMATORS
                            for m in ("var_trace", "norm_mean", "cosine", "snr")}
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert metrics["grad/pathwise_cosine"] > metrics["grad/score_function_cosine"]


def test_the_objective_uses_the_smaller_q_of_the_ensemble_and_subtracts_alpha_log_pi() -> None:
    """Clipped double-Q: min(1, 5) - 0.3 * 0.5 = 0.85 and min(3, 2) - 0.3 * (-1) = 2.3."""

    class TwoCritics(nn.Module):
        def forward(self, obs: Tensor, action: Tensor, detach_params: bool = False) -> Tensor:
            return torch.tensor([[1.0, 3.0], [5.0, 2.0]])  # (E, B)

    log_prob = torch.tensor([0.5, -1.0])
    objective = actor_objective(TwoCritics(), states(2), torch.zeros(2, ACT_DIM), log_prob, ALPHA)
    torch.testing.assert_close(objective, torch.tensor([0.85, 2.3]))


def test_the_objective_differentiates_q_through_the_action_only() -> None:
    torch.manual_seed(0)
    critic = EnsembleQ(OBS_DIM, ACT_DIM, [16])
    action = torch.randn(BATCH, ACT_DIM, requires_grad=True)
    actor_objective(critic, states(), action, torch.zeros(BATCH), ALPHA).sum().backward()
    assert action.grad is not None and bool(action.grad.abs().sum() > 0)
    assert all(p.grad is None for p in critic.parameters())  # no critic weight gradients computed


def test_the_soft_value_baseline_is_the_closed_form_soft_value_within_its_standard_error() -> None:
    """b(s) estimates V(s) = E_a[Q - alpha log pi] = -1/2 (||d||^2 + sum sigma^2) + alpha H, with
    per-draw variance sum_i d_i^2 sigma_i^2 + (alpha - sigma_i^2)^2 / 2 (module docstring's
    problem; f_i = const - d_i sigma_i eps_i + (alpha - sigma_i^2) eps_i^2 / 2)."""
    torch.manual_seed(0)
    policy, critic, obs = LinearGaussianPolicy(), QuadraticCritic(), states()
    draws = 4000
    baseline = soft_value_baseline(policy(obs), critic, obs, ALPHA, draws)
    assert baseline.shape == (BATCH,) and not baseline.requires_grad
    with torch.no_grad():
        d = obs @ (policy.weight - critic.gain).T + policy.bias  # (B, A)
        sigma = policy.log_std.exp()  # (A,)
        entropy = (0.5 * math.log(2 * math.pi * math.e) + policy.log_std).sum()
        value = -0.5 * (d.pow(2).sum(1) + sigma.pow(2).sum()) + ALPHA * entropy  # (B, A) -> (B,)
        var = (d.pow(2) * sigma.pow(2) + (ALPHA - sigma.pow(2)).pow(2) / 2).sum(1)  # (B, A) -> (B,)
    z = (baseline - value) / (var / draws).sqrt()
    assert z.abs().max() < K_SE, z


class RecordingPolicy(LinearGaussianPolicy):
    """LinearGaussianPolicy that records the sample shape of every rsample_and_log_prob call."""

    def __init__(self) -> None:
        super().__init__()
        self.draws: list[tuple[int, ...]] = []

    def forward(self, obs: Tensor) -> IdentitySquashedNormal:
        dist = super().forward(obs)
        draw = dist.rsample_and_log_prob

        def recorded(sample_shape: tuple[int, ...] = ()) -> tuple[Tensor, Tensor]:
            self.draws.append(tuple(sample_shape))
            return draw(sample_shape)

        dist.rsample_and_log_prob = recorded  # type: ignore[method-assign]
        return dist


@pytest.mark.parametrize(("chunk", "draws_per_chunk"), [(48, 5), (4, 1)])
def test_the_reference_is_taken_in_the_fewest_equal_chunks_within_the_chunk_size(
        chunk: int, draws_per_chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """20 draws at 8 states: at most 48 pairs a chunk -> 4 chunks of 5 draws (6 does not divide
    20); at most 4 pairs -> one draw (8 pairs) a chunk. The mean is still the closed form."""
    monkeypatch.setattr(policy_gradients, "REFERENCE_CHUNK", chunk)
    torch.manual_seed(0)
    policy, critic, obs = RecordingPolicy(), QuadraticCritic(), states()
    reference = reference_gradient(policy, critic, obs, ALPHA, 20)
    assert policy.draws == [(draws_per_chunk,)] * (20 // draws_per_chunk)
    std_err = (closed_form_pathwise_var(policy, critic, obs) / 20).sqrt()
    z = (reference - closed_form_gradient(policy, critic, obs)) / std_err
    assert z.abs().max() < K_SE, z


def test_summarize_reports_the_hand_computed_figures() -> None:
    """Estimates (3, 0), (0, 4), (3, 4): norms 3, 4, 5; column variances 3 and 16/3; mean
    (2, 8/3) of norm 10/3; cosines to (1, 0) of 1, 0, 3/5."""
    samples = torch.tensor([[3.0, 0.0], [0.0, 4.0], [3.0, 4.0]])
    figures = summarize(samples, torch.tensor([1.0, 0.0]))
    assert figures == pytest.approx({"grad_var_trace": 25 / 3, "grad_norm_mean": 4.0,
                                     "cosine_to_reference": 1.6 / 3,
                                     "snr": (10 / 3) / math.sqrt(25 / 3)})


def test_the_figures_share_one_baseline_draw_across_repeats_and_use_the_reference_draws() -> None:
    """Critic calls: 1 for the reference (4 draws, one chunk), 1 for the shared b(s)
    (BASELINE_SAMPLES draws), then one per estimator and repeat: 1 + 1 + 3 * 3."""
    torch.manual_seed(0)
    policy, critic = RecordingPolicy(), QuadraticCritic()
    figures = sac_gradient_figures(policy, critic, states(), ALPHA, repeats=3, reference_draws=4)
    assert list(figures) == list(ESTIMATORS)
    assert policy.draws[:2] == [(4,), (BASELINE_SAMPLES,)]
    assert len(critic.action_requires_grad) == 1 + 1 + 3 * 3


def test_an_unknown_estimator_is_a_one_line_error() -> None:
    policy, critic = LinearGaussianPolicy(), QuadraticCritic()
    with pytest.raises(ValueError) as error:
        actor_surrogate("reinforce", policy, critic, states(), ALPHA)
    assert str(error.value) == ("estimator must be one of pathwise, score_function, "
                                "score_function_baseline; got 'reinforce'")


# --------------------------------------------------------------------------------- the command line


def write_run(out: Path, kind: str, learner: SACLearner | ReinforceLearner, env: EnvConfig,
              agent: object) -> None:
    """A run directory as train.py leaves it: config.yaml and checkpoints/step_<N>.pt."""
    out.mkdir()
    (out / "config.yaml").write_text(
        yaml.safe_dump({"kind": kind, "seed": 0, "env": asdict(env), "agent": asdict(agent)})
    )
    save_checkpoint({"step": learner.step, "learner": learner.state_dict()}, out / "checkpoints",
                    learner.step)


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    env, agent = EnvConfig("Pendulum-v1", 1), SACConfig(hidden_sizes=[16, 16], batch_size=32,
                                                        learning_starts=50)
    learner = SACLearner(env, agent, seed=0, device=torch.device("cpu"), eval_episodes=1)
    while learner.step < 120:
        learner.advance(log=False)
    out = tmp_path_factory.mktemp("sac") / "run"
    write_run(out, "sac", learner, env, agent)
    return out


def test_the_cli_reports_every_estimator_of_a_sac_run(sac_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--run", str(sac_run), "--batch", "16", "--repeats", "4", "--reference-draws", "8"]
    assert variance.main([*args, "--json", str(tmp_path / "v.json"),
                          "--plot", str(tmp_path / "v.png")]) == 0
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["kind"] == "sac" and report["step"] == 120 and report["batch"] == 16
    assert report["reference"] == {"estimator": "pathwise", "samples": 16 * 8}
    assert set(report["estimators"]) == set(ESTIMATORS)
    for figures in report["estimators"].values():
        assert set(figures) == {"grad_var_trace", "grad_norm_mean", "cosine_to_reference", "snr",
                                "reference_samples"}
        assert figures["grad_var_trace"] > 0 and -1 <= figures["cosine_to_reference"] <= 1
    assert report["sweep"]["batch_sizes"] == [8, 16]
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"
    assert "score_function_baseline" in capsys.readouterr().out


def test_the_cli_compares_policy_families_at_the_same_states(
    sac_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--policy-distribution: one row per estimator and family; the run's own family (normal)
    comes out exactly as without the option, so every family is measured at the same states."""
    args = ["--run", str(sac_run), "--batch", "16", "--repeats", "4", "--reference-draws", "8"]
    assert variance.main([*args, "--json", str(tmp_path / "own.json")]) == 0
    assert variance.main([*args, "--json", str(tmp_path / "all.json"),
                          "--plot", str(tmp_path / "all.png"),
                          "--policy-distribution", "normal", "laplace", "logistic"]) == 0
    own, compared = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("own", "all"))
    assert own["policy_distributions"] == ["normal"]
    assert compared["policy_distributions"] == ["normal", "laplace", "logistic"]
    families = ("normal", "laplace", "logistic")
    assert list(compared["estimators"]) == [f"{e} ({f})" for f in families for e in ESTIMATORS]
    for name in ESTIMATORS:
        assert compared["estimators"][f"{name} (normal)"] == own["estimators"][name]
        assert (compared["sweep"]["grad_var_trace"][f"{name} (normal)"]
                == own["sweep"]["grad_var_trace"][name])
        assert compared["estimators"][f"{name} (laplace)"] != own["estimators"][name]
    assert "score_function_baseline (logistic)" in capsys.readouterr().out
    assert (tmp_path / "all.png").read_bytes()[:4] == b"\x89PNG"


def test_the_cli_rejects_an_unknown_policy_family(sac_run: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        variance.main(["--run", str(sac_run), "--policy-distribution", "cauchy"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'cauchy'" in capsys.readouterr().err


def test_the_cli_reports_reinforce_mc_for_a_reinforce_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    env, agent = EnvConfig("Pendulum-v1", 2), ReinforceConfig(hidden_sizes=[16], rollout_steps=8,
                                                              value_steps=2)
    learner = ReinforceLearner(env, agent, seed=0, device=torch.device("cpu"), eval_episodes=1,
                               grad_variance_every=0)
    learner.advance(log=False)
    write_run(tmp_path / "run", "reinforce", learner, env, agent)
    out = tmp_path / "v.json"
    assert variance.main(["--run", str(tmp_path / "run"), "--batch", "16", "--repeats", "3",
                          "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["estimators"]) == {"reinforce_mc"}
    assert report["reference"] == {"estimator": "reinforce_mc", "samples": 3 * 16}
    assert report["sweep"]["batch_sizes"] == [8, 16]
    argv = ["--run", str(tmp_path / "run"), "--batch", "16", "--repeats", "3", "--json", str(out)]
    assert variance.main([*argv, "--policy-distribution", "normal", "logistic"]) == 0
    compared = json.loads(out.read_text())
    assert list(compared["estimators"]) == ["reinforce_mc (normal)", "reinforce_mc (logistic)"]
    assert compared["estimators"]["reinforce_mc (normal)"] == report["estimators"]["reinforce_mc"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: None, "not a run directory"),
    (lambda p: (p / "config.yaml").write_text("kind: vae\n"), "a policy comes from an RL run"),
    (lambda p: (p / "config.yaml").write_text("kind: sac\nenv: {}\nagent: {}\n"), "no checkpoint"),
])
def test_the_cli_rejects_what_is_not_a_finished_rl_run(make, message: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    make(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        variance.main(["--run", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_checkpoints_are_read_back_with_weights_only(sac_run: Path) -> None:
    path = list_checkpoints(sac_run / "checkpoints")[0]
    state = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    assert state["step"] == 120
