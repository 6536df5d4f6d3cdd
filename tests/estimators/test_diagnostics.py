"""The gradient-diagnostics scheduler every learner uses."""

import pytest
import torch

from estimators.diagnostics import GradientDiagnostics


def test_diagnostics_run_on_the_first_logged_update_after_each_multiple_and_leave_the_rng_alone() -> None:  # noqa: E501
    diagnostics = GradientDiagnostics(every=3, seed=0, device=torch.device("cpu"))
    ran = []

    def measure() -> dict[str, float]:
        ran.append(float(torch.rand(())))
        return {"grad/x": 1.0}

    torch.manual_seed(0)
    before = torch.get_rng_state()
    logged = [diagnostics(n, log=n % 2 == 1, measure=measure) for n in range(10)]  # updates 1..10
    assert [n + 1 for n, m in enumerate(logged) if m] == [4, 6, 10]  # due at 3 (not logged), 6, 9
    assert torch.equal(torch.get_rng_state(), before)
    assert len(set(ran)) == 3  # each measurement on its own seeded copy


def test_diagnostics_state_resumes_the_schedule() -> None:
    first = GradientDiagnostics(every=3, seed=0, device=torch.device("cpu"))
    assert first(3, log=True, measure=lambda: {"grad/x": 1.0}) == {"grad/x": 1.0}  # update 4
    second = GradientDiagnostics(every=3, seed=0, device=torch.device("cpu"))
    second.load_state_dict(first.state_dict())
    assert second(4, log=True, measure=lambda: {"grad/x": 2.0}) == {}  # update 5: next due is 6
    assert second(5, log=True, measure=lambda: {"grad/x": 3.0}) == {"grad/x": 3.0}


def test_diagnostics_reject_a_negative_period() -> None:
    with pytest.raises(ValueError, match=r"grad_variance_every must be >= 0 \(0 = off\), got -1"):
        GradientDiagnostics(every=-1, seed=0, device=torch.device("cpu"))
