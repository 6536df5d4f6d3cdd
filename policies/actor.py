"""The policy of SAC and REINFORCE: an MLP that outputs a tanh-squashed location-scale
distribution (normal, Laplace or logistic) over [-1, 1]^A."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from estimators.distributions import (
    LocationScaleFamily,
    TanhSquashed,
    location_scale_family,
    tanh_squash,
)
from networks import bounded_log_scale, bounded_log_scale_grad, mlp


class TanhSquashedActor(nn.Module):
    """pi(a | s) = tanh(u), u_i ~ family(loc_i(s), exp(log_scale_i(s))): the policy of SAC and
    REINFORCE.

    `distribution` names the family (estimators.LOCATION_SCALE_FAMILIES: normal, the SAC paper's
    tanh-Gaussian, where the scale is the std; laplace; logistic). One MLP outputs (loc, raw
    log-scale) side by side; the raw log-scale is squashed smoothly into [LOG_STD_MIN,
    LOG_STD_MAX] (named for the normal's std; the same bound serves every family's scale).
    Actions live in [-1, 1]^A (action_scale 1, bias 0) because the training envs rescale that
    box onto each task's bounds (envs.make); agents.load_policy sets action_scale and
    action_bias to act in a task's own bounds.

    Shapes:
        obs                  (B, obs_dim)   (any leading dims work)
        forward(obs)         TanhSquashed with loc, scale (B, act_dim)
        mode(obs)            (B, act_dim), the deterministic action
        act(obs, ...)        (B, act_dim), no gradient
    """

    # log-std range: std from e^-5 ~ 0.007 (near-deterministic) to e^2 ~ 7.4 (saturates tanh)
    LOG_STD_MIN = -5.0
    LOG_STD_MAX = 2.0

    action_scale: Tensor
    action_bias: Tensor

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int],
                 distribution: LocationScaleFamily = "normal") -> None:
        super().__init__()
        location_scale_family(distribution)  # a one-line ValueError for an unknown name
        self.family = distribution
        self.net = mlp(obs_dim, hidden_sizes, 2 * act_dim)
        # Tensors, not floats: TanhSquashed then neither copies them to the device nor checks
        # them on the host per call. Not persistent: they are constants, not parameters.
        self.register_buffer("action_scale", torch.ones(()), persistent=False)
        self.register_buffer("action_bias", torch.zeros(()), persistent=False)

    @classmethod
    def bound_log_std(cls, raw: Tensor) -> Tensor:
        """The raw head output (any real) mapped smoothly into [LOG_STD_MIN, LOG_STD_MAX]
        (networks.bounded_log_scale: a tanh rescale, not a clamp)."""
        return bounded_log_scale(raw, cls.LOG_STD_MIN, cls.LOG_STD_MAX)

    @classmethod
    def bound_log_std_grad(cls, raw: Tensor) -> Tensor:
        """d bound_log_std / d raw, element-wise."""
        return bounded_log_scale_grad(raw, cls.LOG_STD_MIN, cls.LOG_STD_MAX)

    def forward(self, obs: Tensor) -> TanhSquashed:
        return self.distribution(self.net(obs))

    def distribution(self, out: Tensor) -> TanhSquashed:
        """The policy from the MLP's output: (B, 2A) -> TanhSquashed over (B, A)."""
        loc, raw_log_scale = out.chunk(2, dim=-1)  # (B, 2A) -> 2 x (B, A)
        scale = self.bound_log_std(raw_log_scale).exp()
        return TanhSquashed(loc, scale, self.action_scale, self.action_bias,
                            self.family, validate_args=False)

    def mode(self, obs: Tensor) -> Tensor:
        """The deterministic action bias + scale * tanh(loc(s)), without building the distribution
        (so torch.export / ONNX keep the batch dimension dynamic). (B, obs_dim) -> (B, act_dim)."""
        loc, _ = self.net(obs).chunk(2, dim=-1)  # (B, 2A) -> (B, A)
        return tanh_squash(loc, self.action_scale, self.action_bias)

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool) -> Tensor:
        """An action to send to the env: the mode tanh(loc) when deterministic, else a sample."""
        return self.mode(obs) if deterministic else self(obs).sample()
