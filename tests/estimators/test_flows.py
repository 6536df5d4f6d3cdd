"""Normalizing flows: log-determinants against autograd Jacobians, a 2-D density that integrates
to 1, the exact inverse, and rsample gradients against finite differences."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.distributions.transforms import ExpTransform, Transform

from estimators.distributions import DiagNormal
from estimators.flows import (
    CouplingFlow,
    FlowDistribution,
    PlanarFlow,
    PlanarTransform,
)

DIM = 3
CONTEXT = 4


def randomized(module: torch.nn.Module, std: float = 0.5) -> torch.nn.Module:
    """The module in float64 with every parameter redrawn: the zero-initialized coupling
    output layer would otherwise make the flow the identity, with a trivial log-det."""
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)
    return module


def flows(dim: int, conditional: bool, std: float = 0.5) -> list[torch.nn.Module]:
    """A planar flow and a coupling flow, 3 steps each, parameters drawn with this std."""
    context = CONTEXT if conditional else None
    return [randomized(PlanarFlow(dim, 3, context_dim=context), std),
            randomized(CouplingFlow(dim, 3, hidden=8, context_dim=context), std)]


def log_abs_det_autograd(function: Callable[[torch.Tensor], torch.Tensor],
                         x: torch.Tensor) -> torch.Tensor:
    """log |det J| of a map R^D -> R^D at one point x (D,), from the full autograd Jacobian."""
    jacobian = torch.autograd.functional.jacobian(function, x)  # (D,) -> (D, D)
    return torch.linalg.slogdet(jacobian).logabsdet


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_each_step_log_det_equals_the_log_abs_det_of_the_autograd_jacobian(
    conditional: bool
) -> None:
    torch.manual_seed(0)
    batch = 5
    context = torch.randn(batch, CONTEXT, dtype=torch.float64) if conditional else None
    x = 1.5 * torch.randn(batch, DIM, dtype=torch.float64)
    for flow in flows(DIM, conditional):
        for step in flow(context):
            closed_form = step.log_abs_det_jacobian(x, step(x))  # (B,)
            assert closed_form.shape == (batch,)
            for i in range(batch):
                # Row i alone moves: the step with example i's parameters, as a map of one point.
                def row(v: torch.Tensor, i: int = i, step: Transform = step) -> torch.Tensor:
                    return step(torch.cat([x[:i], v.unsqueeze(0), x[i + 1:]]))[i]

                expected = log_abs_det_autograd(row, x[i])
                torch.testing.assert_close(closed_form[i], expected, rtol=1e-10, atol=1e-10)


def test_the_sampler_log_prob_equals_base_minus_the_composed_jacobian_and_torch_inverse_log_prob() -> None:  # noqa: E501
    torch.manual_seed(1)
    loc, scale = torch.randn(DIM, dtype=torch.float64), torch.rand(DIM, dtype=torch.float64) + 0.5
    steps = [t for flow in flows(DIM, conditional=False) for t in flow()]
    q = FlowDistribution(DiagNormal(loc, scale), steps)
    z, log_prob = q.rsample_and_log_prob((6,))  # (6, D), (6,)
    base = DiagNormal(loc, scale)
    for k in range(6):
        # Recover the base draw by the exact inverse and differentiate the whole flow there.
        eps = z[k].detach()
        for step in reversed(steps):
            eps = step.inv(eps)

        def composed(v: torch.Tensor) -> torch.Tensor:
            for step in steps:
                v = step(v)
            return v

        expected = base.log_prob(eps) - log_abs_det_autograd(composed, eps)
        torch.testing.assert_close(log_prob[k], expected, rtol=1e-9, atol=1e-9)
    # torch's TransformedDistribution.log_prob (inversion) scores the same draws identically.
    torch.testing.assert_close(q.log_prob(z), log_prob, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_inverse_undoes_each_step(conditional: bool) -> None:
    torch.manual_seed(2)
    context = torch.randn(7, CONTEXT, dtype=torch.float64) if conditional else None
    # sample dims broadcast over the context's
    x = 2.0 * torch.randn(4, 7, DIM, dtype=torch.float64)
    for flow in flows(DIM, conditional):
        for step in flow(context):
            torch.testing.assert_close(step.inv(step(x)), x, rtol=1e-10, atol=1e-10)


def test_planar_step_stays_invertible_when_u_points_against_w() -> None:
    w = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    u = -5.0 * w  # w . u = -25: without the u_hat correction 1 + u . psi would reach -24
    step = PlanarTransform(u, w, torch.zeros(1, dtype=torch.float64))
    assert float((step.w * step.u_hat).sum()) > -1.0
    z = torch.linspace(-3, 3, 101, dtype=torch.float64).unsqueeze(-1) * w / w.norm()  # along w
    assert bool((step(z) @ w.T).squeeze(-1).diff().gt(0).all()), "the step must be monotone along w"


def test_a_2d_flow_density_integrates_to_one_on_a_grid() -> None:
    torch.manual_seed(3)
    # std 0.3: moderate coupling shifts, so a box of half-width 10 holds all the mass.
    steps = [t for flow in flows(2, conditional=False, std=0.3) for t in flow()]
    q = FlowDistribution(
        DiagNormal(torch.zeros(2, dtype=torch.float64), torch.full((2,), 0.7, dtype=torch.float64)),
        steps)
    half_width, points = 10.0, 801
    # Mass outside the box, by sampling: none of 20000 draws leaves it, so it is below ~1.5e-4
    # (95%); the midpoint rule at h = 0.025 errs by O(h^2 max |Hessian|) ~ 1e-4 here.
    with torch.no_grad():
        draws = q.sample((20_000,))
    assert float(draws.abs().max()) < half_width
    axis = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    cell = (axis[1] - axis[0]) ** 2
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)  # (P^2, 2)
    with torch.no_grad():
        mass = float(q.log_prob(grid).exp().sum() * cell)  # (P^2,) -> ()
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_rsample_gradients_match_central_finite_differences() -> None:
    torch.manual_seed(4)
    context = torch.randn(2, CONTEXT, dtype=torch.float64, requires_grad=True)
    loc = torch.randn(2, DIM, dtype=torch.float64, requires_grad=True)
    log_scale = (0.3 * torch.randn(2, DIM, dtype=torch.float64)).requires_grad_()
    modules = flows(DIM, conditional=True)

    def objective() -> torch.Tensor:
        torch.manual_seed(123)  # the same eps at every evaluation: a deterministic function
        steps = [t for flow in modules for t in flow(context)]
        q = FlowDistribution(DiagNormal(loc, log_scale.exp()), steps)
        z, log_prob = q.rsample_and_log_prob((3,))
        return (torch.sin(z).sum(-1) + z.square().sum(-1) - log_prob).mean()  # (3, 2) -> ()

    params = [context, loc, log_scale, *(p for m in modules for p in m.parameters())]
    grads = torch.autograd.grad(objective(), params)
    generator = torch.Generator().manual_seed(5)
    h = 1e-6
    for param, grad in zip(params, grads, strict=True):
        flat, flat_grad = param.data.view(-1), grad.view(-1)
        for index in torch.randint(flat.numel(), (3,), generator=generator).tolist():
            original = float(flat[index])
            with torch.no_grad():
                flat[index] = original + h
                up = float(objective())
                flat[index] = original - h
                down = float(objective())
                flat[index] = original
            # central difference error O(h^2) ~ 1e-12, rounding ~ 1e-16 / h = 1e-10
            assert float(flat_grad[index]) == pytest.approx((up - down) / (2 * h), rel=1e-6,
                                                            abs=1e-7)


def test_bad_arguments_raise_one_line_errors() -> None:
    with pytest.raises(ValueError, match="event dimension 1"):
        FlowDistribution(DiagNormal(torch.zeros(2), torch.ones(2)), [ExpTransform()])
    with pytest.raises(ValueError, match="shape mismatch"):
        PlanarTransform(torch.zeros(3), torch.ones(2), torch.zeros(()))
    with pytest.raises(ValueError, match="dim >= 2"):
        CouplingFlow(1, 2)
    with pytest.raises(ValueError, match="needs a context"):
        PlanarFlow(2, 1, context_dim=3)()
    with pytest.raises(ValueError, match="takes none"):
        CouplingFlow(2, 1)(torch.zeros(1, 3))
