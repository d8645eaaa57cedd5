"""Controlling a running session: stop, emergency stop, pause and resume, cancelling its task.

Every way out leaves the outputs OFF (by the simulated device's own account) within
OFF_TIMEOUT_S and records the outcome; a pause turns the outputs OFF and shifts the rest of
the timeline by its length.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.session.events import Alarm, Event, Finished, PhaseChanged, StateChanged
from controller.session.runner import OFF_TIMEOUT_S, SessionRunner
from tests.session_harness import CONTRAST_MINI, Bench, assert_off, bench, recorded_phases

PAD = "contrast-pad"
HEAT_S = 120.0
COLD_S = 120.0
PAUSE_S = 60.0


def _phase(mode: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, PhaseChanged) and e.mode == mode


def _state(b: Bench, state: str) -> float:
    return b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == state).clock


async def _ready(b: Bench) -> SessionRunner:
    await b.bind(heat=PAD, cold=PAD, probe="skin-probe")
    b.watch_world()
    return b.runner(b.plan_from(CONTRAST_MINI))


@pytest.mark.parametrize(
    ("mode", "after_s", "control", "reason"),
    [
        pytest.param("cold", 30.0, "stop", "stopped by you", id="stop-in-cold"),
        pytest.param("heat", 30.0, "emergency_stop", "emergency stop", id="emergency-in-heat"),
        pytest.param("heat", 0.0, "emergency_stop", "emergency stop", id="emergency-at-switch-on"),
    ],
)
async def test_stop_ends_the_session_with_the_pad_off_and_records_it(
    tmp_path: Path, mode: str, after_s: float, control: str, reason: str
) -> None:
    async with bench(tmp_path) as b:
        runner = await _ready(b)
        done = b.later(_phase(mode), after_s, getattr(runner, control))
        finished = await b.run(runner)
        assert finished.outcome == "stopped"
        assert finished.reason == reason
        b.assert_off_within(PAD, done[0], OFF_TIMEOUT_S)
        assert_off(b.world, PAD)
        assert finished.devices_off
        assert not b.of_type(Alarm)
        delivered = (HEAT_S if mode == "cold" else 0.0) + after_s
        assert finished.delivered_s == pytest.approx(delivered, abs=1.0)
        session = b.ledger.sessions()[0]
        assert session.outcome == "stopped"
        assert sum(s for _, s in recorded_phases(session)) == pytest.approx(delivered, abs=1.0)


async def test_pause_turns_the_pad_off_and_resume_shifts_the_timeline(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner = await _ready(b)
        b.later(_phase("heat"), 30.0, runner.pause)
        b.later(
            lambda e: isinstance(e, StateChanged) and e.state == "paused", PAUSE_S, runner.resume
        )
        finished = await b.run(runner)
        assert finished.outcome == "completed"
        t0, paused, resumed = _state(b, "running"), _state(b, "paused"), _state(b, "resumed")
        assert resumed - paused == pytest.approx(PAUSE_S)
        # OFF while paused, heating again after
        during = [s for s in b.history(PAD) if paused < s.time < resumed]
        assert during
        assert not any(s.output_on or s.energised for s in during)
        cold_at = b.stamp_of(_phase("cold")).clock
        assert any(s.mode == "heat" for s in b.history(PAD) if resumed < s.time < cold_at)
        # everything after the pause happens PAUSE_S later; the phases keep their length
        assert cold_at - t0 == pytest.approx(HEAT_S + PAUSE_S, abs=1.0)
        assert finished.t == pytest.approx(HEAT_S + COLD_S, abs=1.0)  # session time
        assert finished.delivered_s == pytest.approx(HEAT_S + COLD_S, abs=1.0)
        session = b.ledger.sessions()[0]
        assert session.outcome == "completed"
        rows = recorded_phases(session)
        assert [m for m, _ in rows] == ["heat", "heat", "cold"]  # the pause splits the heat
        assert rows[0][1] == pytest.approx(30.0, abs=1.0)
        assert rows[0][1] + rows[1][1] == pytest.approx(HEAT_S, abs=1.0)
        assert_off(b.world, PAD)


async def test_cancelling_the_run_task_turns_off_records_stopped_and_propagates(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        runner = await _ready(b)
        task = asyncio.ensure_future(runner.run())
        done = b.later(_phase("heat"), 30.0, task.cancel)
        await b.clock.run(task)
        assert task.cancelled()
        with pytest.raises(asyncio.CancelledError):
            task.result()
        finished = b.events[-1]
        assert isinstance(finished, Finished)
        assert (finished.outcome, finished.reason) == ("stopped", "cancelled")
        assert finished.devices_off
        b.assert_off_within(PAD, done[0], OFF_TIMEOUT_S)
        assert_off(b.world, PAD)
        session = b.ledger.sessions()[0]
        assert session.outcome == "stopped"
        assert sum(s for _, s in recorded_phases(session)) == pytest.approx(30.0, abs=1.0)
