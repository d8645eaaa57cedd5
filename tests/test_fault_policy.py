"""One fault policy: every fault name has one row (drivers.core.faults.FAULT_POLICY), and the
session supervisor and manual control (``relieve device``) both do what that row says.

* The table itself: every name a driver can put into ``state.faults`` has a row, and the
  simulator shows the device's flags by the same names.
* The simulated devices' way to produce ``not-acknowledged``: a write left unanswered.
* The supervisor, row by row, against stand-in devices: every row, including the faults no
  simulated device can produce (a run cap reached before relieve stops the gun, a button
  pressed on the device, an output mode or a flag bit the driver does not know).
* Whole sessions in virtual time against the simulated devices, one per fault they can
  produce through the real protocol: the alarm's priority, limit and sentence, and whether the
  session ended (or paused) with every output OFF, as the device itself reports it.
* Manual control on a virtual clock: it stops on each of those faults, with the row's sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pytest

from controller.cli import commands as cli
from controller.cli import device as device_cmd
from controller.session import supervisor as supervisor_module
from controller.session.bindings import SessionDevices
from controller.session.events import Alarm, Event, PhaseChanged, StateChanged
from controller.session.simulation import Radio, open_radio
from controller.session.supervisor import AskResume, Supervisor
from drivers.codecs import open_profile as op
from drivers.core import device as driver_device
from drivers.core import watch
from drivers.core.base import (
    DeviceError,
    DeviceInfo,
    DeviceTimeoutError,
    PercussionState,
    SafetyClass,
    ThermalState,
)
from drivers.core.clock import Clock, VirtualClock
from drivers.core.device import DriverBase
from drivers.core.faults import (
    FAULT_POLICY,
    UNKNOWN_EVENT,
    UNKNOWN_FAULT,
    Fault,
    FaultPolicy,
    Seen,
    policy_for,
    stopping_faults,
)
from drivers.open_thermal import UNKNOWN_MODE, OpenThermalPad
from profiles.limits import HARD
from profiles.plan import Step
from simulators.devices.firmware import flag_names
from simulators.devices.state import DeviceState
from simulators.faults import (
    AttErrorFault,
    Disconnect,
    DropNotifications,
    FaultSpec,
    SensorDrift,
    SensorNan,
    StuckHeater,
    parse_scenario,
)
from simulators.serve import event_line
from simulators.world import SimWorld
from tests.session_harness import CONTRAST_MINI, MASSAGE_MINI, Bench, bench
from tests.test_drivers_harness import Sim, sim

__all__ = ["sim"]

# Real seconds the drivers wait for an acknowledgement in the tests of unanswered writes (5 s
# by default, three attempts): a write left unanswered holds the virtual clock for
# simulators.faults.UNANSWERED_HOLD_S real seconds, and the driver must give up within them.
SHORT_COMMAND_TIMEOUT_S = 0.2
# Clock seconds after the end of a session within which a lease device has turned itself off
# (the open profile's default lease is 3 s).
LEASE_RUNS_OUT_S = 5.0


# --- the table ---------------------------------------------------------------------------------


def test_every_fault_name_the_drivers_use_has_one_row() -> None:
    assert set(FAULT_POLICY) == set(Fault)
    # the open profile's flags, the host's own marks, and the names other modules keep
    assert set(watch.FLAG_FAULTS.values()) <= set(Fault)
    assert watch.flag_fault_names(op.StatusFlags(0xFFFF)) >= set(watch.FLAG_FAULTS.values())
    for name in (
        watch.STUCK_OUTPUT,
        watch.LEASE_EXPIRED,
        watch.NOT_ACKNOWLEDGED,
        driver_device.TELEMETRY_STALL,
        UNKNOWN_MODE,
    ):
        assert policy_for(name) is FAULT_POLICY[Fault(name)]
    # a flag bit the driver does not know is never dropped: a fault bit is a fault
    assert policy_for("fault-bit6") is UNKNOWN_FAULT
    assert policy_for("event-bit13") is UNKNOWN_EVENT
    assert policy_for("something-new") is UNKNOWN_FAULT
    # a StrEnum is a str: what the drivers publish compares with plain strings
    assert frozenset({Fault.LEASE_EXPIRED}) == {"lease-expired"}


def test_the_rows_hold_together() -> None:
    for policy in [*FAULT_POLICY.values(), UNKNOWN_FAULT, UNKNOWN_EVENT]:
        assert "{device}" in policy.sentence, policy
        assert not policy.sentence.endswith("."), policy
        if policy.priority != "none":
            assert policy.limit_id is not None, policy
        # a medium alarm pauses the session; the supervisor does that for what it watches
        # itself (the link, the telemetry), never for a flag alone
        assert (policy.priority == "medium") == (policy.seen in (Seen.LINK, Seen.WATCHDOG))
    # the watchdogs the stall's sentence speaks of (the driver's and the supervisor's)
    stall = FAULT_POLICY[Fault.TELEMETRY_STALL].sentence
    assert f"more than {watch.TELEMETRY_STALL_S:g} s" in stall
    assert f"more than {supervisor_module.TELEMETRY_STALL_S:g} s" in stall
    # the supply fault stops a manual run and ends a session alike
    supply = FAULT_POLICY[Fault.SUPPLY_FAULT]
    assert (supply.priority, supply.stops, supply.limit_id) == ("high", True, "S4")
    # a fault latched by the device is acted on whenever it is reported; an event flag only
    # when the output went off by itself
    for flag in op.StatusFlags:
        seen = policy_for(watch.FLAG_FAULTS[flag]).seen
        if flag & op.FAULT_FLAGS:
            assert seen is Seen.REPORTED, flag
        else:
            assert seen is not Seen.REPORTED, flag
    assert stopping_faults({"telemetry-stall", "over-temperature", "fault-bit6"}) == [
        "over-temperature",
        "telemetry-stall",
        "fault-bit6",
    ]


def test_the_simulator_shows_flags_by_the_drivers_names() -> None:
    every = op.StatusFlags(0xFFFF)
    assert flag_names(every) == watch.status_flag_names(every)
    assert set(flag_names(every)) == watch.flag_fault_names(every)
    assert flag_names(op.StatusFlags.LEASE_EXPIRED | op.StatusFlags.SUPPLY_FAULT) == (
        "supply-fault",
        "lease-expired",
    )
    state = DeviceState(
        key="heat-pad",
        address="C0:DE:00:00:00:02",
        time=12.0,
        powered=True,
        advertising=False,
        connected=True,
        flags=flag_names(op.StatusFlags.LEASE_EXPIRED),
    )
    assert event_line(state, 0.0)["flags"] == ["lease-expired"]
    assert state.to_json()["flags"] == ["lease-expired"]


async def test_a_pad_whose_lease_ran_out_says_so_in_the_drivers_words() -> None:
    clock = VirtualClock()
    async with SimWorld(clock=clock, devices=["heat-pad"]) as world:
        pad = world.pad("heat-pad")
        pad.core.start(op.ThermalStart.heat(40.0, lease_ms=2000), clock.now())
        await clock.advance(3.0)
        assert not pad.state.output_on
        assert pad.state.flags == ("lease-expired",)


# --- producing not-acknowledged: a write the simulated device leaves unanswered -------------------


async def test_an_unanswered_write_is_not_acknowledged_and_blocks_the_link(sim: Sim) -> None:
    pad = sim.track(
        OpenThermalPad(
            sim.address("heat-pad"),
            backend=sim.backend,
            clock=sim.clock,
            command_timeout_s=SHORT_COMMAND_TIMEOUT_S,
        )
    )
    await pad.connect()
    sim.world.inject("heat-pad", AttErrorFault(unanswered=True))
    before = sim.clock.now()
    # therapy time stands still while the driver waits out its time-outs in real time
    held = asyncio.ensure_future(sim.clock.advance(1.0))
    with pytest.raises(DeviceTimeoutError, match="after 2 retries"):
        await pad.heat(40.0)
    assert not held.done()
    assert sim.clock.now() == before
    assert not sim.world.pad("heat-pad").state.output_on  # it never reached the firmware
    # one ATT request at a time: what comes next waits behind the unanswered one
    with pytest.raises(DeviceTimeoutError):
        await pad.off()
    await held


def test_a_scenario_can_leave_writes_unanswered() -> None:
    scenario = parse_scenario(
        '[[fault]]\ndevice = "massage-gun"\nkind = "att_error"\ncount = 3\nunanswered = true\n'
    )
    (fault,) = scenario.fault
    assert isinstance(fault, AttErrorFault)
    assert (fault.count, fault.unanswered) == (3, True)


# --- the supervisor, row by row, with stand-in devices ------------------------------------------


@dataclass
class _StandIn:
    """A device the supervisor watches: its state is published by the test."""

    info: DeviceInfo
    state: ThermalState | PercussionState
    callbacks: list[Callable[[object], None]] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.state.connected

    def register_callback(self, callback: Callable[[object], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def publish(self, state: ThermalState | PercussionState) -> None:
        self.state = state
        for callback in list(self.callbacks):
            callback(state)


@dataclass
class _Session:
    """What the supervisor needs of a session (controller.session.supervisor.SessionControl)."""

    clock: Clock
    devices: SessionDevices
    ask_resume: AskResume | None = None
    events: list[Event] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)  # (how, reason)
    paused_for: list[str] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return bool(self.paused_for)

    def session_time(self) -> float:
        return self.clock.now()

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def record_alarm(self, limit: str, priority: Literal["high", "medium"], message: str) -> None:
        pass

    def pause(self, reason: str = "paused") -> None:
        self.paused_for.append(reason)

    def hold(self, reason: str) -> None:
        self.paused_for.append(reason)

    def resume(self) -> None:
        self.paused_for.clear()

    def stop(self, reason: str = "stopped") -> None:
        self.ended.append(("stopped", reason))

    def abort(self, reason: str) -> None:
        self.ended.append(("aborted", reason))

    def reapply_soon(self, device: object) -> None:
        pass

    def alarms(self) -> list[Alarm]:
        return [e for e in self.events if isinstance(e, Alarm)]


_KINDS = ("thermal", "percussion")


def _stand_in(kind: str) -> _StandIn:
    thermal = kind == "thermal"
    info = DeviceInfo(
        address="C0:DE:00:00:00:99",
        name="Stand-in Pad" if thermal else "Stand-in Gun",
        kind="thermal" if thermal else "percussion",
        driver="stand-in",
        safety_class=SafetyClass.LEASE,
    )
    state: ThermalState | PercussionState = (
        ThermalState(connected=True, mode="heat", setpoint_celsius=40.0, plate_celsius=40.0)
        if thermal
        else PercussionState(connected=True, running=True, target_rpm=2100)
    )
    return _StandIn(info, state)


def _step(kind: str) -> Step:
    if kind == "thermal":
        return Step("heat", "heat", 0.0, 600.0, "test", celsius=40.0)
    return Step("gun", "run", 0.0, 60.0, "test", rpm=2100)


def _with(
    state: ThermalState | PercussionState, *, on: bool, faults: set[str], at: float
) -> ThermalState | PercussionState:
    if isinstance(state, ThermalState):
        return replace(state, mode="heat" if on else "off", faults=frozenset(faults), updated_at=at)
    return replace(state, running=on, faults=frozenset(faults), updated_at=at)


ROWS = [*(str(fault) for fault in FAULT_POLICY), "fault-bit6", "event-bit13"]


@contextlib.asynccontextmanager
async def _supervised(
    kind: str, clock: VirtualClock
) -> AsyncIterator[tuple[Supervisor, _Session, _StandIn, str]]:
    device = _stand_in(kind)
    devices = SessionDevices()
    role = "heat" if kind == "thermal" else "gun"
    assert devices.assign(role, device)
    session = _Session(clock, devices)
    supervisor = Supervisor(session, HARD)
    supervisor.start()
    try:
        yield supervisor, session, device, role
    finally:
        supervisor.stop()


def _nothing_done(session: _Session) -> None:
    assert session.alarms() == []
    assert session.ended == []


def _acted(session: _Session, policy: FaultPolicy, name: str, device: str, role: str) -> None:
    """The supervisor did what the row says: its alarm, and the end or the pause of it."""
    message = f"{policy.message(device, name)}."
    if policy.priority == "none":
        assert session.alarms() == []
        assert session.ended == ([("stopped", message)] if policy.stops else [])
        return
    (alarm,) = session.alarms()
    assert (alarm.priority, alarm.reason, alarm.limit_id, alarm.message, alarm.role) == (
        policy.priority,
        policy.reason,
        policy.limit_id,
        message,
        role,
    )
    if policy.priority == "high":
        assert session.ended == [("aborted", message)]  # the runner turns every output OFF
    else:
        assert session.ended == []
        assert session.paused  # every output OFF until it is back (or the session ends)


@pytest.mark.parametrize("kind", _KINDS)
@pytest.mark.parametrize("name", ROWS)
async def test_the_supervisor_does_what_each_row_says(kind: str, name: str) -> None:
    policy = policy_for(name)
    clock = VirtualClock()
    async with _supervised(kind, clock) as (supervisor, session, device, role):
        label = device.info.name
        # nothing is asked of the device: its output is off as relieve wants it
        device.publish(_with(device.state, on=False, faults={name}, at=clock.now()))
        if policy.seen is Seen.REPORTED:  # a latched fault counts whenever it is reported
            _acted(session, policy, name, label, role)
            return
        _nothing_done(session)
        supervisor.expect(role, _step(kind))
        device.publish(_with(device.state, on=True, faults={name}, at=clock.now()))
        _nothing_done(session)
        session.pause("paused by you")  # an OFF while paused is relieve's own
        device.publish(_with(device.state, on=False, faults={name}, at=clock.now()))
        _nothing_done(session)
        session.resume()
        device.publish(_with(device.state, on=False, faults={name}, at=clock.now()))
        if policy.seen is Seen.STOPPED_BY_ITSELF:  # it went off by itself while wanted on
            _acted(session, policy, name, label, role)
            return
        _nothing_done(session)  # the flag alone says nothing: the supervisor watches these
        if policy.seen is Seen.LINK:
            device.publish(replace(device.state, connected=False))
        else:
            await clock.advance(7.0)  # and no telemetry meanwhile
        _acted(session, policy, name, label, role)


# --- whole sessions against the simulated devices ----------------------------------------------

PAD = "contrast-pad"
PROBE = "skin-probe"
GUN = "massage-gun"
HEAT_S = 120.0  # CONTRAST_MINI's heat phase


def _phase(mode: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, PhaseChanged) and e.mode == mode


_IN_HEAT = _phase("heat")


def _second_area(e: Event) -> bool:
    return isinstance(e, PhaseChanged) and e.mode == "massage" and e.index == 1


def _inject(fault: FaultSpec) -> Callable[[SimWorld, str], object]:
    return lambda world, key: world.inject(key, fault)


def _battery_low(world: SimWorld, key: str) -> None:
    world.device(key).set_battery(1.0)  # below the 2 % at which the cell protects itself


def _pressed_too_hard(world: SimWorld, key: str) -> None:
    world.gun(key).press(1000.0)  # beyond the gun's stall force


UNANSWERED = AttErrorFault(count=3, unanswered=True)  # a command and both its retries


@dataclass(frozen=True)
class Produce:
    """How a simulated device produces ``fault`` in a session, through its real protocol."""

    fault: Fault
    key: str  # the device that gets it
    act: Callable[[SimWorld, str], object]
    after_s: float = 30.0  # clock seconds into the phase ``when`` accepts
    when: Callable[[Event], bool] = _IN_HEAT
    profile: str = CONTRAST_MINI
    world: tuple[str, ...] = (PAD, PROBE)
    roles: tuple[tuple[str, str], ...] = (("heat", PAD), ("cold", PAD), ("probe", PROBE))
    short_timeout: bool = False  # a write left unanswered: see SHORT_COMMAND_TIMEOUT_S
    # How the output ends up OFF: relieve switched it off and says so ("confirmed"); it took
    # the OFF but drives on ("stuck"); relieve could not reach it and its own lease turned it
    # off ("by-its-lease"); relieve could not reach it and nothing turns it off ("not-reached").
    off: Literal["confirmed", "stuck", "by-its-lease", "not-reached"] = "confirmed"

    def bound(self, b: Bench) -> Awaitable[SessionDevices]:
        return b.bind(**dict(self.roles))


def _in_massage(fault: Fault, act: Callable[[SimWorld, str], object], key: str = GUN) -> Produce:
    """``fault`` 30 s into the second area of a massage with gun ``key``."""
    return Produce(
        fault,
        key,
        act,
        when=_second_area,
        profile=MASSAGE_MINI,
        world=(key,),
        roles=(("gun", key),),
    )


SESSION_CASES = [
    pytest.param(Produce(Fault.SENSOR_FAULT, PAD, _inject(SensorNan())), id="sensor-fault-pad"),
    pytest.param(
        # stuck just before the switch to cold: the heat pad's OFF does not take
        Produce(
            Fault.STUCK_OUTPUT,
            "heat-pad",
            _inject(StuckHeater()),
            HEAT_S - 2,
            world=("heat-pad", "cold-pad", PROBE),
            roles=(("heat", "heat-pad"), ("cold", "cold-pad"), ("probe", PROBE)),
            off="stuck",
        ),
        id="stuck-output-heat-pad",
    ),
    pytest.param(
        Produce(
            Fault.NOT_ACKNOWLEDGED,
            PAD,
            _inject(UNANSWERED),
            short_timeout=True,
            off="by-its-lease",
        ),
        id="not-acknowledged-pad",
    ),
    pytest.param(
        # host-timed: nothing turns it off when relieve cannot reach it
        replace(
            _in_massage(Fault.NOT_ACKNOWLEDGED, _inject(UNANSWERED), "theragun"),
            short_timeout=True,
            off="not-reached",
        ),
        id="not-acknowledged-theragun",
    ),
    pytest.param(Produce(Fault.SUPPLY_FAULT, PAD, _battery_low), id="supply-fault-pad"),
    pytest.param(_in_massage(Fault.SUPPLY_FAULT, _battery_low), id="supply-fault-gun"),
    pytest.param(_in_massage(Fault.OVERLOAD, _pressed_too_hard), id="overload-gun"),
    pytest.param(
        Produce(Fault.LEASE_EXPIRED, PAD, _inject(AttErrorFault(count=1))),
        id="lease-expired-pad",
    ),
    pytest.param(Produce(Fault.LINK_LOST, PAD, _inject(Disconnect())), id="link-lost-pad"),
    pytest.param(
        Produce(Fault.TELEMETRY_STALL, PAD, _inject(DropNotifications(duration=8.0))),
        id="telemetry-stall-pad",
    ),
]


def _alarms(b: Bench) -> list[Alarm]:
    return [e for e in b.of_type(Alarm) if isinstance(e, Alarm)]


async def test_a_pad_heating_up_in_a_cold_step_is_caught_before_its_own_limit(
    tmp_path: Path,
) -> None:
    # The pad's reading climbs 5 °C a second in the cold phase. relieve's own check (no plate
    # may pass the hottest any heat may reach, 45 °C, in a cold step) ends the session before
    # the pad's firmware trips its own over-temperature flag at 48 °C.
    async with bench(tmp_path, devices=(PAD, PROBE)) as b:
        await b.bind(heat=PAD, cold=PAD, probe=PROBE)
        plan = b.plan_from(CONTRAST_MINI)
        b.watch_world()
        b.later(_phase("cold"), 10, lambda: b.world.inject(PAD, SensorDrift(rate=300.0)))
        finished = await b.run(b.runner(plan))
        first = _alarms(b)[0]
        assert (first.priority, first.reason, first.limit_id) == ("high", "over-temperature", "S4")
        assert "during a cold step" in first.message
        assert finished.outcome == "aborted"
        assert not b.world.device(PAD).state.output_on
        # the reading still climbs after the OFF: relieve cannot tell a welded heater from a
        # lying sensor, so it does not say the pad is off
        assert not finished.devices_off


@pytest.mark.parametrize("case", SESSION_CASES)
async def test_a_session_does_what_the_row_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Produce
) -> None:
    if case.short_timeout:
        _shorten_command_timeout(monkeypatch)
    policy = FAULT_POLICY[case.fault]
    async with bench(tmp_path, devices=case.world) as b:
        devices = await case.bound(b)
        plan = b.plan_from(case.profile)
        b.watch_world()
        b.later(case.when, case.after_s, lambda: case.act(b.world, case.key))
        finished = await b.run(b.runner(plan))

        target = next(d for d in devices.all_devices() if d.info.address == _address(b, case.key))
        message = f"{policy.message(target.info.name)}."
        alarms = _alarms(b)
        assert alarms, finished
        first = alarms[0]  # nothing else alarmed before the fault did
        assert (first.priority, first.reason, first.limit_id, first.message) == (
            policy.priority,
            policy.reason,
            policy.limit_id,
            message,
        ), alarms
        outputs = [k for k in case.world if k != PROBE]
        if policy.priority == "high":
            assert finished.outcome == "aborted", finished
            assert finished.reason == message
            session = b.ledger.sessions()[0]
            assert (policy.limit_id, "high", message) in [
                (a.limit_id, a.priority, a.message) for a in session.alarms
            ]
        else:  # medium: paused with the output OFF, then back in time and on to the end
            alarmed = b.stamp_of(lambda e: e is first)
            resumed = b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == "resumed")
            during = [
                seen.state
                for seen in b.seen
                if seen.state.key == case.key and alarmed.real <= seen.real <= resumed.real
            ]
            assert any(not s.output_on for s in during), during
            assert finished.outcome == "completed", finished
        assert policy.stops
        # every output OFF, as each device itself reports it; relieve claims only what it saw
        assert finished.devices_off == (case.off == "confirmed")
        for key in outputs:
            if key != case.key:
                assert not b.world.device(key).state.output_on, key
        truth = b.world.device(case.key).state
        if case.off == "confirmed":
            assert not truth.output_on
        elif case.off == "stuck":
            assert not truth.output_on  # it took the OFF ...
            assert truth.energised  # ... but drives on
        elif case.off == "by-its-lease":
            await b.clock.advance(LEASE_RUNS_OUT_S)
            truth = b.world.device(case.key).state
            assert not truth.output_on
            assert "lease-expired" in truth.flags
        else:
            assert truth.output_on


def _address(b: Bench, key: str) -> str:
    return b.world.device(key).address


def _shorten_command_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = DriverBase.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "command_timeout_s", SHORT_COMMAND_TIMEOUT_S)


async def test_a_gun_that_does_not_acknowledge_ends_the_massage_with_a_high_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S4: a command not acknowledged after 2 retries -> every output OFF and a high alarm.
    # 30 s into the second area a lease renewal and both its retries get no answer.
    _shorten_command_timeout(monkeypatch)
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        plan = b.plan_from(MASSAGE_MINI)
        b.watch_world()
        b.later(_second_area, 30.0, lambda: b.world.inject(GUN, UNANSWERED))
        finished = await b.run(b.runner(plan))

        alarms = _alarms(b)
        assert [(a.priority, a.reason, a.limit_id, a.role) for a in alarms] == [
            ("high", "not-acknowledged", "S4", "gun")
        ]
        assert finished.outcome == "aborted", finished
        assert finished.reason == alarms[0].message
        session = b.ledger.sessions()[0]
        assert session.outcome == "aborted"
        assert [(a.limit_id, a.priority) for a in session.alarms] == [("S4", "high")]
        # The gun no longer answers, so relieve's STOP cannot reach it either (ATT takes one
        # request at a time): relieve does not claim it is off ...
        assert not finished.devices_off
        alarm_at = b.stamp_of(lambda e: e is alarms[0]).clock
        # ... and the gun, which got no renewal since, stops by its own lease
        await b.clock.advance(LEASE_RUNS_OUT_S)
        gun = b.world.gun().state
        assert not gun.output_on
        assert "lease-expired" in gun.flags
        off_at = next(s.time for s in b.history(GUN) if s.time > alarm_at and not s.output_on)
        assert off_at - alarm_at <= LEASE_RUNS_OUT_S


# --- manual control ------------------------------------------------------------------------------

HEAT_PAD = "heat-pad"
HEAT = ("heat", "C0:DE:00:00:00:02", "--celsius", "40", "--for", "5m")
RUN_GUN = ("gun", "C0:DE:00:00:00:04", "--rpm", "2400", "--for", "5m")


@dataclass(frozen=True)
class Manual:
    """How a simulated device produces ``fault`` while ``relieve device`` runs it."""

    fault: Fault
    argv: tuple[str, ...]
    key: str
    act: Callable[[SimWorld, str], object]
    short_timeout: bool = False


MANUAL_CASES = [
    pytest.param(Manual(Fault.SENSOR_FAULT, HEAT, HEAT_PAD, _inject(SensorNan())), id="sensor"),
    pytest.param(
        Manual(Fault.OVER_TEMPERATURE, HEAT, HEAT_PAD, _inject(SensorDrift(rate=300.0))),
        id="over-temperature",
    ),
    pytest.param(
        Manual(Fault.NOT_ACKNOWLEDGED, HEAT, HEAT_PAD, _inject(UNANSWERED), short_timeout=True),
        id="not-acknowledged-pad",
    ),
    pytest.param(
        Manual(Fault.NOT_ACKNOWLEDGED, RUN_GUN, GUN, _inject(UNANSWERED), short_timeout=True),
        id="not-acknowledged-gun",
    ),
    pytest.param(Manual(Fault.SUPPLY_FAULT, HEAT, HEAT_PAD, _battery_low), id="supply-pad"),
    pytest.param(Manual(Fault.SUPPLY_FAULT, RUN_GUN, GUN, _battery_low), id="supply-gun"),
    pytest.param(Manual(Fault.OVERLOAD, RUN_GUN, GUN, _pressed_too_hard), id="overload-gun"),
    pytest.param(
        Manual(Fault.LEASE_EXPIRED, HEAT, HEAT_PAD, _inject(AttErrorFault(count=1))),
        id="lease-expired",
    ),
    pytest.param(
        Manual(Fault.TELEMETRY_STALL, HEAT, HEAT_PAD, _inject(DropNotifications(duration=60))),
        id="telemetry-stall",
    ),
    pytest.param(Manual(Fault.LINK_LOST, HEAT, HEAT_PAD, _inject(Disconnect())), id="link-lost"),
]


@pytest.fixture
async def radio() -> AsyncIterator[tuple[VirtualClock, Radio]]:
    clock = VirtualClock()
    async with open_radio(simulate=True, clock=clock) as opened:
        yield clock, opened


@pytest.mark.parametrize("case", MANUAL_CASES)
async def test_manual_control_stops_on_what_the_row_says_stops(
    radio: tuple[VirtualClock, Radio], monkeypatch: pytest.MonkeyPatch, case: Manual
) -> None:
    if case.short_timeout:
        _shorten_command_timeout(monkeypatch)
    clock, opened = radio
    world = opened.world
    assert world is not None
    policy = FAULT_POLICY[case.fault]
    args = cli.build_parser().parse_args(["device", *case.argv, "--simulate"])
    out, err = io.StringIO(), io.StringIO()
    task = asyncio.get_running_loop().create_task(
        device_cmd.run_device(args, clock=clock, out=out, err=err, radio=opened)
    )
    while not out.getvalue():  # connected, checked, and about to run
        await clock.advance(0.1)
        await asyncio.sleep(0.001)
    await clock.advance(10.0)
    assert world.device(case.key).state.output_on
    case.act(world, case.key)
    await clock.run(task)

    assert policy.stops
    with pytest.raises(DeviceError) as stopped:
        task.result()
    device = world.device(case.key)
    label = f"{device.name} ({device.address})"
    assert str(stopped.value).startswith(policy.message(label)), stopped.value
    assert "Done" not in out.getvalue()
    assert not device.state.output_on  # OFF, as the device itself reports it


@pytest.mark.parametrize(
    ("at_s", "alarm"),
    [
        pytest.param(30.0, True, id="mid-run-is-a-fault"),
        pytest.param(59.5, False, id="at-the-planned-end-is-the-plan"),
    ],
)
async def test_a_gun_stopping_at_its_own_cap_is_a_fault_only_before_its_run_ends(
    at_s: float, alarm: bool
) -> None:
    # the 18-minute extension leaves the gun's cap no room past the run: at the run's end the
    # cap and the host's stop are due together, and whichever lands first is the plan
    clock = VirtualClock()
    async with _supervised("percussion", clock) as (supervisor, session, device, role):
        step = _step("percussion")  # 60 s
        supervisor.expect(role, step)
        device.publish(_with(device.state, on=True, faults=set(), at=clock.now()))
        while clock.now() < at_s:  # running, and saying so every second
            await clock.advance(min(1.0, at_s - clock.now()))
            device.publish(_with(device.state, on=True, faults=set(), at=clock.now()))
        stopped = _with(device.state, on=False, faults={"run-cap-reached"}, at=clock.now())
        device.publish(stopped)
        if alarm:
            policy = policy_for("run-cap-reached")
            _acted(session, policy, "run-cap-reached", device.info.name, role)
        else:
            _nothing_done(session)
