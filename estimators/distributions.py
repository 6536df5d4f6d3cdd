"""Samplers written as z = g(params, eps): every `rsample` is differentiable in the parameters.

Read top to bottom: argument checks, the diagonal Gaussian, the inverse-CDF samplers
(Exponential, Weibull, Kumaraswamy), the other location-scale families (Laplace, Logistic,
LogNormal), the tanh-squashed policies built on the normal, Laplace and logistic families
(TanhSquashed), and finally the Gumbel-Softmax (Concrete) relaxation with its
temperature schedules.

We build on `torch.distributions` wherever it already has the right sampler and density and
write by hand only what it lacks; each hand-written part says why next to it. Every class is
stateless: nothing sampled is ever stored on `self`.

Bad parameters raise a one-line `ValueError`. Shape checks are free and always run; value
checks (scale > 0, temperature > 0, ...) read the tensor back to the host, so they follow
`validate_args` like torch does: `None` uses torch's global default
(`Distribution.set_default_validate_args`, on unless python runs with -O) and `False` skips
them (hot training loops pass False).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import (
    Distribution,
    Independent,
    Normal,
    RelaxedOneHotCategorical,
    constraints,
)
from torch.distributions import Laplace as TorchLaplace
from torch.distributions import LogNormal as TorchLogNormal

# A sample shape, as torch.distributions accepts it.
Shape = torch.Size | list[int] | tuple[int, ...]

__all__ = [
    "LOCATION_SCALE_FAMILIES",
    "ConstantTemperature",
    "DiagNormal",
    "Exponential",
    "ExponentialTemperature",
    "GumbelSoftmax",
    "InverseCDF",
    "Kumaraswamy",
    "Laplace",
    "LocationScaleFamily",
    "LogNormal",
    "Logistic",
    "TanhSquashed",
    "Weibull",
    "location_scale_family",
]


# --------------------------------------------------------------------------------------------
# Argument checks shared by every sampler below
# --------------------------------------------------------------------------------------------


def _validating(validate_args: bool | None) -> bool:
    """Whether value checks run: `None` follows torch's global default, as torch does."""
    return Distribution._validate_args if validate_args is None else validate_args


def _require_broadcastable(**named: Tensor) -> torch.Size:
    """Broadcast shape of the named tensors, or a one-line ValueError stating every shape."""
    shapes = {name: tuple(value.shape) for name, value in named.items()}
    distinct = {shape for shape in shapes.values() if shape}  # () broadcasts against anything
    if len(distinct) <= 1:  # the common case, without torch.broadcast_shapes' ~12 us per call
        return torch.Size(distinct.pop() if distinct else ())
    try:
        return torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        listed = " vs ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shape mismatch: {listed} do not broadcast") from None


def _require_positive(name: str, value: Tensor) -> None:
    """One-line ValueError unless every entry is > 0 (NaN fails as well)."""
    if value.numel() > 0 and not bool((value > 0).all()):
        worst = "" if value.numel() == 1 else "min "
        raise ValueError(f"{name} must be > 0, got {worst}{value.min().item():.4g}")


def _check_loc_scale(loc: Tensor | float, scale: Tensor | float,
                     validate_args: bool | None) -> torch.Size:
    """Check a (loc, scale) pair; returns their broadcast shape."""
    loc_t, scale_t = torch.as_tensor(loc), torch.as_tensor(scale)
    shape = _require_broadcastable(loc=loc_t, scale=scale_t)
    if _validating(validate_args):
        if bool(torch.isnan(loc_t).any()):
            raise ValueError(f"loc must not be NaN, got "
                             f"{int(torch.isnan(loc_t).sum())} NaN entries")
        _require_positive("scale", scale_t)
    return shape


# --------------------------------------------------------------------------------------------
# Diagonal Gaussian
# --------------------------------------------------------------------------------------------


class DiagNormal(Independent):
    """Gaussian with diagonal covariance; the last dimension is the event dimension.

    z = loc + scale * eps, eps ~ N(0, I). A thin `Independent(Normal(loc, scale), 1)`: torch
    already has the sampler, density and entropy; this class adds the one-line argument checks
    and the `.loc` / `.scale` names.

    Shapes (sample_shape S, batch dims ..., event size A):
        loc, scale        (..., A)   broadcastable to each other
        rsample(S)        (*S, ..., A)
        log_prob(z)       (*S, ...)  summed over the event dimension
        entropy()         (...)
    """

    def __init__(self, loc: Tensor, scale: Tensor, validate_args: bool | None = None) -> None:
        shape = _check_loc_scale(loc, scale, validate_args)
        if len(shape) == 0:
            raise ValueError(
                "DiagNormal needs an event dimension: loc and scale must have at least 1 dim, "
                "got shape ()"
            )
        super().__init__(Normal(loc, scale, validate_args=validate_args), 1,
                         validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale


# --------------------------------------------------------------------------------------------
# Inverse-CDF samplers: x = F^{-1}(u; theta), u ~ U(0, 1)
# --------------------------------------------------------------------------------------------


class InverseCDF(Distribution):
    """Base of the samplers reparameterized through their inverse CDF (inverse transform sampling).

    Any continuous distribution whose quantile function F^{-1}(u; theta) has a closed form is
    reparameterizable: u ~ U(0, 1) is parameter-free noise and x = F^{-1}(u; theta) is
    differentiable in theta. Differentiating F(x; theta) = u at fixed u gives the pathwise
    derivative without inverting anything by hand:
        dx/dtheta = -(dF/dtheta)(x; theta) / p(x; theta)        (implicit function theorem)
    and autograd through `icdf` computes exactly this. Subclasses define `icdf`, `cdf`,
    `log_prob`, `mean` and `variance`; the base draws u and owns `rsample`.

    u is clamped into [eps, 1 - eps] (eps of the dtype: 1.2e-7 in float32, 2.2e-16 in float64)
    because torch.rand can return exactly 0, where F^{-1} may be infinite, and because a u as
    small as `tiny` still underflows x to 0 for a Weibull or Kumaraswamy with concentration < 1
    (then log p(x) = inf). The clamp moves at most eps of mass in each tail onto its edge.
    Element-wise (event shape ()), like torch's univariate distributions.
    """

    has_rsample = True

    def __init__(self, like: Tensor, validate_args: bool | None) -> None:
        # `like`: the broadcast parameters' shape, dtype and device, which the noise u takes.
        self._noise_dtype, self._noise_device = like.dtype, like.device
        super().__init__(like.shape, validate_args=validate_args)

    def rsample(self, sample_shape: Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        finfo = torch.finfo(self._noise_dtype)
        u = torch.rand(shape, dtype=self._noise_dtype, device=self._noise_device)
        return self.icdf(u.clamp(min=finfo.eps, max=1.0 - finfo.eps))


def _check_positive_pair(
    validate_args: bool | None, **named: Tensor | float
) -> tuple[Tensor, Tensor]:
    """Broadcast two positive parameters; shape check always, value check when validating."""
    tensors = {name: torch.as_tensor(value) for name, value in named.items()}
    _require_broadcastable(**tensors)
    if _validating(validate_args):
        for name, value in tensors.items():
            _require_positive(name, value)
    first, second = torch.distributions.utils.broadcast_all(*named.values())
    return first, second


class Exponential(InverseCDF):
    """Exponential(rate): x = F^{-1}(u) = -log(1 - u) / rate, u ~ U(0, 1).

    F(x) = 1 - exp(-rate x); log p(x) = log rate - rate x (x >= 0); mean 1/rate,
    variance 1/rate^2. Pathwise derivative dx/drate = -x / rate.
    (torch's Exponential draws with `Tensor.exponential_`; this one is the inverse-CDF
    construction, checked against it in tests/estimators.)

    Shapes: rate (...); rsample(S) (*S, ...); log_prob(x), cdf(x), icdf(u) like x.
    """

    arg_constraints = {"rate": constraints.positive}  # noqa: RUF012 (torch's API)
    support = constraints.nonnegative

    def __init__(self, rate: Tensor | float, validate_args: bool | None = None) -> None:
        (self.rate,) = torch.distributions.utils.broadcast_all(rate)
        if _validating(validate_args):
            _require_positive("rate", self.rate)
        super().__init__(self.rate, validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()  # E x = 1 / rate

    @property
    def variance(self) -> Tensor:
        return self.rate.pow(-2)  # Var x = 1 / rate^2

    def cdf(self, value: Tensor) -> Tensor:
        return -torch.expm1(-self.rate * value)  # F = 1 - e^{-rate x}

    def icdf(self, value: Tensor) -> Tensor:
        return -torch.log1p(-value) / self.rate  # F^{-1}(u) = -log(1 - u) / rate

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self.rate.log() - self.rate * value  # log p = log rate - rate x


class Weibull(InverseCDF):
    """Weibull(scale, concentration): x = scale * (-log(1 - u))^(1 / concentration).

    With lambda = scale and k = concentration: F(x) = 1 - exp(-(x/lambda)^k),
        log p(x) = log k - log lambda + (k - 1) log(x / lambda) - (x / lambda)^k   (x > 0),
    mean lambda Gamma(1 + 1/k), variance lambda^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2].
    k = 1 is Exponential(1 / lambda). Parameter names as torch.distributions.Weibull.

    Shapes: scale, concentration (...) broadcastable; rsample(S) (*S, ...); log_prob(x) like x.
    """

    arg_constraints = {  # noqa: RUF012 (torch's API)
        "scale": constraints.positive,
        "concentration": constraints.positive,
    }
    support = constraints.positive

    def __init__(
        self,
        scale: Tensor | float,
        concentration: Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        self.scale, self.concentration = _check_positive_pair(
            validate_args, scale=scale, concentration=concentration
        )
        super().__init__(self.scale, validate_args)

    def _gamma_moment(self, n: float) -> Tensor:
        return torch.lgamma(1.0 + n / self.concentration).exp()  # Gamma(1 + n/k)

    @property
    def mean(self) -> Tensor:
        return self.scale * self._gamma_moment(1.0)  # E x = lambda Gamma(1 + 1/k)

    @property
    def variance(self) -> Tensor:
        # Var x = lambda^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2]
        return self.scale.pow(2) * (self._gamma_moment(2.0) - self._gamma_moment(1.0).pow(2))

    def cdf(self, value: Tensor) -> Tensor:
        return -torch.expm1(-(value / self.scale).pow(self.concentration))  # 1 - e^{-(x/lambda)^k}

    def icdf(self, value: Tensor) -> Tensor:
        # F^{-1}(u) = lambda (-log(1 - u))^{1/k}
        return self.scale * (-torch.log1p(-value)).pow(self.concentration.reciprocal())

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        k, t = self.concentration, value / self.scale
        return k.log() - self.scale.log() + (k - 1.0) * t.log() - t.pow(k)


class Kumaraswamy(InverseCDF):
    """Kumaraswamy(a, b) on (0, 1): x = (1 - (1 - u)^(1/b))^(1/a) (Kumaraswamy 1980).

    A Beta-like density with a closed-form CDF, so unlike the Beta it reparameterizes by
    inversion (used as a Beta surrogate in stick-breaking VAEs, Nalisnick & Smyth 2017):
        F(x) = 1 - (1 - x^a)^b,   log p(x) = log a + log b + (a - 1) log x + (b - 1) log(1 - x^a),
        E x^n = b B(1 + n/a, b) = b Gamma(1 + n/a) Gamma(b) / Gamma(1 + n/a + b).
    a = concentration1, b = concentration0, as torch.distributions.Kumaraswamy names them.

    Shapes: concentration1, concentration0 (...) broadcastable; rsample(S) (*S, ...).
    """

    arg_constraints = {  # noqa: RUF012
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval

    def __init__(
        self,
        concentration1: Tensor | float,
        concentration0: Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        self.concentration1, self.concentration0 = _check_positive_pair(
            validate_args, concentration1=concentration1, concentration0=concentration0
        )
        super().__init__(self.concentration1, validate_args)

    def _raw_moment(self, n: float) -> Tensor:
        a, b = self.concentration1, self.concentration0
        # E x^n = b Gamma(1 + n/a) Gamma(b) / Gamma(1 + n/a + b), summed in logs
        shifted = 1.0 + n / a
        log_moment = b.log() + torch.lgamma(shifted) + torch.lgamma(b) - torch.lgamma(shifted + b)
        return log_moment.exp()

    @property
    def mean(self) -> Tensor:
        return self._raw_moment(1.0)

    @property
    def variance(self) -> Tensor:
        return self._raw_moment(2.0) - self._raw_moment(1.0).pow(2)  # E x^2 - (E x)^2

    def cdf(self, value: Tensor) -> Tensor:
        # F = 1 - (1 - x^a)^b, as -expm1(b log(1 - x^a))
        return -torch.expm1(self.concentration0 * torch.log1p(-value.pow(self.concentration1)))

    def icdf(self, value: Tensor) -> Tensor:
        # F^{-1}(u) = (1 - (1 - u)^{1/b})^{1/a}, with 1 - (1 - u)^{1/b} = -expm1(log(1 - u) / b)
        inner = -torch.expm1(torch.log1p(-value) / self.concentration0)
        return inner.pow(self.concentration1.reciprocal())

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return a.log() + b.log() + (a - 1.0) * value.log() + (b - 1.0) * torch.log1p(-value.pow(a))


# --------------------------------------------------------------------------------------------
# Other location-scale families and the exponential of a Gaussian
# --------------------------------------------------------------------------------------------


class Laplace(TorchLaplace):
    """Laplace(loc, scale): z = loc - scale * sign(v) * log(1 - |v|), v ~ U(-1, 1).

    torch's class has the sampler, density and entropy (log(2 scale) + 1); this adds the
    one-line argument checks. Element-wise like torch (event shape ()): wrap in
    `Independent(..., 1)` to sum log-densities over a last dimension.

    Shapes: loc, scale (...); rsample(S) (*S, ...); log_prob(z) (*S, ...); entropy() (...).
    """

    def __init__(
        self, loc: Tensor | float, scale: Tensor | float, validate_args: bool | None = None
    ) -> None:
        _check_loc_scale(loc, scale, validate_args)
        super().__init__(loc, scale, validate_args=validate_args)


class Logistic(InverseCDF):
    """Logistic(loc, scale): z = F^{-1}(v) = loc + scale * logit(v), v ~ U(0, 1).

    Hand-written: torch has no Logistic distribution (its documented recipe,
    `TransformedDistribution(Uniform(0, 1), [SigmoidTransform().inv, AffineTransform])`, has no
    entropy or moments, and its uniform draw can be exactly 0, giving -inf). An inverse-CDF
    sampler: `InverseCDF.rsample` draws v away from 0 and 1.

    Density, with t = (z - loc) / scale:
        log p(z) = -t - 2 softplus(-t) - log scale     (= log[e^-t / (scale (1 + e^-t)^2)])
    Entropy: log scale + 2. Mean loc, variance scale^2 pi^2 / 3. Element-wise (event shape ()).

    Shapes: loc, scale (...); rsample(S) (*S, ...); log_prob(z) (*S, ...); entropy() (...).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}  # noqa: RUF012
    support = constraints.real

    def __init__(
        self, loc: Tensor | float, scale: Tensor | float, validate_args: bool | None = None
    ) -> None:
        _check_loc_scale(loc, scale, validate_args)
        self.loc, self.scale = torch.distributions.utils.broadcast_all(loc, scale)
        super().__init__(self.loc, validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2) * (math.pi**2 / 3.0)  # Var = s^2 pi^2 / 3

    def cdf(self, value: Tensor) -> Tensor:
        return torch.sigmoid((value - self.loc) / self.scale)

    def icdf(self, value: Tensor) -> Tensor:
        return self.loc + self.scale * torch.logit(value)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        t = (value - self.loc) / self.scale
        return -t - 2.0 * F.softplus(-t) - self.scale.log()

    def entropy(self) -> Tensor:
        return self.scale.log() + 2.0  # H = log s + 2


class LogNormal(TorchLogNormal):
    """LogNormal(loc, scale): z = exp(loc + scale * eps), eps ~ N(0, 1).

    `loc` and `scale` are the mean and standard deviation of log z. torch's class has the
    sampler, density and entropy; this adds the one-line argument checks. Element-wise
    (event shape ()).

    Shapes: loc, scale (...); rsample(S) (*S, ...); log_prob(z) (*S, ...); entropy() (...).
    """

    def __init__(
        self, loc: Tensor | float, scale: Tensor | float, validate_args: bool | None = None
    ) -> None:
        _check_loc_scale(loc, scale, validate_args)
        super().__init__(loc, scale, validate_args=validate_args)


# --------------------------------------------------------------------------------------------
# Tanh-squashed location-scale policies (the policy distributions of SAC and REINFORCE)
# --------------------------------------------------------------------------------------------

# The location-scale families by name: each is element-wise with parameters (loc, scale) and
# draws z = loc + scale * eps, eps from a fixed standard density. The policies squash them
# (`agent.policy_distribution`) and the toy problems (estimators.problems) integrate over them.
# The one place they are listed (a test checks the Literal names them all).
LocationScaleFamily = Literal["normal", "laplace", "logistic"]
LocationScale = Normal | Laplace | Logistic  # what a family builds from (loc, scale)
LOCATION_SCALE_FAMILIES: dict[LocationScaleFamily, type[LocationScale]] = {
    "normal": Normal,
    "laplace": Laplace,
    "logistic": Logistic,
}


def location_scale_family(name: str) -> type[LocationScale]:
    """The family LOCATION_SCALE_FAMILIES names `name`, or a one-line ValueError listing them."""
    if name not in LOCATION_SCALE_FAMILIES:
        raise ValueError(
            f"family must be one of {', '.join(LOCATION_SCALE_FAMILIES)}, got {name!r}"
        )
    return LOCATION_SCALE_FAMILIES[name]


def tanh_squash(u: Tensor, action_scale: Tensor, action_bias: Tensor) -> Tensor:
    """action = action_bias + action_scale * tanh(u); u (..., A) -> action (..., A).

    Also usable without a TanhSquashed, for the deterministic action tanh(loc) alone: building
    the distribution's shape checks into a graph pins its batch size under torch.export.
    """
    return action_bias + action_scale * torch.tanh(u)


class TanhSquashed(Distribution):
    """action = action_bias + action_scale * tanh(u), u_i ~ family(loc_i, scale_i) independent.

    `family` names one of LOCATION_SCALE_FAMILIES (normal: the SAC paper's tanh-Gaussian; laplace;
    logistic). `u` is the pre-squash draw: policies store it and score it again with
    `log_prob_pre_squash`, because scoring an action means inverting tanh (atanh), which is
    infinite for a saturated sample.

    Hand-written rather than `TransformedDistribution(base, [TanhTransform, AffineTransform])`
    because that class scores an action by inverting it unless its transform caches the last
    sample on itself (state). Here the sampler returns the action and its log-density from ONE
    pre-squash draw u, and every density is scored on u (pytorch/rl's TanhNormal does the same).

    Change of variables (SAC paper, Haarnoja et al. 2018, appendix C, eq. 21), for any family:
        log pi(a) = sum_i [log p(u_i; loc_i, scale_i) - log(1 - tanh(u_i)^2) - log(action_scale_i)]
    with the overflow-free identity log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)),
    finite for any finite u (the naive form is log(0) = -inf once tanh(u) rounds to 1).

    Shapes (sample_shape S, batch dims ..., action size A):
        loc, scale                   (..., A)
        action_scale, action_bias    broadcastable to (..., A): floats or e.g. (A,)
        rsample_and_log_prob(S)      action (*S, ..., A), log_prob (*S, ...)
        sample_pre_squash(S)         (*S, ..., A), no gradient
        log_prob_pre_squash(u)       (*S, ...)
        log_prob(action)             (*S, ...)
        mode                         (..., A)
    """

    arg_constraints: dict[str, constraints.Constraint] = {}  # noqa: RUF012 (torch's API)
    has_rsample = True

    def __init__(
        self,
        loc: Tensor,
        scale: Tensor,
        action_scale: Tensor | float = 1.0,
        action_bias: Tensor | float = 0.0,
        family: LocationScaleFamily = "normal",
        validate_args: bool | None = None,
    ) -> None:
        base_class = location_scale_family(family)
        shape = _check_loc_scale(loc, scale, validate_args)
        if len(shape) == 0:
            raise ValueError(
                f"{type(self).__name__} needs an event dimension: loc and scale must have at "
                "least 1 dim, got shape ()"
            )
        # element-wise (..., A); checked above, so the family's own checks are off
        self.base = base_class(loc, scale, validate_args=False)
        self.action_scale = torch.as_tensor(action_scale, dtype=loc.dtype, device=loc.device)
        self.action_bias = torch.as_tensor(action_bias, dtype=loc.dtype, device=loc.device)
        shape = _require_broadcastable(
            loc=loc, scale=scale, action_scale=self.action_scale, action_bias=self.action_bias
        )
        # A float action_scale is checked for free; a tensor one only when validating (host sync).
        if isinstance(action_scale, float | int) or _validating(validate_args):
            _require_positive("action_scale", self.action_scale)
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base.loc

    @property
    def scale(self) -> Tensor:
        return self.base.scale

    @property
    def mode(self) -> Tensor:
        """Deterministic action: the squashed location (used for evaluation)."""
        return self.squash(self.loc)

    def squash(self, u: Tensor) -> Tensor:
        """Pre-squash draw (..., A) -> action (..., A)."""
        return tanh_squash(u, self.action_scale, self.action_bias)

    def sample_pre_squash(self, sample_shape: Shape = ()) -> Tensor:
        """A pre-squash draw u without gradient (store it; score it with `log_prob_pre_squash`)."""
        with torch.no_grad():
            return self.base.sample(torch.Size(sample_shape))

    def log_prob_pre_squash(self, u: Tensor) -> Tensor:
        """Log-density of the action squash(u), scored on the pre-squash u (stable for any u)."""
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2), SAC app. C
        log_det = log_det + torch.log(self.action_scale)  # (*S, ..., A)
        return (self.base.log_prob(u) - log_det).sum(-1)  # (*S, ..., A) -> (*S, ...)

    def rsample_and_log_prob(self, sample_shape: Shape = ()) -> tuple[Tensor, Tensor]:
        """(action, log_prob) from one reparameterized pre-squash draw; both carry gradients."""
        u = self.base.rsample(torch.Size(sample_shape))
        return self.squash(u), self.log_prob_pre_squash(u)

    def rsample_and_log_prob_backward(
        self, u: Tensor, grad_action: Tensor, grad_log_prob: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The pathwise gradient of (action, log_prob) = (squash(u), log_prob_pre_squash(u)).

        Along the reparameterization u = loc + scale * eps (eps fixed), given dL/daction and
        dL/dlog_prob, returns (dL/dloc, dL/dlog(scale)). With t = tanh(u):
            d action / du = action_scale (1 - t^2)
            d log_prob / du = 2 t           (log p(u; loc, scale) = log p0(eps) - log scale is
                                             a function of eps alone on the path, for every
                                             location-scale family; -d/du log(1 - t^2) = 2 t)
            du / dloc = 1,  du / dlog(scale) = scale * eps = u - loc
            d log_prob / dlog(scale) = -1    (the -log(scale) of log p, directly)
        so one formula serves every family. It equals autograd through `rsample_and_log_prob`
        (tests/estimators); SAC's explicit update uses it so no graph is built.

        Shapes: u, grad_action (..., A); grad_log_prob (...) -> (..., A), (..., A).
        """
        t = torch.tanh(u)
        grad_log_prob = grad_log_prob.unsqueeze(-1)  # (...) -> (..., 1), the same for every dim
        grad_u = grad_action * self.action_scale * (1.0 - t * t) + grad_log_prob * 2.0 * t
        return grad_u, grad_u * (u - self.loc) - grad_log_prob

    def rsample(self, sample_shape: Shape = ()) -> Tensor:
        return self.squash(self.base.rsample(torch.Size(sample_shape)))

    def sample(self, sample_shape: Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density of given actions, e.g. from a replay buffer.

        The actions are mapped back with atanh after clipping y = (a - bias) / scale into
        [-1 + eps, 1 - eps] (eps = machine epsilon of the dtype), so actions at exactly the
        bounds score finitely instead of atanh(+-1) = +-inf. Prefer `log_prob_pre_squash` when
        the pre-squash draw is available: it needs no inversion.
        """
        eps = torch.finfo(value.dtype).eps
        y = ((value - self.action_bias) / self.action_scale).clamp(-1.0 + eps, 1.0 - eps)
        return self.log_prob_pre_squash(torch.atanh(y))


# --------------------------------------------------------------------------------------------
# Gumbel-Softmax / Concrete relaxation of a categorical, and its temperature schedules
# --------------------------------------------------------------------------------------------


class GumbelSoftmax(RelaxedOneHotCategorical):
    """Concrete / Gumbel-Softmax (Maddison et al. 2017; Jang et al. 2017).

    y = softmax((logits + g) / temperature), g_k ~ Gumbel(0, 1) i.i.d.: a point on the simplex
    that tends to a one-hot categorical sample as temperature -> 0 (with exploding gradient
    variance). torch's `RelaxedOneHotCategorical` has the sampler and the density of relaxed
    samples; this subclass adds the argument checks and the straight-through option torch
    lacks: with `hard=True`, `rsample` returns the one-hot argmax of y in the forward pass and
    the gradient of y in the backward pass (Jang et al. 2017, section 2.2).

    `log_prob` is the Concrete density of a relaxed (soft) sample; a one-hot vertex has
    density 0 there, so do not score hard samples with it.

    Shapes (sample_shape S, batch dims ..., K categories):
        logits            (..., K)
        temperature       float or tensor broadcastable to (...)
        rsample(S)        (*S, ..., K), on the simplex; one-hot values when hard
        log_prob(y)       (*S, ...)
    """

    def __init__(
        self,
        logits: Tensor,
        temperature: Tensor | float,
        hard: bool = False,
        validate_args: bool | None = None,
    ) -> None:
        if logits.dim() < 1 or logits.shape[-1] < 2:
            raise ValueError(
                f"logits must have shape (..., K) with K >= 2 categories, got {tuple(logits.shape)}"
            )
        temperature_t = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device)
        _require_broadcastable(logits_batch=logits[..., 0], temperature=temperature_t)
        # A float temperature is checked for free; a tensor one only when validating (host sync).
        if isinstance(temperature, float | int) or _validating(validate_args):
            _require_positive("temperature", temperature_t)
        super().__init__(temperature_t, logits=logits, validate_args=validate_args)
        self.hard = hard

    def rsample(self, sample_shape: Shape = ()) -> Tensor:
        soft = super().rsample(torch.Size(sample_shape))
        if not self.hard:
            return soft
        index = soft.argmax(dim=-1, keepdim=True)  # (*S, ..., K) -> (*S, ..., 1)
        one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
        # Straight-through: soft - soft.detach() is exactly 0 forward (so the value is exactly
        # one-hot) and has the identity Jacobian backward (so the gradient is the soft sample's).
        return one_hot + (soft - soft.detach())

    def sample(self, sample_shape: Shape = ()) -> Tensor:
        # Override: the parent samples through its base distribution, bypassing `hard`.
        with torch.no_grad():
            return self.rsample(sample_shape)


def _require_step(step: int) -> None:
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")


@dataclass(frozen=True)
class ConstantTemperature:
    """tau(step) = value. A pure function of the step, so resuming needs only the step."""

    # The temperature at every step; > 0.
    value: float

    def __post_init__(self) -> None:
        if not self.value > 0:
            raise ValueError(f"temperature value must be > 0, got {self.value}")

    def __call__(self, step: int) -> float:
        _require_step(step)
        return self.value


@dataclass(frozen=True)
class ExponentialTemperature:
    """tau(step) = max(floor, start * exp(-decay_rate * step)).

    The annealing schedule of Jang et al. 2017 (section 4.1: tau = max(0.5, exp(-r t))),
    with the starting value made explicit. A pure function of the step.
    """

    # Temperature at step 0; > 0.
    start: float
    # Rate r of the exponential decay per step; >= 0 (0 keeps the temperature at `start`).
    decay_rate: float
    # Lowest temperature ever returned; in (0, start].
    floor: float

    def __post_init__(self) -> None:
        if not self.start > 0:
            raise ValueError(f"start must be > 0, got {self.start}")
        if not self.decay_rate >= 0:
            raise ValueError(f"decay_rate must be >= 0, got {self.decay_rate}")
        if not 0 < self.floor <= self.start:
            raise ValueError(f"floor must be in (0, start={self.start}], got {self.floor}")

    def __call__(self, step: int) -> float:
        _require_step(step)
        return max(self.floor, self.start * math.exp(-self.decay_rate * step))
