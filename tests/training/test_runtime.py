"""The process-wide torch settings every run starts with."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from agents.buffer import Batch
from agents.sac import SAC, SACConfig
from tests.training.conftest import busy_processes
from training.runtime import CLOCK_TICKS, ThreadGovernor, busy_cpu_seconds, configure_torch


def test_configure_torch_sets_the_threads_and_flushes_denormals_to_zero() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_flush_denormal(False)
        assert (torch.tensor([1e-20]) * 1e-19).item() > 0.0  # 1e-39: a float32 denormal
        configure_torch(1)
        assert torch.get_num_threads() == 1
        assert (torch.tensor([1e-20]) * 1e-19).item() == 0.0  # flushed
        assert (torch.tensor([1e-20]) * 1e-17).item() > 0.0  # 1e-37, a normal float32, is kept
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- the thread governor


class FakeMachine:
    """A /proc/stat file and two clocks that a test advances by hand: `run(wall, busy, own)` adds
    `wall` seconds, `busy` CPU seconds on the CPUs (split evenly), `own` of them this process's."""

    def __init__(self, path: Path, cpus: set[int]) -> None:
        self.path, self.cpus = path, sorted(cpus)
        self.wall = self.own = 0.0
        self.busy_ticks = dict.fromkeys(self.cpus, 0)
        self._write()

    def _write(self) -> None:
        # the busy ticks go to `user`, a constant to `idle` and `iowait` (neither counts as busy)
        # the total and a CPU we may not use
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0", "cpu99 5000 0 0 0 0 0 0 0 0 0"]
        lines += [f"cpu{c} {t} 0 0 777 55 0 0 0 0 0" for c, t in self.busy_ticks.items()]
        self.path.write_text("\n".join([*lines, "intr 1 2 3", "ctxt 42"]) + "\n")

    def run(self, wall: float, busy: float, own: float) -> None:
        self.wall += wall
        self.own += own
        for c in self.cpus:
            self.busy_ticks[c] += round(busy / len(self.cpus) * CLOCK_TICKS)
        self._write()


def governed(machine: FakeMachine, max_threads: int, adapt: bool = True) -> ThreadGovernor:
    return ThreadGovernor(max_threads, adapt=adapt, interval_s=1.0, stat_path=machine.path,
                          clock=lambda: machine.wall, own_cpu_seconds=lambda: machine.own)


def test_busy_cpu_seconds_counts_user_nice_system_irq_softirq_steal_of_our_cpus_only(
        tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 9 9\ncpu0 1 2 3 1000 1000 4 5 6 7 8\n"
                    "cpu1 10 0 0 0 0 0 0 0 0 0\ncpu2 500 0 0 0 0 0 0 0 0 0\nintr 1\n")
    assert busy_cpu_seconds(stat, {0, 1}) == pytest.approx(
        (1 + 2 + 3 + 4 + 5 + 6 + 10) / CLOCK_TICKS)
    assert busy_cpu_seconds(tmp_path / "missing", {0}) is None


@pytest.mark.parametrize(("others", "threads"),
                         [(0.0, 2), (0.45, 2), (0.55, 1), (0.67, 1), (1.0, 1), (2.0, 1)])
def test_the_governor_gives_torch_the_cpus_other_work_leaves_free(
        tmp_path: Path, two_cpus: set[int], others: float, threads: int) -> None:
    machine = FakeMachine(tmp_path / "stat", two_cpus)
    governor = governed(machine, max_threads=2)
    assert governor.poll() == 2  # the first reading only starts the interval
    own = 2.0 - others  # we use what the others leave: the CPUs stay fully busy
    machine.run(wall=10.0, busy=10.0 * (own + others), own=10.0 * own)
    assert governor.poll() == threads == torch.get_num_threads()


def test_the_governor_steps_down_under_load_and_back_when_it_ends(
        tmp_path: Path, two_cpus: set[int]) -> None:
    machine = FakeMachine(tmp_path / "stat", two_cpus)
    governor = governed(machine, max_threads=2)
    governor.poll()
    machine.run(wall=1.0, busy=2.0, own=1.3)  # a competing job got 0.7 of a CPU
    assert governor.poll() == 1
    machine.run(wall=0.5, busy=0.0, own=0.0)  # inside the interval: nothing is read
    machine.run(wall=0.4, busy=0.0, own=0.0)
    assert governor.poll() == 1
    machine.run(wall=0.1, busy=0.2, own=0.2)  # the job ended: 1 s of ours only
    assert governor.poll() == 2 == torch.get_num_threads()
    machine.run(wall=1.0, busy=1.0, own=1.0)  # one thread of ours busy, one CPU idle: still 2
    assert governor.poll() == 2


def test_the_governor_never_exceeds_max_threads_nor_drops_below_one(
        tmp_path: Path, two_cpus: set[int]) -> None:
    machine = FakeMachine(tmp_path / "stat", two_cpus)
    one = governed(machine, max_threads=1)
    assert not one.enabled
    machine.run(wall=1.0, busy=2.0, own=0.0)
    assert one.poll() == 1
    many = governed(machine, max_threads=8)  # more threads than CPUs: the CPUs bound it
    many.poll()
    machine.run(wall=1.0, busy=0.0, own=0.0)
    assert many.poll() == 2


def test_a_governor_told_not_to_adapt_keeps_its_threads_under_load(
        tmp_path: Path, two_cpus: set[int]) -> None:
    machine = FakeMachine(tmp_path / "stat", two_cpus)
    fixed = governed(machine, max_threads=2, adapt=False)
    fixed.poll()
    machine.run(wall=1.0, busy=2.0, own=0.5)
    assert fixed.poll() == 2 == fixed.threads == torch.get_num_threads()


def test_without_proc_stat_the_governor_keeps_its_threads(
        tmp_path: Path, two_cpus: set[int]) -> None:
    governor = ThreadGovernor(2, stat_path=tmp_path / "no-such-file")
    assert not governor.enabled
    assert governor.poll() == 2


def test_bad_governor_arguments_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"max_threads >= 1 and interval_s > 0, got 0 and 1.0"):
        ThreadGovernor(0)
    with pytest.raises(ValueError, match=r"got 2 and 0"):
        ThreadGovernor(2, interval_s=0)


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="reads Linux's /proc/stat")
def test_the_governor_sees_real_competing_processes(two_cpus: set[int]) -> None:
    """Two busy processes on our two CPUs: one thread; when they end: two again."""
    governor = ThreadGovernor(2, interval_s=0.5)
    governor.poll()
    time.sleep(0.6)
    if governor.poll() != 2:
        pytest.skip("other work already uses these CPUs; the test needs them idle")
    with busy_processes(two_cpus, 2):
        time.sleep(1.0)
        assert governor.poll() == 1 == torch.get_num_threads()
    governor.poll()  # closes the interval that saw the load end
    time.sleep(0.6)
    assert governor.poll() == 2 == torch.get_num_threads()


def sac_after_updates(compile_: bool, threads_per_update: list[int]) -> torch.Tensor:
    """All of a SAC's parameters after one update per entry, each at that many torch threads."""
    torch.manual_seed(0)
    agent = SAC(17, 6, SACConfig(compile=compile_), torch.device("cpu"))
    for step, threads in enumerate(threads_per_update):
        torch.set_num_threads(threads)
        draw = torch.Generator().manual_seed(step)
        batch = Batch(torch.randn(256, 17, generator=draw),
                      torch.rand(256, 6, generator=draw) * 2 - 1,
                      torch.randn(256, generator=draw), torch.randn(256, 17, generator=draw),
                      (torch.rand(256, generator=draw) < 0.1).float())
        torch.manual_seed(100 + step)  # the same noise draws in every run
        agent.update(batch, log=False)
    torch.set_num_threads(1)
    tensors = [agent.actor, agent.critic, agent.target_critic]
    return torch.cat([t.flatten() for m in tensors for t in m.state_dict().values()]
                     + [agent.log_alpha.detach().flatten()])


@pytest.mark.parametrize("compile_", [False, True])
def test_changing_the_thread_count_mid_run_does_not_change_sacs_numbers(compile_: bool) -> None:
    """The governor changes the thread count mid-run: SAC's updates at HalfCheetah's sizes
    (17-dim observations, 6 actions, 256-256, batch 256), eager and compiled (the kernels built at
    one count and run at another), give the same bits whatever the count, so what a run computes
    does not depend on the load it met. The two runs differ in the count at every update."""
    assert torch.equal(sac_after_updates(compile_, [2, 1, 1, 2, 1, 2]),
                       sac_after_updates(compile_, [1, 2, 2, 1, 2, 1]))
