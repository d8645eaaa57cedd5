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
from controller.session.runner import OFF_TIMEOUT_S, PHASE_RECORD_LEAD_S, SessionRunner
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


@pytest.mark.parametrize("action", ["pause", "stop"])
async def test_a_pause_or_stop_just_before_a_switch_records_no_less_than_was_delivered(
    tmp_path: Path, action: str
) -> None:
    # A phase's record is written PHASE_RECORD_LEAD_S before its instant; a pause or a stop
    # in those milliseconds must not lose the heat being delivered, nor the cold to come.
    async with bench(tmp_path) as b:
        runner = await _ready(b)
        just_before = HEAT_S - PHASE_RECORD_LEAD_S / 2
        b.later(_phase("heat"), just_before, runner.pause if action == "pause" else runner.stop)
        if action == "pause":
            b.later(
                lambda e: isinstance(e, StateChanged) and e.state == "paused",
                PAUSE_S,
                runner.resume,
            )
        finished = await b.run(runner)
        session = b.ledger.sessions()[0]
        rows = recorded_phases(session)
        heat = sum(seconds for mode, seconds in rows if mode == "heat")
        cold = sum(seconds for mode, seconds in rows if mode == "cold")
        if action == "pause":
            assert finished.outcome == "completed"
            assert finished.delivered_s == pytest.approx(HEAT_S + COLD_S, abs=0.01)
            assert heat == pytest.approx(HEAT_S, abs=PHASE_RECORD_LEAD_S)
            assert cold == pytest.approx(COLD_S, abs=0.01)
        else:
            assert finished.outcome == "stopped"
            assert finished.delivered_s == pytest.approx(just_before, abs=0.01)
            assert just_before <= heat <= HEAT_S  # counted to the instant at most
            assert cold == 0.0  # the cold never began
        assert not any(seconds < 0 for _, seconds in rows)
        assert_off(b.world, PAD)


async def test_a_pause_in_a_rest_just_before_a_hold_records_no_pause_as_stretching(
    tmp_path: Path,
) -> None:
    # After a rest (nothing recorded) the next hold's record is written ahead; a pause right
    # then must not leave that row open across the pause.
    async with bench(tmp_path, devices=()) as b:
        plan = b.plan("stretch-lower-back")
        runner = b.runner(plan)
        rest = next(p for p in plan.phases if p.mode == "off")
        hold = next(p for p in plan.phases if p.start_s == rest.end_s)
        b.later(
            lambda e: isinstance(e, StateChanged) and e.state == "running",
            hold.start_s - PHASE_RECORD_LEAD_S / 2,
            runner.pause,
        )
        b.later(
            lambda e: isinstance(e, StateChanged) and e.state == "paused", PAUSE_S, runner.resume
        )
        finished = await b.run(runner)
        assert finished.outcome == "completed"
        rows = recorded_phases(b.ledger.sessions()[0])
        planned = sum(p.duration_s for p in plan.phases if p.mode != "off")
        assert sum(seconds for _, seconds in rows) == pytest.approx(planned, abs=0.01)
        assert max(seconds for _, seconds in rows) <= hold.duration_s + 0.01


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
