"""The safety supervisor: beside the runner, watching every device; it can end anything.

High-priority alarms (S4) end the session at once with every output OFF: over-temperature
(plate above setpoint + 3 °C while heating, below setpoint - 3 °C while cooling, a skin probe
beyond H1 / below C3), a missing or implausible temperature, and the device faults that
:data:`drivers.core.faults.FAULT_POLICY` makes high (a stuck output, a sensor or supply fault,
a command not acknowledged after retries, a lease that expired while we keep it on, ...).

Medium alarms: a lost link or telemetry that stalls for more than 5 s. The session pauses;
a link back within 10 s resumes the remaining phase time (the driver has read the state and sent
OFF first); longer, the person is asked (unattended sessions abort).

What a device fault means -- its priority, whether it stops the outputs, its limit ID and its
sentence -- comes from that one table, which manual control (``relieve device``) reads too.

relieve itself may stop running too: a laptop suspended, ``kill -STOP``, an event loop blocked.
The devices see a host that went quiet (a lease device turns itself OFF), and when relieve runs
again its telemetry, its timers and its clock all say "later" at once. So the supervisor
measures its own gaps: a ticker notes the clock every second, and everything that could switch
an output on asks :meth:`Supervisor.outputs_may_go_on` first, which measures the time since the
last tick before anything else. A gap longer than the link grace is never followed by an
automatic resume: every output OFF first, then the session pauses and the person is asked;
unattended, it ends with a high alarm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from controller.session.bindings import SessionDevices
from controller.session.events import Alarm, Event, StateChanged, Telemetry
from controller.session.schedule import RUN_CAP_MARGIN_REAL_S, RUN_CAP_MARGIN_S
from drivers.core.base import (
    Percussion,
    PercussionState,
    ProbeReading,
    TemperatureProbe,
    ThermalOutput,
    ThermalState,
    is_thermal,
)
from drivers.core.clock import Clock, at_least_real
from drivers.core.faults import FAULT_POLICY, Fault, FaultPolicy, Seen, in_table_order, policy_for
from profiles.limits import Limits
from profiles.plan import Step

AskResume = Callable[[str], Awaitable[bool]]
"""Asks the person a yes/no question (resume after a long link loss?); None: unattended."""


class SessionControl(Protocol):
    """What the supervisor needs of the session it watches (the runner implements it)."""

    clock: Clock
    devices: SessionDevices
    ask_resume: AskResume | None

    @property
    def paused(self) -> bool: ...

    def session_time(self) -> float: ...

    def emit(self, event: Event) -> None: ...

    def record_alarm(
        self, limit: str, priority: Literal["high", "medium"], message: str
    ) -> None: ...

    def pause(self, reason: str = ...) -> None: ...

    def hold(self, reason: str) -> None: ...

    def resume(self) -> None: ...

    def stop(self, reason: str = ...) -> None: ...

    def abort(self, reason: str) -> None: ...

    def reapply_soon(self, device: ThermalOutput | Percussion) -> None: ...


__all__ = [
    "FROZEN",
    "LINK_GRACE_S",
    "OVER_TEMPERATURE_MARGIN_C",
    "TELEMETRY_STALL_S",
    "Supervisor",
    "Trouble",
]

_LOGGER = logging.getLogger(__name__)

OVER_TEMPERATURE_MARGIN_C = 3.0  # S4: plate beyond setpoint by this much -> high alarm
TELEMETRY_STALL_S = 5.0  # S2 watchdog: no telemetry for this long while on -> medium alarm
LINK_GRACE_S = 10.0  # S2: a link back within this resumes; longer pauses and asks
CHECK_INTERVAL_S = 1.0  # the watchdog looks this often (clock seconds)
# Under a scaled clock (demos, rehearsals) the watchdog and the link grace keep at least this
# much real time, so real radio and event-loop jitter does not look like a stalled device.
REAL_FLOOR_S = 0.5
# The supervisor's own ticker notes the clock this often (clock seconds), so a gap in relieve's
# own running shows as the time since its last tick. The same period as the watchdog: in virtual
# time both wake together.
TICK_S = CHECK_INTERVAL_S
# A gap in relieve's own running longer than the link grace (LINK_GRACE_S) is a freeze. Under a
# scaled clock it keeps at least this much real time, so event-loop jitter of a rehearsal does
# not end it; in real time and virtual time it is exactly LINK_GRACE_S.
FREEZE_REAL_FLOOR_S = 2.0
FROZEN = "controller-frozen"
"""Alarm reason: relieve itself did not run for longer than the link grace."""
_LINK_LOST = FAULT_POLICY[Fault.LINK_LOST]
_STALLED = FAULT_POLICY[Fault.TELEMETRY_STALL]


@dataclass(frozen=True)
class Trouble:
    priority: Literal["high", "medium"]
    reason: str
    message: str
    role: str | None = None
    limit_id: str | None = None


def _trouble(policy: FaultPolicy, message: str, role: str | None) -> Trouble:
    """The alarm a device fault raises, by its row of the fault table."""
    if policy.priority == "none":
        raise ValueError(f"relieve bug: {policy.name} raises no alarm")
    return Trouble(policy.priority, policy.reason, message, role, policy.limit_id)


class Supervisor:
    def __init__(self, runner: SessionControl, limits: Limits) -> None:
        self._runner = runner
        self._limits = limits
        self._expected: dict[str, Step | None] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._watchdog: asyncio.Task[None] | None = None
        self._lost_since: dict[str, float] = {}  # role -> clock time the link went
        # role -> clock time its telemetry was found stalled (back with fresh telemetry only)
        self._stalled_since: dict[str, float] = {}
        self._asking = False
        self._ended = False
        self._started_at = 0.0
        self._last_tick: float | None = None  # clock time the ticker last ran (None: not started)
        self._ticker: asyncio.Task[None] | None = None
        self._freeze_pending = False  # a freeze waits for the person's answer: nothing goes on
        self._question: asyncio.Task[None] | None = None
        self._one_question = asyncio.Lock()  # the person answers one question at a time
        # id(pad) -> (mode, setpoint) it last reported driving: what its final OFF ended
        self._last_drive: dict[int, tuple[str, float]] = {}
        clock = runner.clock
        self._stall_s = at_least_real(clock, TELEMETRY_STALL_S, REAL_FLOOR_S)
        self._grace_s = at_least_real(clock, LINK_GRACE_S, 2 * REAL_FLOOR_S)
        self._freeze_s = at_least_real(clock, LINK_GRACE_S, FREEZE_REAL_FLOOR_S)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        devices = self._runner.devices
        seen: set[int] = set()
        for role in ("heat", "cold", "gun"):
            device = devices.for_role(role)
            if device is None or id(device) in seen:
                continue
            seen.add(id(device))
            if is_thermal(device):
                self._unsubscribe.append(device.register_callback(self._thermal_cb(device)))
            else:
                self._unsubscribe.append(device.register_callback(self._gun_cb(device)))
        if devices.probe is not None:
            self._unsubscribe.append(devices.probe.register_callback(self._on_probe))
        self._started_at = self._runner.clock.now()
        self._last_tick = self._started_at
        self._ticker = asyncio.ensure_future(self._tick())
        self._watchdog = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        self._ended = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for task in (self._watchdog, self._ticker, self._question):
            if task is not None:
                task.cancel()

    def last_drive(self, device: ThermalOutput) -> tuple[str, float] | None:
        """The mode and setpoint ``device`` last reported driving (None: never seen on)."""
        return self._last_drive.get(id(device))

    def expect(self, role: str, step: Step | None) -> None:
        """What ``role`` should be doing now (None: off)."""
        self._expected[role] = step
        if step is not None and step.role in ("heat", "cold"):
            # a combined pad switching modes: the other role is no longer active
            other = "cold" if step.role == "heat" else "heat"
            if self._runner.devices.for_role(other) is self._runner.devices.for_role(step.role):
                self._expected[other] = None

    # --- alarms --------------------------------------------------------------------------------

    def raise_alarm(self, trouble: Trouble) -> None:
        if self._ended:
            return
        runner = self._runner
        runner.emit(
            Alarm(
                runner.session_time(),
                trouble.priority,
                trouble.reason,
                trouble.message,
                trouble.role,
                trouble.limit_id,
            )
        )
        runner.record_alarm(trouble.limit_id or trouble.reason, trouble.priority, trouble.message)
        _LOGGER.warning("%s alarm: %s", trouble.priority, trouble.message)
        if trouble.priority == "high":
            self._ended = True
            runner.abort(trouble.message)

    # --- relieve's own gaps ---------------------------------------------------------------------

    def outputs_may_go_on(self) -> bool:
        """Whether an output may be switched back on now: asked first by every path that
        does so (a resume, a step applied again, a link or telemetry back).

        First measures how long relieve itself did not run (since the ticker's last tick): a
        gap longer than the link grace is handled here and now -- every output OFF, then the
        person is asked (unattended: the session ends) -- and the answer is False. False too
        while such a freeze waits for the person's answer, and once the session is ending.
        """
        self._notice_gap()
        return not (self._ended or self._freeze_pending)

    def _notice_gap(self) -> None:
        """A freeze longer than the grace since the last tick is handled (once)."""
        last = self._last_tick
        if last is None or self._ended or self._freeze_pending:
            return
        now = self._runner.clock.now()
        if now - last > self._freeze_s:
            self._last_tick = now
            self._frozen(now - last)

    async def _tick(self) -> None:
        clock = self._runner.clock
        while not self._ended:
            await clock.sleep(TICK_S)
            self._notice_gap()
            self._last_tick = clock.now()

    def _frozen(self, gap_s: float) -> None:
        """relieve did not run for ``gap_s``: every output OFF, then ask (or end)."""
        runner = self._runner
        what = (
            f"relieve did not run for {gap_s:.0f} s (the computer slept or the program was "
            f"stopped), longer than the {LINK_GRACE_S:g} s it may lose sight of a device"
        )
        _LOGGER.warning("%s", what)
        self._freeze_pending = True
        runner.hold(f"relieve did not run for {gap_s:.0f} s")  # every output OFF, paused
        ask = runner.ask_resume
        if ask is None:
            message = f"{what}, so the session ended with every output OFF."
            self.raise_alarm(Trouble("high", FROZEN, message, None, "S2"))
            return
        self.raise_alarm(Trouble("medium", FROZEN, f"{what}; every output is OFF.", None, "S2"))
        self._question = asyncio.ensure_future(self._ask_after_freeze(ask, what))

    async def _ask_after_freeze(self, ask: AskResume, what: str) -> None:
        try:
            async with self._one_question:  # after a question still open (a link lost)
                self._asking = True
                try:
                    again = await ask(f"{what}; every output is OFF. Resume the session?")
                finally:
                    self._asking = False
        finally:
            self._freeze_pending = False
        if self._ended:
            return
        runner = self._runner
        if not again:
            runner.stop(f"{what}.")
            return
        # What stalled across the freeze is looked at afresh by the watchdog; a link still
        # down is resumed when it is back (or asked about again).
        self._stalled_since.clear()
        if not self._lost_since:
            runner.resume()

    # --- device callbacks ---------------------------------------------------------------------

    def _roles_of(self, device: object) -> list[str]:
        devices = self._runner.devices
        return [r for r in ("heat", "cold", "gun") if devices.for_role(r) is device]

    def _active_step(self, device: object) -> Step | None:
        for role in self._roles_of(device):
            step = self._expected.get(role)
            if step is not None:
                return step
        return None

    def _thermal_cb(self, device: ThermalOutput) -> Callable[[ThermalState], None]:
        def on_state(state: ThermalState) -> None:
            self._notice_gap()  # telemetry may arrive before any timer after a freeze
            if state.on and state.setpoint_celsius is not None:
                self._last_drive[id(device)] = (state.mode, state.setpoint_celsius)
            roles = self._roles_of(device)
            step = self._active_step(device)
            role = step.role if step else roles[0]
            self._runner.emit(
                Telemetry(
                    self._runner.session_time(),
                    "pad" if len(roles) > 1 else role,  # a contrast pad plays heat and cold
                    plate_celsius=state.plate_celsius,
                    setpoint_celsius=state.setpoint_celsius,
                    battery=state.battery,
                )
            )
            self._link(role, device, state.connected)
            if not state.connected:
                return
            self._fresh(role, device, state.updated_at)
            if self._device_faults(device, role, state.faults, on=state.on, step=step):
                return
            if step is None or self._runner.paused:
                return
            self._check_plate(device, step, state)

        return on_state

    def _check_plate(self, device: ThermalOutput, step: Step, state: ThermalState) -> None:
        plate, target = state.plate_celsius, step.celsius
        if plate is None or target is None:
            return
        margin = OVER_TEMPERATURE_MARGIN_C
        if step.action in ("heat", "preheat") and plate > target + margin:
            hot = FAULT_POLICY[Fault.OVER_TEMPERATURE]
            self.raise_alarm(
                Trouble(
                    "high",
                    hot.reason,
                    f"{device.info.name} is at {plate:.1f} °C, more than {margin:g} °C above "
                    f"its {target:g} °C setpoint.",
                    step.role,
                    hot.limit_id,
                )
            )
        elif step.action in ("cold", "precool") and plate > self._limits.heat_max_celsius_short:
            # a heater welded on at the switch to cold: nothing a cold step does warms a plate
            # past the hottest a heat step may ever be
            hot = FAULT_POLICY[Fault.OVER_TEMPERATURE]
            self.raise_alarm(
                Trouble(
                    "high",
                    hot.reason,
                    f"{device.info.name} is at {plate:.1f} °C during a cold step, hotter than "
                    f"the {self._limits.heat_max_celsius_short:g} °C any heat may reach.",
                    step.role,
                    hot.limit_id,
                )
            )
        elif step.action in ("cold", "precool") and plate < target - margin:
            self.raise_alarm(
                Trouble(
                    "high",
                    "over-cooling",
                    f"{device.info.name} is at {plate:.1f} °C, more than {margin:g} °C below "
                    f"its {target:g} °C setpoint.",
                    step.role,
                    "C4",
                )
            )

    def _gun_cb(self, device: Percussion) -> Callable[[PercussionState], None]:
        def on_state(state: PercussionState) -> None:
            self._notice_gap()
            self._runner.emit(
                Telemetry(
                    self._runner.session_time(),
                    "gun",
                    rpm=state.measured_rpm,
                    battery=state.battery,
                )
            )
            self._link("gun", device, state.connected)
            if not state.connected:
                return
            self._fresh("gun", device, state.updated_at)
            step = self._expected.get("gun")
            self._device_faults(device, "gun", state.faults, on=state.running, step=step)

        return on_state

    def _device_faults(
        self,
        device: ThermalOutput | Percussion,
        role: str,
        faults: frozenset[str],
        *,
        on: bool,
        step: Step | None,
    ) -> bool:
        """Act on the first fault in ``faults`` that means something now (FAULT_POLICY);
        True when one did. A link or a telemetry stall is not taken from the flags: the
        supervisor watches those itself (:meth:`_link`, :meth:`_watch`)."""
        wanted_on = step is not None and not self._runner.paused
        for name in in_table_order(faults):
            policy = policy_for(name)
            if policy.seen in (Seen.LINK, Seen.WATCHDOG):
                continue
            if policy.seen is Seen.STOPPED_BY_ITSELF and (on or not wanted_on):
                continue  # an OFF relieve asked for, or already knows about
            if name == Fault.RUN_CAP_REACHED and step is not None and self._at_run_end(step):
                continue  # the gun's own cap and the host's stop, due together at the run's end
            self._act_on(policy, policy.message(device.info.name, name), role)
            return True
        return False

    def _at_run_end(self, step: Step) -> bool:
        """Whether the session is within the run-cap margin of ``step``'s planned end: a gun
        whose cap has no room past the run (the 18-minute extension) may stop itself a moment
        before the host's own stop arrives, which is the plan, not a fault."""
        margin = at_least_real(self._runner.clock, RUN_CAP_MARGIN_S, RUN_CAP_MARGIN_REAL_S)
        return self._runner.session_time() >= step.end_s - margin

    def _act_on(self, policy: FaultPolicy, message: str, role: str | None) -> None:
        """What the table says a fault means: its alarm (a high one ends the session with
        every output OFF), or with no alarm, the end of the session when it stops the outputs
        (``stopped``: the person switched a device off; nothing is switched on again)."""
        if policy.priority != "none":
            self.raise_alarm(_trouble(policy, f"{message}.", role))
        elif policy.stops and not self._ended:
            _LOGGER.warning("%s", message)
            self._ended = True
            self._runner.stop(f"{message}.")

    def _on_probe(self, reading: ProbeReading) -> None:
        self._notice_gap()
        runner = self._runner
        runner.emit(Telemetry(runner.session_time(), "probe", skin_celsius=reading.celsius))
        active = [s for s in self._expected.values() if s is not None and s.role != "gun"]
        if not active or runner.paused:
            return
        if reading.celsius is None:
            self.raise_alarm(
                Trouble(
                    "high",
                    "missing-temperature",
                    "The skin probe reports no valid temperature.",
                    "probe",
                    "S4",
                )
            )
            return
        for step in active:
            # too hot is a fault in a cold step too (a heater welded on at the switch)
            if step.action in ("heat", "cold"):
                ceiling = self._limits.heat_max_for(step.duration_s)
                if reading.celsius > ceiling:
                    self.raise_alarm(
                        Trouble(
                            "high",
                            "skin-too-hot",
                            f"The skin is at {reading.celsius:.1f} °C, above the "
                            f"{ceiling:g} °C limit.",
                            "probe",
                            "H1",
                        )
                    )
                    return
            if step.action == "cold":
                floor = self._limits.cold_skin_min_celsius
                if reading.celsius < floor:
                    self.raise_alarm(
                        Trouble(
                            "high",
                            "skin-too-cold",
                            f"The skin is at {reading.celsius:.1f} °C, below the "
                            f"{floor:g} °C floor.",
                            "probe",
                            "C3",
                        )
                    )
                    return

    # --- links and the watchdog -----------------------------------------------------------------

    def _link(self, role: str, device: ThermalOutput | Percussion, connected: bool) -> None:
        runner = self._runner
        lost = role in self._lost_since
        if not connected and not lost:
            self._lost_since[role] = runner.clock.now()
            self.raise_alarm(_trouble(_LINK_LOST, f"{_LINK_LOST.message(device.info.name)}.", role))
            runner.emit(StateChanged(runner.session_time(), "link-lost", device.info.name))
            self._pause(f"link to {device.info.name} lost")
        elif connected and lost:
            since = self._lost_since.pop(role)
            away = runner.clock.now() - since
            runner.emit(StateChanged(runner.session_time(), "link-restored", device.info.name))
            if away <= self._grace_s:
                self._carry_on(device)

    def _pause(self, reason: str) -> None:
        """A device out of sight: every output OFF and the session paused. Before time zero
        (pre-heat, pre-cool) a pause would stop nothing, so the outputs are held OFF instead;
        a device back within the grace resumes either the same way (:meth:`_carry_on`)."""
        if self._runner.session_time() < 0:
            self._runner.hold(reason)
        else:
            self._runner.pause(reason)

    def _fresh(self, role: str, device: ThermalOutput | Percussion, updated_at: float) -> None:
        """Telemetry newer than the stall it was missing from: the device reports again."""
        since = self._stalled_since.get(role)
        if since is None or updated_at <= since:
            return
        del self._stalled_since[role]
        runner = self._runner
        runner.emit(StateChanged(runner.session_time(), "link-restored", device.info.name))
        if runner.clock.now() - since <= self._grace_s:
            self._carry_on(device)

    def _carry_on(self, device: ThermalOutput | Percussion) -> None:
        """A device is back in time: resume once nothing else is missing (before time zero
        the hold ends and the pre-conditioning step is applied again). Never after relieve
        itself did not run for longer than the grace (see outputs_may_go_on)."""
        if not self.outputs_may_go_on():
            return
        if self._lost_since or self._stalled_since or self._asking:
            return
        if self._runner.paused:
            self._runner.resume()
        else:
            self._runner.reapply_soon(device)

    async def _watch(self) -> None:
        runner = self._runner
        while not self._ended:
            await runner.clock.sleep(CHECK_INTERVAL_S)
            self._notice_gap()  # a freeze is a freeze, not a stall of every device
            if self._freeze_pending or self._ended:
                continue
            now = runner.clock.now()
            away = {**self._stalled_since, **self._lost_since}
            for role, since in away.items():
                if now - since > self._grace_s and not self._asking and not self._ended:
                    await self._long_loss(role)
            if runner.paused:
                continue
            for role in ("heat", "cold", "gun"):
                device = runner.devices.for_role(role)
                step = self._expected.get(role)
                if device is None or step is None or not device.state.connected:
                    continue
                stale = now - device.state.updated_at
                missing = role in self._lost_since or role in self._stalled_since
                if stale > self._stall_s and not missing:
                    self._stalled_since[role] = now
                    message = f"{_STALLED.message(device.info.name)}."
                    self.raise_alarm(_trouble(_STALLED, message, role))
                    self._pause(f"telemetry from {device.info.name} stalled")
            probe = runner.devices.probe
            if probe is not None and any(
                s is not None and s.role in ("heat", "cold") for s in self._expected.values()
            ):
                self._check_probe_fresh(probe, now)

    def _check_probe_fresh(self, probe: TemperatureProbe, now: float) -> None:
        reading = probe.reading
        last = reading.at if reading is not None else self._started_at
        if now - last > self._stall_s:
            self.raise_alarm(
                Trouble(
                    "high",
                    "missing-temperature",
                    f"No skin temperature from {probe.info.name} for more than "
                    f"{TELEMETRY_STALL_S:g} s.",
                    "probe",
                    "S4",
                )
            )

    async def _long_loss(self, role: str) -> None:
        runner = self._runner
        device = runner.devices.for_role(role)
        name = device.info.name if device is not None else role
        if role in self._lost_since:
            policy, message = _LINK_LOST, f"The link to {name} was lost for more than "
        else:
            policy, message = _STALLED, f"{name} sent no telemetry for more than "
        message += f"{LINK_GRACE_S:g} s."
        ask = runner.ask_resume
        if ask is None:
            # unattended: a medium alarm that outlasts the grace ends the session
            ended = f"{message} Session ended."
            self.raise_alarm(Trouble("high", policy.reason, ended, role, policy.limit_id))
            return
        async with self._one_question:
            self._asking = True
            try:
                again = await ask(message + " Resume when it is back?")
            finally:
                self._asking = False
        if again and device is not None and device.state.connected:
            self._lost_since.pop(role, None)
            self._stalled_since.pop(role, None)
            self._carry_on(device)
        else:
            runner.stop(message)
