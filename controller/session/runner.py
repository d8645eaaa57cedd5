"""The session runner: executes a plan on bound devices, with a safety supervisor beside it.

Deadlines are absolute (time zero + offset) on the injected Clock, so nothing drifts. Every way
out -- done, stop, alarm, error, cancellation, signal -- ends in :meth:`SessionRunner._all_off`,
shielded from cancellation: every OFF is sent and confirmed within :data:`OFF_TIMEOUT_S`; an
output that still looked driven is then watched for a few more clock seconds before it is
claimed OFF. The outcome is recorded through a :class:`~controller.ledger.writer.LedgerWriter`,
off the event loop; a history that cannot be written ends the session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from controller.ledger.recorder import SessionRecorder
from controller.ledger.writer import LEDGER_STALL_LIMIT_S, LedgerWriter
from controller.session.bindings import SessionDevices
from controller.session.events import (
    Event,
    Finished,
    Notice,
    Outcome,
    PhaseChanged,
    Prompt,
    SessionStarted,
    StateChanged,
)
from controller.session.schedule import (
    RUN_CAP_MARGIN_REAL_S,
    RUN_CAP_MARGIN_S,
    Action,
    build_schedule,
    gun_run_caps,
)
from controller.session.supervisor import AskResume, Supervisor, Trouble
from drivers.core.base import (
    DeviceError,
    DeviceTimeoutError,
    NotConnectedError,
    Percussion,
    PercussionState,
    ThermalOutput,
    ThermalState,
    is_percussion,
    is_thermal,
)
from drivers.core.clock import Clock, at_least_real
from drivers.core.watch import (
    HEAT_ONLY_ABOVE_C,
    SPIN_DOWN_S,
    STUCK_OUTPUT,
    AfterOff,
    MotorAfterStop,
    PlateAfterOff,
    plate_beyond_setpoint,
)
from profiles.limits import HARD, Limits, refuse_unsafe_on_steps
from profiles.plan import Phase, Plan, Step

_T = TypeVar("_T")

__all__ = ["OFF_TIMEOUT_S", "PRECONDITION_TOLERANCE_C", "SessionRunner"]

_LOGGER = logging.getLogger(__name__)

OFF_TIMEOUT_S = 1.0  # every device OFF within this (real seconds) on every exit path
PRECONDITION_TOLERANCE_C = 1.0  # pre-heat / pre-cool ends when the plate is this close
PRECONDITION_POLL_S = 1.0  # how often pre-conditioning looks at the plate (clock seconds)
# Ledger heartbeat (clock seconds; at least 0.5 s real when scaled); S3 adds it to the worst case.
HEARTBEAT_S = 10.0
HEARTBEAT_REAL_FLOOR_S = 0.5
LEDGER_CHECK_S = 1.0  # real seconds between checks that the history keeps up (S3)
# Clock seconds before a phase's instant its record is written. S3 wants the phase on disk
# before it is announced and before its devices switch; written ahead (its instant is known),
# the switch at the instant is only the device command, not a commit. Stopped or paused in
# between, the new row is left empty and the old one counts up to the instant: the history
# never holds less than was delivered.
PHASE_RECORD_LEAD_S = 0.02


class _AbortError(Exception):
    """Raised inside the timeline to end the session with an outcome."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        self.outcome = outcome
        self.reason = reason
        super().__init__(reason)


class SessionRunner:
    """Runs one compiled plan. Create, then ``await run()``; control with pause/resume/stop."""

    def __init__(
        self,
        plan: Plan,
        devices: SessionDevices,
        clock: Clock,
        *,
        emit: Callable[[Event], None],
        recorder: SessionRecorder | None = None,
        ask_resume: AskResume | None = None,
        limits: Limits = HARD,
        simulated: bool = False,
        wall_now: Callable[[], datetime] | None = None,
    ) -> None:
        """``wall_now`` is the ledger's "now" (aware), which the records' times start from:
        the ledger's own, so a ledger that keeps another time (a test's, a soak's) gets its
        phases in its own days. Default: the system's."""
        # Defence in depth, whatever produced the plan: an ON step without a finite length within
        # its modality's hard cap (H2, C1, M1) is refused here, before any device is commanded.
        refuse_unsafe_on_steps(plan, limits)
        self.plan = plan
        self.devices = devices
        self.clock = clock
        self._emit_cb = emit
        self._recorder = recorder
        self._ledger: LedgerWriter | None = None  # writes the recorder's records off the loop
        self.ask_resume = ask_resume  # None: unattended (a long link loss aborts)
        self._simulated = simulated
        self._t0: float | None = None  # clock time of therapy zero (shifted by pauses)
        self._origin = clock.now()
        self._wall_origin = wall_now() if wall_now is not None else datetime.now(UTC)
        self._paused_at: float | None = None
        self._pause_changed = asyncio.Event()
        self._active: dict[int, Step] = {}  # id(device) -> the step it is running
        self._phase: Phase | None = None
        self._delivered_s = 0.0
        self._phase_started_at: float | None = None
        self._ahead: Action | None = None  # the phase action whose record was written ahead
        self._task: asyncio.Task[object] | None = None
        self._finish: _AbortError | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stragglers: set[asyncio.Task[None]] = set()  # OFFs still going after the bound
        # the gun's own cap a little past the host's stop (under a scaled clock, at least
        # RUN_CAP_MARGIN_REAL_S of real time: jitter must not let the backstop win the race)
        self._run_caps = gun_run_caps(
            plan, at_least_real(clock, RUN_CAP_MARGIN_S, RUN_CAP_MARGIN_REAL_S), limits
        )
        self.supervisor = Supervisor(self, limits)
        self._heartbeat_s = at_least_real(clock, HEARTBEAT_S, HEARTBEAT_REAL_FLOOR_S)

    # --- control -----------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def session_time(self) -> float:
        """Seconds from therapy zero (negative while pre-conditioning)."""
        if self._t0 is None:
            return self.clock.now() - self._origin - self.plan.preroll_s
        now = self._paused_at if self._paused_at is not None else self.clock.now()
        return now - self._t0

    def stop(self, reason: str = "stopped by you") -> None:
        self._end("stopped", reason)

    def emergency_stop(self) -> None:
        self._end("stopped", "emergency stop")

    def abort(self, reason: str) -> None:
        self._end("aborted", reason)

    def pause(self, reason: str = "paused by you") -> None:
        if self._paused_at is None and self._t0 is not None:
            self._paused_at = self.clock.now()
            self._pause_changed.set()
            self._suspend_phase()
            self._emit(StateChanged(self.session_time(), "paused", reason))
            self._spawn(self._outputs_off_for_pause())

    def hold(self, reason: str) -> None:
        """Every output OFF at once (also when already paused), and pause -- also before time
        zero, where :meth:`pause` does not: for the supervisor, when relieve itself did not
        run for too long. Only a :meth:`resume` the person agreed to goes on."""
        self._spawn(self._outputs_off_for_pause())
        if self._paused_at is None:
            self._paused_at = self.clock.now()
            self._pause_changed.set()
            self._suspend_phase()
            self._emit(StateChanged(self.session_time(), "paused", reason))

    def resume(self) -> None:
        if self._paused_at is None:
            return
        if not self.supervisor.outputs_may_go_on():
            return  # relieve itself did not run for too long: OFF, and the person is asked
        now = self.clock.now()
        if self._t0 is not None:
            # therapy time stood still from the pause (or from time zero, when that came
            # during a hold before it)
            self._t0 += now - max(self._paused_at, self._t0)
        self._paused_at = None
        self._pause_changed.set()
        self._emit(StateChanged(self.session_time(), "resumed"))
        self._continue_phase()
        self._spawn(self._reapply_active())

    def _end(self, outcome: Outcome, reason: str) -> None:
        if self._finish is None:
            self._finish = _AbortError(outcome, reason)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # --- the session -------------------------------------------------------------------------

    async def run(self) -> Finished:
        """Run to the end; returns (and emits) the :class:`Finished` event. Devices end OFF."""
        self._emit(
            SessionStarted(
                -self.plan.preroll_s,
                self.plan.name,
                self.plan.title,
                self.plan.total_s,
                self.devices.describe(),
                self._simulated,
                # virtual time (tests) has no finite speed; JSON has no infinity: 0 says so
                self.clock.speed if math.isfinite(self.clock.speed) else 0.0,
            )
        )
        self._task = asyncio.current_task()
        if self._recorder is not None:
            self._ledger = LedgerWriter(
                self._recorder, on_failure=self._ledger_failed, clock=self.clock
            )
            self._spawn(self._watch_ledger())
        outcome: Outcome = "completed"
        reason: str | None = None
        cancelled = False
        try:
            if self._finish is not None:  # stopped before it began: nothing is switched on
                raise self._finish
            self.supervisor.start()
            self._spawn(self._heartbeat())
            await self._precondition()
            await self._timeline()
        except asyncio.CancelledError:
            if self._finish is None:
                cancelled = True
                self._finish = _AbortError("stopped", "cancelled")
        except _AbortError as abort:
            self._finish = self._finish or abort
        except DeviceError as exc:
            self._command_failed(exc)
            self._finish = self._finish or _AbortError("aborted", str(exc))
        finally:
            # ending: a stop from now on has nothing to cut short (cancelling this task would
            # cut the closing of the history, or the letting go of the devices after it)
            self._task = None
            devices_off = await self._shielded_off()
            self.supervisor.stop()
            for task in list(self._tasks):
                task.cancel()
            if self._finish is not None:
                outcome, reason = self._finish.outcome, self._finish.reason
            self._close_phase()  # the phase cut short counts what it delivered
            finished = Finished(
                self.session_time(),
                outcome,
                reason,
                round(self._delivered_s, 3),
                devices_off,
            )
            if self._ledger is not None:
                failure = self._ledger.failure
                closing = asyncio.ensure_future(
                    self._ledger.close(outcome, self._wall(self.clock.now()))
                )
                self.clock.hold(closing)
                recorded = await closing
                if failure is not None or not recorded:
                    finished = _unrecorded(finished, failure)
            self._emit(finished)
        if cancelled:
            raise asyncio.CancelledError
        return finished

    async def _precondition(self) -> None:
        """Pre-heat / pre-cool before time zero, until within 1 °C or the plan's pre-roll."""
        steps = [s for s in self.plan.steps if s.start_s < 0 and s.role != "user"]
        if steps:
            self._emit(StateChanged(self.session_time(), "preconditioning"))
            for step in steps:
                self._emit(
                    PhaseChanged(
                        self.session_time(),
                        "preheat" if step.action == "preheat" else "precool",
                        celsius=step.celsius,
                    )
                )
                await self._apply(step)
            deadline = self.clock.now() + self.plan.preroll_s
            while self.clock.now() < deadline and not self._targets_reached(steps):
                await self.clock.sleep_until(min(deadline, self.clock.now() + PRECONDITION_POLL_S))
        for action in build_schedule(self.plan):
            if action.at <= 0 and action.kind == "prompt":
                self._emit(Prompt(0.0, action.text, action.due))  # shown as therapy starts
        self._t0 = self.clock.now()
        self._emit(StateChanged(0.0, "running"))

    def _targets_reached(self, steps: list[Step]) -> bool:
        for step in steps:
            device = self.devices.for_role(step.role)
            if not is_thermal(device) or step.celsius is None:
                continue
            plate = device.state.plate_celsius
            if plate is None:
                return False  # no sensor: wait the whole pre-roll
            if abs(plate - step.celsius) > PRECONDITION_TOLERANCE_C:
                return False
        return True

    async def _timeline(self) -> None:
        for action in build_schedule(self.plan):
            if action.kind == "prompt" and action.at <= 0:
                continue  # shown during pre-conditioning
            if _records_a_phase(action) and self._ledger is not None:
                await self._wait_until(action.at - PHASE_RECORD_LEAD_S)
                self._record_ahead(action)
            await self._wait_until(action.at)
            await self._do(action)

    def _record_ahead(self, action: Action) -> None:
        """Hand the ledger ``action``'s phase, starting at its instant (it closes the open
        phase there); :meth:`_do` then only waits for it to be on disk."""
        phase = _need(action.phase, "phase")
        if self._ledger is None or self._paused_at is not None:
            return
        at = _need(self._t0, "time zero") + action.at
        self._ledger.phase_started(
            phase.mode,
            phase.area,
            self._wall(at),
            celsius=phase.celsius,
            rpm=phase.rpm,
            worst_case_s=self._worst_case_s(phase),
        )
        self._ahead = action

    async def _wait_until(self, offset: float) -> None:
        """Sleep until ``offset`` seconds of therapy time, holding while paused."""
        while True:
            if self._paused_at is not None:
                self._pause_changed.clear()
                await self._pause_changed.wait()
                continue
            deadline = _need(self._t0, "time zero") + offset
            if self.clock.now() >= deadline:
                return
            self._pause_changed.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
            changed = asyncio.ensure_future(self._pause_changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()
            if self._paused_at is None and self.clock.now() >= deadline:
                return

    async def _do(self, action: Action) -> None:
        t = action.at
        match action.kind:
            case "phase":
                # a phase row that opens now ends the open one in the same write (one commit
                # at a switch, not two), and that write was usually made just ahead
                ahead = self._ahead is action
                self._ahead = None
                following = action.phase
                opens = following is not None and following.mode != "off"
                self._close_phase(record_end=not (opens and self._paused_at is None))
                opened = self._open_phase(action, recorded=ahead)
                # S3: the phase is on disk before it is announced and before its devices go ON
                await self._recorded()
                self._emit(opened)
            case "prompt":
                self._emit(Prompt(t, action.text, action.due))
            case "notice":
                self._emit(Notice(t, action.text))
            case "start":
                await self._apply(_need(action.step, "step"))
            case "end":
                await self._release(_need(action.step, "step"))

    def _open_phase(self, action: Action, *, recorded: bool = False) -> PhaseChanged:
        """Open the action's phase (its record queued, unless ``recorded`` ahead); the event
        that announces it."""
        phase = action.phase
        count = len(self.plan.phases)
        if phase is None:
            self._phase = None
            return PhaseChanged(action.at, "off", index=count, count=count)
        self._phase = phase
        self._phase_started_at = None
        self._continue_phase(recorded=recorded)
        return PhaseChanged(
            action.at,
            phase.mode,
            duration_s=phase.duration_s,
            celsius=phase.celsius,
            rpm=phase.rpm,
            area=phase.area,
            label=phase.label or None,
            index=action.phase_index,
            count=count,
        )

    async def _recorded(self) -> None:
        """Wait until every record handed to the ledger so far is written (S3: nothing is
        switched on before the phase it delivers is on disk). A write that fails ends the
        session through the writer's failure report."""
        if self._ledger is not None:
            await self._ledger.flushed()

    def _continue_phase(self, *, recorded: bool = False) -> None:
        """The open phase delivers from now on (it opened, or the session resumed); its record
        is queued unless it was ``recorded`` ahead."""
        phase = self._phase
        if phase is None or self._paused_at is not None or self._phase_started_at is not None:
            return
        self._phase_started_at = self.clock.now()
        if self._ledger is not None and phase.mode != "off" and not recorded:
            self._ledger.phase_started(
                phase.mode,
                phase.area,
                self._wall(self.clock.now()),
                celsius=phase.celsius,
                rpm=phase.rpm,
                worst_case_s=self._worst_case_s(phase),
            )

    def _worst_case_s(self, phase: Phase) -> float:
        """S3: after a crash the device may run its lease (or timer) past the last heartbeat
        written, and the history may lag by up to the stall limit before the session ends."""
        device = self._device_for_mode(phase.mode)
        worst = self._heartbeat_s + LEDGER_STALL_LIMIT_S
        return worst + (SessionDevices.worst_case_s(device) if device else 0.0)

    def _suspend_phase(self, *, record_end: bool = True) -> None:
        """The open phase stops delivering (paused, or ended): count it and close its record
        (``record_end`` False: the next phase's row, opened at this same instant, closes it).
        A pause ends the ledger's phase row; resuming opens a new one, so the ledger holds
        what was delivered, not the time the outputs were OFF."""
        ahead, self._ahead = self._ahead, None  # not begun: it is recorded again when it begins
        started = self._phase_started_at
        ended = False
        if self._phase is not None and started is not None:
            self._phase_started_at = None
            if self._phase.mode != "off":
                self._delivered_s += max(0.0, self.clock.now() - started)
                ended = record_end
        if self._ledger is not None and (ended or ahead is not None):
            # this ends the open row: the phase's, or the one written ahead, which stays empty
            self._ledger.phase_ended(self._wall(self.clock.now()))

    def _close_phase(self, *, record_end: bool = True) -> None:
        self._suspend_phase(record_end=record_end)
        self._phase = None

    def _device_for_mode(self, mode: str) -> ThermalOutput | Percussion | None:
        role = {"heat": "heat", "cold": "cold", "massage": "gun"}.get(mode)
        return self.devices.for_role(role) if role else None

    # --- devices -------------------------------------------------------------------------------

    async def _apply(self, step: Step) -> None:
        device = self.devices.for_role(step.role)
        if device is None or step.manual:
            return
        self._active[id(device)] = step
        if self._paused_at is not None or not self.supervisor.outputs_may_go_on():
            return  # applied on resume (a freeze just noticed pauses first)
        try:
            await self._command(device, step)
        except NotConnectedError as exc:
            # The link went while commanding: the supervisor pauses for it, and the step is
            # applied again when the link is back in time (or the session ends).
            _LOGGER.warning("%s; the step is applied again when the link is back", exc)

    async def _command(self, device: ThermalOutput | Percussion, step: Step) -> None:
        if is_percussion(device):
            await _run_gun(device, _need(step.rpm, "rpm"), self._run_caps.get(id(step)))
        elif step.action in ("heat", "preheat"):
            await device.heat(_need(step.celsius, "celsius"))
        else:
            await device.cool(_need(step.celsius, "celsius"))
        self.supervisor.expect(step.role, step)

    async def _release(self, step: Step) -> None:
        device = self.devices.for_role(step.role)
        if device is None or step.manual:
            return
        if self._active.get(id(device)) is step:
            del self._active[id(device)]
        self.supervisor.expect(step.role, None)
        try:
            await self._off_in_time(device)
        except NotConnectedError as exc:
            # a lease device is OFF without its link; a host-timed one gets OFF first when the
            # link is back (or the session ends on the long loss, and says it is not OFF)
            _LOGGER.warning("%s", exc)

    async def _outputs_off_for_pause(self) -> None:
        for device in self.devices.outputs():
            try:
                await self._off_in_time(device)
            except DeviceError as exc:
                # keep going: every other output must still go OFF; say what to do
                _LOGGER.warning("could not switch %s OFF for the pause: %s", device.info.name, exc)
                self._emit(Notice(self.session_time(), str(exc)))

    async def _reapply_active(self) -> None:
        # At once, in the resume's own turn: a pad whose lease ran out during the pause reports
        # OFF with lease-expired until the new START lands, and the supervisor must not see
        # that as the pad turning itself off. (The resumed phase's record is queued first.)
        for device in self.devices.outputs():
            # each ON asks first: relieve may have stalled (or paused) since the resume
            if self._paused_at is not None or not self.supervisor.outputs_may_go_on():
                return
            step = self._active.get(id(device))
            if step is not None:
                try:
                    await self._command(device, step)
                except NotConnectedError as exc:
                    _LOGGER.warning("%s; the step is applied again when the link is back", exc)
                except DeviceError as exc:
                    self._command_failed(exc)
                    self.abort(str(exc))

    async def reapply(self, device: ThermalOutput | Percussion) -> None:
        """After a link came back within the grace time: continue the device's current step."""
        step = self._active.get(id(device))
        if step is None or self._paused_at is not None:
            return
        if self.supervisor.outputs_may_go_on():
            await self._command(device, step)

    def reapply_soon(self, device: ThermalOutput | Percussion) -> None:
        """:meth:`reapply` in the background (for the supervisor, when nothing was paused:
        a link that blipped while pre-conditioning)."""
        if self.supervisor.outputs_may_go_on():
            self._spawn(self._reapply_guarded(device))

    async def _reapply_guarded(self, device: ThermalOutput | Percussion) -> None:
        try:
            await self.reapply(device)
        except NotConnectedError as exc:
            _LOGGER.warning("%s; the step is applied again when the link is back", exc)
        except DeviceError as exc:
            self._command_failed(exc)
            self.abort(str(exc))

    def _command_failed(self, exc: DeviceError) -> None:
        """S4: a command refused or not acknowledged is a high alarm."""
        role = next(
            (
                r
                for r in ("heat", "cold", "gun")
                if (d := self.devices.for_role(r)) is not None
                and exc.address is not None
                and d.info.address == exc.address
            ),
            None,
        )
        self.supervisor.raise_alarm(Trouble("high", "command-failed", str(exc), role, "S4"))

    async def _shielded_off(self) -> bool:
        task = asyncio.ensure_future(self._all_off())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            return await task

    async def _all_off(self) -> bool:
        """Every output OFF; True only when each is confirmed off.

        An acknowledged OFF is not enough from a device that ignores OFF but reports it (no
        current sensing): an output that looked driven when its OFF went out (a plate beyond
        its setpoint the way it drives, a gun reporting speed) is watched for a few clock
        seconds after it (:mod:`drivers.core.watch`), and one that keeps heating, cooling or running
        is not off. Nothing else is watched, so a normal end costs no time.
        """
        outputs = self.devices.outputs()
        before = [device.state for device in outputs]  # what each did when its OFF went out
        offs = [asyncio.ensure_future(_off(device)) for device in outputs]
        if offs:
            # asyncio.wait, not wait_for: the bound holds even when a driver swallows the
            # cancellation and would keep wait_for waiting for it
            await asyncio.wait(offs, timeout=OFF_TIMEOUT_S)
        ok = True
        watches: list[tuple[ThermalOutput | Percussion, AfterOff]] = []
        for device, off, state in zip(outputs, offs, before, strict=True):
            if not off.done():
                ok = False
                _LOGGER.error(
                    "could not confirm %s OFF within %g s", device.info.name, OFF_TIMEOUT_S
                )
                self._linger(off)
            elif off.cancelled() or off.exception() is not None:
                ok = False
                why = "cancelled" if off.cancelled() else off.exception()
                _LOGGER.error("could not confirm %s OFF: %s", device.info.name, why)
            elif STUCK_OUTPUT in device.state.faults:
                ok = False  # OFF was acknowledged, but the output still drives
                self._still_on(device)
            elif device.connected and (watch := self._after_off_watch(device, state)):
                watches.append((device, watch))
        if watches:
            self._suspend_phase()  # delivery ended with the OFF, not with the watch after it
            for device in await self._still_driving(watches):
                ok = False
                self._still_on(device)
        return ok

    def _after_off_watch(
        self, device: ThermalOutput | Percussion, before: ThermalState | PercussionState
    ) -> AfterOff | None:
        """How to tell whether ``device`` stopped, when it looked driven at its OFF."""
        if is_thermal(device) and isinstance(before, ThermalState):
            drive = (
                (before.mode, before.setpoint_celsius)
                if before.on
                else self.supervisor.last_drive(device)
            )
            plate = device.state.plate_celsius
            if plate is None:
                return None
            direction = _plate_driven(drive, before)
            if direction is None:
                return None
            beyond = drive is not None and bool(
                plate_beyond_setpoint(drive[0], drive[1], before.plate_celsius)
            )
            return PlateAfterOff(direction, plate, undecided_off=not beyond)
        now = self.clock.now()
        if (
            isinstance(before, PercussionState)
            and before.measured_rpm
            and now - before.updated_at <= SPIN_DOWN_S  # reporting speed just now
        ):
            return MotorAfterStop(now, before.measured_rpm)
        return None

    async def _still_driving(
        self, watches: list[tuple[ThermalOutput | Percussion, AfterOff]]
    ) -> list[ThermalOutput | Percussion]:
        """Watch each output after its OFF, each for at most its watch's clock seconds (no
        real time at all in virtual time); the ones that still drive."""
        changed = asyncio.Event()

        def poke(_state: object) -> None:
            changed.set()

        start = self.clock.now()
        pending = {id(device): (device, watch) for device, watch in watches}
        seen = {key: device.state.updated_at for key, (device, _) in pending.items()}
        driving: list[ThermalOutput | Percussion] = []
        undo = [device.register_callback(poke) for device, _ in watches]
        try:
            while pending:
                now = self.clock.now()
                for key, (device, watch) in list(pending.items()):
                    stopped = self._after_off_reading(device, watch, seen)
                    if stopped is None and now >= start + watch.watch_s:
                        stopped = watch.verdict()
                    if stopped is not None:
                        del pending[key]
                        if not stopped:
                            driving.append(device)
                if not pending:
                    break
                changed.clear()
                deadline = start + min(watch.watch_s for _, watch in pending.values())
                sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
                poked = asyncio.ensure_future(changed.wait())
                try:
                    await asyncio.wait({sleeper, poked}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    poked.cancel()
        finally:
            for unregister in undo:
                unregister()
        return driving

    def _after_off_reading(
        self, device: ThermalOutput | Percussion, watch: AfterOff, seen: dict[int, float]
    ) -> bool | None:
        """What ``device`` reported since it was last looked at: True stopped, False still
        driving, None not known yet."""
        state = device.state
        if STUCK_OUTPUT in state.faults or (
            state.on if isinstance(state, ThermalState) else state.running
        ):
            return False  # it says so itself, or it reports ON again
        if not device.connected:
            return watch.verdict()
        if state.updated_at <= seen[id(device)]:
            return None
        seen[id(device)] = state.updated_at
        value = state.plate_celsius if isinstance(state, ThermalState) else state.measured_rpm
        return watch.reading(value, state.updated_at)

    def _still_on(self, device: ThermalOutput | Percussion) -> None:
        """``device`` acknowledged OFF but still drives: say what to do about it."""
        name = device.info.name
        if is_thermal(device):
            message = (
                f"{name} did not turn OFF when told to: take the pad off now and unplug it "
                "(or switch it off at the mains)."
            )
        else:
            message = (
                f"{name} did not stop when told to: put it down and switch it off at the "
                "device (or take out its battery)."
            )
        _LOGGER.error("%s", message)
        self._emit(Notice(self.session_time(), message))

    async def _off_in_time(self, device: ThermalOutput | Percussion) -> None:
        """OFF, confirmed within OFF_TIMEOUT_S (real time) or DeviceTimeoutError (S4)."""
        off = asyncio.ensure_future(_off(device))
        try:
            # asyncio.wait: bounded even when a driver swallows the cancellation (see _all_off)
            await asyncio.wait({off}, timeout=OFF_TIMEOUT_S)
        finally:
            if not off.done():
                self._linger(off)
        if not off.done():
            raise DeviceTimeoutError(
                f"{device.info.name} did not confirm OFF within {OFF_TIMEOUT_S:g} s; "
                "switch it off at the device.",
                address=device.info.address,
            )
        off.result()

    def _linger(self, off: asyncio.Task[None]) -> None:
        """An OFF still going after the bound: let it finish (or fail) on its own."""
        self._stragglers.add(off)
        off.add_done_callback(self._straggler_done)

    def _straggler_done(self, task: asyncio.Task[None]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("a late OFF failed: %s", error)

    # --- plumbing --------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        if self._ledger is None:
            return
        while True:
            self._ledger.heartbeat(self._wall(self.clock.now()))
            await self.clock.sleep(self._heartbeat_s)

    async def _watch_ledger(self) -> None:
        """Real time, whatever the clock: end the session when its history stops keeping up."""
        ledger = self._ledger
        if ledger is None:
            return
        while True:
            await asyncio.sleep(LEDGER_CHECK_S)
            ledger.check_stall()

    def _ledger_failed(self, message: str) -> None:
        """S3: nothing runs a device whose therapy cannot be recorded."""
        _LOGGER.warning("ending the session: %s", message)
        self._end("aborted", message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wall(self, clock_t: float) -> datetime:
        """The ledger's time for a clock reading (session time maps to wall time 1:1 in
        seconds, so a rehearsal at x60 records the minutes a real session would)."""
        return self._wall_origin + timedelta(seconds=clock_t - self._origin)

    def _emit(self, event: Event) -> None:
        try:
            self._emit_cb(event)
        except Exception:
            # a front end's failure must never stop the session's safety logic
            _LOGGER.exception("an event listener failed on %s", event.type)

    def emit(self, event: Event) -> None:
        """For the supervisor: publish an event on the session's stream."""
        self._emit(event)

    def record_alarm(self, limit: str, priority: Literal["high", "medium"], message: str) -> None:
        if self._ledger is not None:
            self._ledger.alarm(limit, priority, message, self._wall(self.clock.now()))


def _unrecorded(finished: Finished, failure: str | None) -> Finished:
    """The end of a session whose history could not be written (in full)."""
    return dataclasses.replace(finished, reason=finished.reason or failure, recorded=False)


async def _run_gun(device: Percussion, rpm: int, run_cap_s: float | None) -> None:
    if run_cap_s is None:
        await device.run(rpm)
    else:
        # Both gun drivers take run_cap_s; drivers.core.base.Percussion does not declare it yet.
        await device.run(rpm, run_cap_s=run_cap_s)


# A cooled plate below this is colder than skin: on the body, once its cooler is OFF, it can
# only warm. One still getting colder after cold-OFF is still being cooled (a welded cooler
# without current sensing) -- or its sensor drifts, which relieve cannot tell apart in
# seconds; either way it cannot say the pad is off.
COLD_WATCH_BELOW_C = 30.0


def _records_a_phase(action: Action) -> bool:
    """Whether ``action`` opens a phase the ledger records (rests are not recorded)."""
    return action.kind == "phase" and action.phase is not None and action.phase.mode != "off"


def _plate_driven(
    drive: tuple[str, float | None] | None, before: ThermalState
) -> Literal["heat", "cold"] | None:
    """Which way a plate may still be driven after its OFF, so must be watched (None: it
    cannot be, so no watch and no time spent).

    * beyond its setpoint the way it was driven (a plate hotter than its heat setpoint);
    * hotter than a body while not heating (a heater welded on at the switch to cold);
    * last driven cold and colder than skin: after OFF, on the body, it can only warm or
      hold still; one still getting colder is still cooled.
    """
    plate = before.plate_celsius
    if plate is None:
        return None
    if drive is not None:
        beyond = plate_beyond_setpoint(drive[0], drive[1], plate)
        if beyond is not None:
            return beyond
    if plate > HEAT_ONLY_ABOVE_C and (drive is None or drive[0] != "heat"):
        return "heat"
    if drive is not None and drive[0] == "cold" and plate < COLD_WATCH_BELOW_C:
        return "cold"
    return None


async def _off(device: ThermalOutput | Percussion) -> None:
    if is_thermal(device):
        await device.off()
    else:
        await device.stop()


def _need(value: _T | None, what: str) -> _T:
    """A value the plan guarantees; its absence is a bug in relieve, not the user's doing."""
    if value is None:
        raise RuntimeError(f"relieve bug: the plan step has no {what}")
    return value
