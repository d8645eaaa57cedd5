"""Faults injected into the simulated devices while a session runs (S1 in docs/safety.md-S4).

High alarms end the session (``aborted``) with every output OFF within OFF_TIMEOUT_S, checked
against what the simulated device itself reports; a short link blip (< 10 s) pauses the
session and resumes it, and the phase still gets its full time. The ledger records the outcome
and every alarm with its limit ID.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.session.events import Alarm, Event, Finished, Notice, PhaseChanged, StateChanged
from controller.session.runner import OFF_TIMEOUT_S
from simulators.faults import (
    AttErrorFault,
    BatteryDies,
    Disconnect,
    DropNotifications,
    FaultSpec,
    RefuseConnections,
    SensorDrift,
    SensorNan,
    StuckHeater,
)
from tests.session_harness import (
    CONTRAST_MINI,
    MASSAGE_MINI,
    Bench,
    Stamped,
    assert_off,
    assert_same_phases,
    bench,
    planned_phases,
    recorded_phases,
)

# Phases of 67.5 s: the switch to cold falls between two lease renewals (they come every whole
# second of the pad's ON time), so the cold START is the first write after it.
CONTRAST_OFF_GRID = CONTRAST_MINI.replace("_minutes = 2", "_minutes = 1.125")


PAD = "contrast-pad"
PROBE = "skin-probe"
GUN = "massage-gun"
HEAT_S = 120.0  # CONTRAST_MINI's phases
COLD_S = 120.0


@dataclass(frozen=True)
class Abort:
    """A fault that must end the session: where and when it strikes, and the alarm it gives."""

    mode: str  # the phase it is injected in (PhaseChanged.mode)
    key: str  # the simulated device that gets it
    fault: FaultSpec  # ``at`` counts from the start of that phase
    reason: str  # the high alarm's reason
    limit_id: str
    profile: str = CONTRAST_MINI


def _phase(mode: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, PhaseChanged) and e.mode == mode


def _high(b: Bench) -> Stamped:
    return b.stamp_of(lambda e: isinstance(e, Alarm) and e.priority == "high")


def _state(b: Bench, state: str) -> Stamped:
    return b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == state)


async def _contrast(
    b: Bench, mode: str, key: str, fault: FaultSpec, profile: str = CONTRAST_MINI
) -> Finished:
    await b.bind(heat=PAD, cold=PAD, probe=PROBE)
    plan = b.plan_from(profile)
    b.watch_world()
    b.when(_phase(mode), lambda: b.world.inject(key, fault))
    return await b.run(b.runner(plan))


def _assert_aborted_with(b: Bench, finished: Finished, reason: str, limit_id: str) -> Alarm:
    assert finished.outcome == "aborted", finished
    high = _high(b)
    alarm = high.event
    assert isinstance(alarm, Alarm)
    assert (alarm.reason, alarm.limit_id) == (reason, limit_id), alarm
    assert finished.reason == alarm.message
    session = b.ledger.sessions()[0]
    assert session.outcome == "aborted"
    assert (limit_id, "high", alarm.message) in [
        (a.limit_id, a.priority, a.message) for a in session.alarms
    ]
    return alarm


CONTRAST_ABORTS = [
    pytest.param(
        Abort("preheat", PAD, RefuseConnections(at=5, duration=60, hide=True), "link-lost", "S2"),
        id="long-link-loss-in-preheat",
    ),
    pytest.param(
        Abort("heat", PAD, RefuseConnections(at=30, duration=60, hide=True), "link-lost", "S2"),
        id="long-link-loss-in-heat",
    ),
    pytest.param(
        Abort("heat", PROBE, SensorDrift(at=30, rate=30.0), "skin-too-hot", "H1"),
        id="skin-over-temperature-in-heat",
    ),
    pytest.param(
        Abort("cold", PROBE, SensorNan(at=30), "missing-temperature", "S4"),
        id="probe-nan-in-cold",
    ),
    pytest.param(
        Abort("heat", PROBE, DropNotifications(at=30, duration=60), "missing-temperature", "S4"),
        id="probe-silent-in-heat",
    ),
    pytest.param(
        Abort("cold", PAD, AttErrorFault(count=1), "command-failed", "S4", CONTRAST_OFF_GRID),
        id="cold-start-refused-between-phases",
    ),
    pytest.param(
        Abort("heat", PAD, AttErrorFault(at=30, count=1), "lease-expired", "H4"),
        id="lease-renewal-refused-in-heat",
    ),
    pytest.param(
        Abort("cold", PAD, BatteryDies(at=30), "link-lost", "S2"),
        id="battery-dies-in-cold",
    ),
    pytest.param(
        Abort("heat", PAD, DropNotifications(at=30, duration=60), "telemetry-stalled", "S2"),
        id="telemetry-stall-in-heat",
    ),
]


@pytest.mark.parametrize("case", CONTRAST_ABORTS)
async def test_fault_on_the_contrast_pad_aborts_with_every_output_off(
    tmp_path: Path, case: Abort
) -> None:
    async with bench(tmp_path) as b:
        finished = await _contrast(b, case.mode, case.key, case.fault, case.profile)
        _assert_aborted_with(b, finished, case.reason, case.limit_id)
        assert finished.devices_off
        b.assert_off_within(PAD, _high(b), OFF_TIMEOUT_S)
        assert_off(b.world, PAD)
        assert b.events[-1] == finished


async def test_a_plate_still_cooling_after_its_off_is_never_claimed_off(tmp_path: Path) -> None:
    # The pad's sensor drifts down: the over-cooling alarm ends the session, and after the OFF
    # the plate still reads colder and colder. A welded cooler without current sensing looks
    # the same, so relieve tells the person to take the pad off instead of saying it is off.
    async with bench(tmp_path) as b:
        finished = await _contrast(b, "cold", PAD, SensorDrift(at=30, rate=-30.0))
        _assert_aborted_with(b, finished, "over-cooling", "C4")
        b.assert_off_within(PAD, _high(b), OFF_TIMEOUT_S)
        assert_off(b.world, PAD)  # the device itself is off (only its sensor lies) ...
        assert not finished.devices_off  # ... but relieve cannot know that, and says so
        notices = [e.message for e in b.events if isinstance(e, Notice)]
        assert any("did not turn OFF" in m and "take the pad off" in m for m in notices)


async def test_stuck_heater_aborts_and_relieve_does_not_claim_the_pad_is_off(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        finished = await _contrast(b, "heat", PAD, StuckHeater(at=30))
        _assert_aborted_with(b, finished, "over-temperature", "S4")
        state = b.world.pad(PAD).state
        assert not state.output_on  # it took the OFF ...
        assert state.energised  # ... but the heater is welded on
        assert not finished.devices_off  # so relieve must not say every device is off


async def test_short_link_blip_in_heat_pauses_then_delivers_the_rest_of_the_phase(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        # out of range for 4 s: the link drops and the pad cannot be reached until it is back
        finished = await _contrast(b, "heat", PAD, RefuseConnections(at=30, duration=4, hide=True))
        assert finished.outcome == "completed", finished
        assert finished.devices_off
        alarms = [e for e in b.of_type(Alarm) if isinstance(e, Alarm)]
        assert [(a.priority, a.reason, a.limit_id) for a in alarms] == [
            ("medium", "link-lost", "S2")
        ]
        t0 = _state(b, "running").clock
        lost, back = _state(b, "link-lost").clock, _state(b, "resumed").clock
        outage = back - lost
        assert 0 < outage < 10
        # the pad was OFF while the link was down, and heated again afterwards
        during = [s for s in b.history(PAD) if lost < s.time < back]
        assert during
        assert not any(s.output_on for s in during)
        cold_at = b.stamp_of(_phase("cold")).clock
        assert any(s.mode == "heat" for s in b.history(PAD) if back < s.time < cold_at)
        # the timeline moved by the outage: the heat phase got its 120 s of heating
        assert cold_at - t0 == pytest.approx(HEAT_S + outage, abs=1.0)
        assert finished.delivered_s == pytest.approx(HEAT_S + COLD_S, abs=1.0)
        session = b.ledger.sessions()[0]
        assert session.outcome == "completed"
        assert [(a.limit_id, a.priority) for a in session.alarms] == [("S2", "medium")]
        heat_rows = [s for m, s in recorded_phases(session) if m == "heat"]
        assert len(heat_rows) == 2  # before and after the pause
        assert sum(heat_rows) == pytest.approx(HEAT_S, abs=1.0)
        assert_off(b.world, PAD)


async def test_short_link_blip_in_preheat_heats_again_and_completes(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        finished = await _contrast(b, "preheat", PAD, Disconnect(at=5))
        assert finished.outcome == "completed", finished
        back = _state(b, "link-restored").clock
        t0 = _state(b, "running").clock
        assert any(s.mode == "heat" for s in b.history(PAD) if back < s.time < t0)
        session = b.ledger.sessions()[0]
        assert_same_phases(recorded_phases(session), planned_phases(b.plan_from(CONTRAST_MINI)))
        assert_off(b.world, PAD)


async def test_link_blip_at_the_switch_from_heat_to_cold_resumes_with_cold(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        finished = await _contrast(b, "cold", PAD, Disconnect())
        assert finished.outcome == "completed", finished
        back = _state(b, "resumed").clock
        assert any(s.mode == "cold" for s in b.history(PAD) if s.time > back)
        session = b.ledger.sessions()[0]
        cold = sum(s for m, s in recorded_phases(session) if m == "cold")
        assert cold == pytest.approx(COLD_S, abs=1.0)
        assert_off(b.world, PAD)


async def test_short_telemetry_stall_pauses_and_resumes_when_telemetry_is_back(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        finished = await _contrast(b, "heat", PAD, DropNotifications(at=30, duration=8))
        assert finished.outcome == "completed", finished
        alarms = [e for e in b.of_type(Alarm) if isinstance(e, Alarm)]
        assert [(a.priority, a.reason) for a in alarms] == [("medium", "telemetry-stalled")]
        states = [e.state for e in b.of_type(StateChanged) if isinstance(e, StateChanged)]
        assert states.count("paused") == 1
        assert states.count("resumed") == 1
        session = b.ledger.sessions()[0]
        assert sum(s for m, s in recorded_phases(session) if m == "heat") == pytest.approx(
            HEAT_S, abs=1.0
        )
        assert_off(b.world, PAD)


async def test_attended_session_asks_after_a_long_loss_and_resumes_when_told(
    tmp_path: Path,
) -> None:
    asked: list[str] = []

    async with bench(tmp_path) as b:

        async def ask(question: str) -> bool:
            asked.append(question)
            while not b.devices.for_role("heat").connected:  # type: ignore[union-attr]
                await b.clock.sleep(1.0)
            return True

        await b.bind(heat=PAD, cold=PAD, probe=PROBE)
        plan = b.plan_from(CONTRAST_MINI)
        b.watch_world()
        b.when(
            _phase("heat"),
            lambda: b.world.inject(PAD, RefuseConnections(at=30, duration=20, hide=True)),
        )
        finished = await b.run(b.runner(plan, ask_resume=ask))
        assert len(asked) == 1
        assert "more than 10 s" in asked[0]
        assert finished.outcome == "completed", finished
        session = b.ledger.sessions()[0]
        assert sum(s for m, s in recorded_phases(session) if m == "heat") == pytest.approx(
            HEAT_S, abs=1.0
        )
        assert_off(b.world, PAD)


# --- the massage guns ----------------------------------------------------------------------


async def _massage(b: Bench, key: str, fault: FaultSpec) -> Finished:
    await b.bind(gun=key)
    plan = b.plan_from(MASSAGE_MINI)
    b.watch_world()
    b.when(
        lambda e: isinstance(e, PhaseChanged) and e.index == 1,  # the second area
        lambda: b.world.inject(key, fault),
    )
    return await b.run(b.runner(plan))


GUN_ABORTS = [
    pytest.param(
        RefuseConnections(at=30, duration=60, hide=True), "link-lost", "S2", id="long-link-loss"
    ),
    pytest.param(AttErrorFault(at=30, count=1), "lease-expired", "H4", id="renewal-refused"),
    pytest.param(BatteryDies(at=30), "link-lost", "S2", id="battery-dies"),
    pytest.param(
        DropNotifications(at=30, duration=60), "telemetry-stalled", "S2", id="telemetry-stall"
    ),
]


@pytest.mark.parametrize(("fault", "reason", "limit_id"), GUN_ABORTS)
async def test_fault_on_the_gun_during_massage_aborts_with_the_gun_stopped(
    tmp_path: Path, fault: FaultSpec, reason: str, limit_id: str
) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        finished = await _massage(b, GUN, fault)
        _assert_aborted_with(b, finished, reason, limit_id)
        assert finished.devices_off
        b.assert_off_within(GUN, _high(b), OFF_TIMEOUT_S)
        assert_off(b.world, GUN)


async def test_short_link_blip_during_massage_resumes_and_delivers_every_area(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        finished = await _massage(b, GUN, Disconnect(at=30))
        assert finished.outcome == "completed", finished
        lost, back = _state(b, "link-lost").clock, _state(b, "resumed").clock
        assert not any(s.output_on for s in b.history(GUN) if lost < s.time < back)
        assert any(s.output_on for s in b.history(GUN) if s.time > back)
        session = b.ledger.sessions()[0]
        assert sum(s for _, s in recorded_phases(session)) == pytest.approx(300.0, abs=1.0)
        assert_off(b.world, GUN)


async def test_theragun_out_of_reach_keeps_running_and_relieve_says_so(tmp_path: Path) -> None:
    # host-timed: no lease, the gun runs on when the link goes (docs/simulators.md)
    async with bench(tmp_path, devices=("theragun",)) as b:
        finished = await _massage(b, "theragun", RefuseConnections(at=30, duration=60, hide=True))
        _assert_aborted_with(b, finished, "link-lost", "S2")
        assert b.world.theragun().state.output_on
        assert not finished.devices_off
        # the pause could not stop it either: the person is told what to do
        notices = [e.message for e in b.of_type(Notice) if isinstance(e, Notice)]
        assert any("button" in n for n in notices), notices
