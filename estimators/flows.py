"""Normalizing flows: z = f_K(...f_1(eps)) with the exact change of variables.

    log q(z_K) = log q_0(z_0) - sum_k log |det d z_k / d z_{k-1}|
    (Rezende & Mohamed 2015, eq. 6)

A flow is pure reparameterization: every step is a differentiable function of the previous
draw, so any `rsample`-able base (the core's `DiagNormal`, a conditional one from an encoder)
composes with it into a distribution with `rsample` and `log_prob`.

Read top to bottom: the planar step (a `torch.distributions.transforms.Transform`), the affine
coupling step (another one), `FlowDistribution` (torch's `TransformedDistribution` plus a
sampler that scores its own draw on the forward path, with no inversion), and the two
`nn.Module`s that own the flows' parameters: fixed ones, or per-example ones computed from a
context vector (the amortized form a VAE encoder needs).

Every step acts on the last dimension (event dimension 1) and broadcasts over the leading
ones; parameters of shape (B, ...) apply to samples of shape (K, B, D).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, TransformedDistribution, constraints
from torch.distributions.transforms import Transform

__all__ = [
    "AffineCouplingTransform",
    "CouplingFlow",
    "FlowDistribution",
    "PlanarFlow",
    "PlanarTransform",
]

# Bisection steps of the planar inverse: each halves a bracket of width 2 |w . u_hat|; 60 reach
# float64 resolution for any bracket below 2^8.
PLANAR_INVERSE_STEPS = 60


# --------------------------------------------------------------------------------------------
# Planar step
# --------------------------------------------------------------------------------------------


class PlanarTransform(Transform):
    """z' = z + u_hat * tanh(w . z + b)     (Rezende & Mohamed 2015, eq. 10).

    u_hat = u + (m(w . u) - w . u) w / |w|^2 with m(a) = -1 + softplus(a) makes w . u_hat > -1,
    which keeps the step invertible (their appendix A). The inverse has no closed form: the
    scalar a = w . z solves a + (w . u_hat) tanh(a + b) = w . z' (strictly increasing in a) and
    is found by bisection; one Newton step on top gives it the implicit-function gradient.

    Shapes: u, w (..., D), b (...), broadcastable against z (*S, ..., D);
    log_abs_det_jacobian(z, z') (*S, ...).
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, u: Tensor, w: Tensor, b: Tensor) -> None:
        super().__init__()
        if u.shape != w.shape or u.shape[:-1] != b.shape:
            raise ValueError(
                f"shape mismatch: u {tuple(u.shape)}, w {tuple(w.shape)} must equal and b "
                f"{tuple(b.shape)} must be their shape without the last dim"
            )
        self.w, self.b = w, b
        wu = (w * u).sum(-1, keepdim=True)  # (..., D) -> (..., 1)
        # u_hat = u + (m(w.u) - w.u) w / |w|^2, m(a) = -1 + softplus(a)   (appendix A)
        self.u_hat = u + (F.softplus(wu) - 1.0 - wu) * w / w.square().sum(-1, keepdim=True)

    def _pre_activation(self, z: Tensor) -> Tensor:
        return (self.w * z).sum(-1) + self.b  # (*S, ..., D) -> (*S, ...)

    def _call(self, z: Tensor) -> Tensor:
        return z + self.u_hat * torch.tanh(self._pre_activation(z)).unsqueeze(-1)

    def _inverse(self, y: Tensor) -> Tensor:
        wy = (self.w * y).sum(-1)  # (*S, ..., D) -> (*S, ...): the target of a + c tanh(a + b)
        c = (self.w * self.u_hat).sum(-1)  # (..., D) -> (...), c > -1
        with torch.no_grad():
            low, high = wy - c.abs(), wy + c.abs()  # |tanh| <= 1 brackets the root
            for _ in range(PLANAR_INVERSE_STEPS):
                mid = 0.5 * (low + high)
                above = mid + c * torch.tanh(mid + self.b) > wy
                low, high = torch.where(above, low, mid), torch.where(above, mid, high)
            a = 0.5 * (low + high)
        # Newton step a - g(a) / g'(a), g(a) = a + c tanh(a + b) - w.y: at the root its value is
        # unchanged and its derivative in (w, u, b, y) is the implicit function's.
        t = torch.tanh(a + self.b)
        a = a - (a + c * t - wy) / (1.0 + c * (1.0 - t * t))
        return y - self.u_hat * torch.tanh(a + self.b).unsqueeze(-1)

    def log_abs_det_jacobian(self, z: Tensor, y: Tensor) -> Tensor:
        t = torch.tanh(self._pre_activation(z))  # (*S, ...)
        # det(I + u_hat psi^T) = 1 + u_hat . psi, psi = (1 - tanh^2) w   (eq. 11-12)
        c = (self.w * self.u_hat).sum(-1)  # (..., D) -> (...)
        return torch.log1p(c * (1.0 - t * t))


# --------------------------------------------------------------------------------------------
# Affine coupling step
# --------------------------------------------------------------------------------------------


class AffineCouplingTransform(Transform):
    """y = m * x + (1 - m) * (x * exp(s) + t), (s, t) = conditioner(m * x)
    (Dinh et al. 2017, eq. 9).

    The masked half passes through unchanged and sets the scale and shift of the other half,
    so the Jacobian is triangular: log |det| = sum_i (1 - m_i) s_i, and the inverse is exact,
    x = m * y + (1 - m) * (y - t) * exp(-s). A conditional step bakes its context into the
    conditioner (see `CouplingFlow`).

    Shapes: mask (D,) of 0/1; conditioner (*S, ..., D) -> s, t (*S, ..., D);
    log_abs_det_jacobian(x, y) (*S, ...).
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, mask: Tensor,
                 conditioner: Callable[[Tensor], tuple[Tensor, Tensor]]) -> None:
        super().__init__()
        self.mask = mask
        self.conditioner = conditioner

    def _scale_shift(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.conditioner(self.mask * x)
        keep = 1.0 - self.mask
        return keep * s, keep * t  # zero on the masked half: identity there

    def _call(self, x: Tensor) -> Tensor:
        s, t = self._scale_shift(x)
        return x * s.exp() + t

    def _inverse(self, y: Tensor) -> Tensor:
        s, t = self._scale_shift(y)  # m * y = m * x: the conditioner sees the same input
        return (y - t) * (-s).exp()

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        s, _ = self._scale_shift(x)
        return s.sum(-1)  # (*S, ..., D) -> (*S, ...)


# --------------------------------------------------------------------------------------------
# A base distribution pushed through transforms
# --------------------------------------------------------------------------------------------


class FlowDistribution(TransformedDistribution):
    """`TransformedDistribution` whose sampler also returns the log-density of its own draw.

    `log_prob(z)` (torch's) inverts the transforms: exact for coupling steps, by bisection for
    planar ones. `rsample_and_log_prob` instead follows eps -> z forward and subtracts each
    step's log-determinant on the way, so a sample is scored without any inversion (what the
    ELBO and the IWAE bound of a flow posterior use). Stateless: torch's transform cache is
    not used.

    Shapes (sample_shape S, batch dims ..., event size D):
        base                event shape (D,), e.g. DiagNormal with loc (..., D)
        rsample(S)          (*S, ..., D)
        log_prob(z)         (*S, ...)
        rsample_and_log_prob(S)   z (*S, ..., D), log_prob (*S, ...)
    """

    def __init__(self, base: Distribution, transforms: list[Transform],
                 validate_args: bool | None = None) -> None:
        if len(base.event_shape) != 1:
            raise ValueError("base must have one event dimension, got event shape "
                             f"{tuple(base.event_shape)}")
        for transform in transforms:
            if transform.domain.event_dim != 1:
                raise ValueError("every transform must act on event dimension 1, got "
                                 f"{type(transform).__name__} with event dimension "
                                 f"{transform.domain.event_dim}")
        super().__init__(base, transforms, validate_args=validate_args)

    def rsample_and_log_prob(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[Tensor, Tensor]:
        """(z, log q(z)) from one reparameterized base draw; both carry gradients."""
        z = self.base_dist.rsample(torch.Size(sample_shape))
        log_prob = self.base_dist.log_prob(z)  # (*S, ...)
        for transform in self.transforms:
            z_next = transform(z)
            log_prob = log_prob - transform.log_abs_det_jacobian(z, z_next)  # eq. 6, one step
            z = z_next
        return z, log_prob


# --------------------------------------------------------------------------------------------
# Modules that own the parameters: fixed, or amortized from a context vector
# --------------------------------------------------------------------------------------------


class PlanarFlow(nn.Module):
    """`steps` planar steps on D dimensions.

    Unconditional (context_dim None): u, w, b are parameters. Conditional: a linear head maps
    a context c (e.g. encoder features of x) to every step's (u, w, b), one set per example
    (the amortized flow of Rezende & Mohamed 2015, section 4.2).

    Shapes: forward(context (..., C) or None) -> steps transforms with u, w (..., D), b (...)
    ((D,) and () unconditional).
    """

    def __init__(self, dim: int, steps: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim < 1 or steps < 1:
            raise ValueError(f"dim and steps must be >= 1, got dim {dim}, steps {steps}")
        self.dim, self.steps = dim, steps
        size = steps * (2 * dim + 1)  # (u, w, b) per step
        self.head = nn.Linear(context_dim, size) if context_dim is not None else None
        # Small random w, u: near the identity but with nonzero |w| (u_hat divides by |w|^2).
        self.params = None if self.head else nn.Parameter(0.1 * torch.randn(size))

    def forward(self, context: Tensor | None = None) -> list[Transform]:
        if (context is None) != (self.head is None):
            raise ValueError("a conditional PlanarFlow needs a context tensor, "
                             "an unconditional one takes none")
        flat = self.params if self.head is None else self.head(context)  # (..., steps * (2D + 1))
        assert flat is not None
        per_step = flat.unflatten(-1, (self.steps, 2 * self.dim + 1))  # -> (..., steps, 2D + 1)
        u, w, b = per_step.split([self.dim, self.dim, 1], dim=-1)
        return [PlanarTransform(u[..., k, :], w[..., k, :], b[..., k, 0])
                for k in range(self.steps)]


class _Conditioner(nn.Module):
    """MLP (masked x [, context]) -> (s, t); s = tanh(.) bounds each log-scale to (-1, 1).

    Shapes: x (*S, ..., D), context (..., C) or None -> s, t (*S, ..., D).
    """

    def __init__(self, dim: int, hidden: int, context_dim: int | None) -> None:
        super().__init__()
        out = nn.Linear(hidden, 2 * dim)
        nn.init.zeros_(out.weight)  # s = t = 0: every step starts as the identity
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(nn.Linear(dim + (context_dim or 0), hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), out)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if context is not None:
            context = context.expand(*x.shape[:-1], context.shape[-1])  # (..., C) -> (*S, ..., C)
            x = torch.cat([x, context], dim=-1)  # -> (*S, ..., D + C)
        raw_s, t = self.net(x).chunk(2, dim=-1)  # (*S, ..., 2D) -> 2 x (*S, ..., D)
        return torch.tanh(raw_s), t


class CouplingFlow(nn.Module):
    """`steps` affine coupling steps on D >= 2 dimensions, masks alternating between halves.

    Each conditioner is an MLP with two hidden layers of width `hidden`; with `context_dim`
    it also reads a context vector (the conditional form). The flow starts as the identity.

    Shapes: forward(context (..., C) or None) -> steps transforms acting on (*S, ..., D).
    """

    def __init__(self, dim: int, steps: int, hidden: int = 64,
                 context_dim: int | None = None) -> None:
        super().__init__()
        if dim < 2 or steps < 1 or hidden < 1:
            raise ValueError("coupling needs dim >= 2, steps >= 1, hidden >= 1; "
                             f"got {dim}, {steps}, {hidden}")
        self.context_dim = context_dim
        first_half = (torch.arange(dim) < dim // 2).float()  # (D,)
        self.register_buffer("masks", torch.stack([first_half if k % 2 == 0 else 1.0 - first_half
                                                   for k in range(steps)]))  # (steps, D)
        self.conditioners = nn.ModuleList(_Conditioner(dim, hidden, context_dim)
                                          for _ in range(steps))

    def forward(self, context: Tensor | None = None) -> list[Transform]:
        if (context is None) != (self.context_dim is None):
            raise ValueError("a conditional CouplingFlow needs a context tensor, "
                             "an unconditional one takes none")
        masks: Tensor = self.masks  # type: ignore[assignment]
        return [AffineCouplingTransform(mask, partial(conditioner, context=context))
                for mask, conditioner in zip(masks, self.conditioners, strict=True)]
