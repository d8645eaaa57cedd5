"""The session runner: executes a plan on bound devices, with a safety supervisor beside it.

Deadlines are absolute (time zero + offset) on the injected Clock, so nothing drifts. Every way
out -- done, stop, alarm, error, cancellation, signal -- ends in :meth:`SessionRunner._all_off`,
shielded from cancellation and bounded to :data:`OFF_TIMEOUT_S`, and records the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from controller.bindings import SessionDevices
from controller.events import (
    Event,
    Finished,
    Notice,
    Outcome,
    PhaseChanged,
    Prompt,
    SessionStarted,
    StateChanged,
)
from controller.schedule import Action, build_schedule, gun_run_caps
from controller.session_recorder import SessionRecorder
from controller.supervisor import Supervisor, Trouble
from drivers.base import (
    DeviceError,
    DeviceTimeoutError,
    NotConnectedError,
    Percussion,
    ThermalOutput,
    is_percussion,
    is_thermal,
)
from drivers.clock import Clock, at_least_real
from drivers.watch import STUCK_OUTPUT
from profiles.limits import HARD, Limits
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


AskResume = Callable[[str], Awaitable[bool]]


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
    ) -> None:
        self.plan = plan
        self.devices = devices
        self.clock = clock
        self._emit_cb = emit
        self._recorder = recorder
        self.ask_resume = ask_resume  # None: unattended (a long link loss aborts)
        self._simulated = simulated
        self._t0: float | None = None  # clock time of therapy zero (shifted by pauses)
        self._origin = clock.now()
        self._wall_origin = datetime.now(UTC)
        self._paused_at: float | None = None
        self._pause_changed = asyncio.Event()
        self._active: dict[int, Step] = {}  # id(device) -> the step it is running
        self._phase: Phase | None = None
        self._delivered_s = 0.0
        self._phase_started_at: float | None = None
        self._task: asyncio.Task[object] | None = None
        self._finish: _AbortError | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stragglers: set[asyncio.Task[None]] = set()  # OFFs still going after the bound
        self._run_caps = gun_run_caps(plan, limits)
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

    def resume(self) -> None:
        if self._paused_at is not None and self._t0 is not None:
            self._t0 += self.clock.now() - self._paused_at
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
                self.clock.speed,
            )
        )
        self._task = asyncio.current_task()
        outcome: Outcome = "completed"
        reason: str | None = None
        cancelled = False
        try:
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
            if self._recorder is not None:
                self._recorder.finish(outcome, self._wall(self.clock.now()))
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
            await self._wait_until(action.at)
            await self._do(action)

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
                self._close_phase()
                self._open_phase(action)
            case "prompt":
                self._emit(Prompt(t, action.text, action.due))
            case "notice":
                self._emit(Notice(t, action.text))
            case "start":
                await self._apply(_need(action.step, "step"))
            case "end":
                await self._release(_need(action.step, "step"))

    def _open_phase(self, action: Action) -> None:
        phase = action.phase
        count = len(self.plan.phases)
        if phase is None:
            self._phase = None
            self._emit(PhaseChanged(action.at, "off", index=count, count=count))
            return
        self._phase = phase
        self._phase_started_at = None
        self._emit(
            PhaseChanged(
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
        )
        self._continue_phase()

    def _continue_phase(self) -> None:
        """The open phase delivers from now on (it opened, or the session resumed)."""
        phase = self._phase
        if phase is None or self._paused_at is not None or self._phase_started_at is not None:
            return
        self._phase_started_at = self.clock.now()
        if self._recorder is not None and phase.mode != "off":
            device = self._device_for_mode(phase.mode)
            # S3: after a crash the device may run its lease (or timer) past the last heartbeat
            worst = self._heartbeat_s + (SessionDevices.worst_case_s(device) if device else 0.0)
            self._recorder.phase_started(
                phase.mode,
                phase.area,
                self._wall(self.clock.now()),
                celsius=phase.celsius,
                rpm=phase.rpm,
                worst_case_s=worst,
            )

    def _suspend_phase(self) -> None:
        """The open phase stops delivering (paused, or ended): count it and close its record.
        A pause ends the ledger's phase row; resuming opens a new one, so the ledger holds
        what was delivered, not the time the outputs were OFF."""
        started = self._phase_started_at
        if self._phase is None or started is None:
            return
        self._phase_started_at = None
        if self._phase.mode != "off":
            self._delivered_s += max(0.0, self.clock.now() - started)
            if self._recorder is not None:
                self._recorder.phase_ended(self._wall(self.clock.now()))

    def _close_phase(self) -> None:
        self._suspend_phase()
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
        if self._paused_at is not None:
            return  # applied on resume
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
        for device in self.devices.outputs():
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
        if step is not None and self._paused_at is None:
            await self._command(device, step)

    def reapply_soon(self, device: ThermalOutput | Percussion) -> None:
        """:meth:`reapply` in the background (for the supervisor, when nothing was paused:
        a link that blipped while pre-conditioning)."""
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
        outputs = self.devices.outputs()
        offs = [asyncio.ensure_future(_off(device)) for device in outputs]
        if offs:
            # asyncio.wait, not wait_for: the bound holds even when a driver swallows the
            # cancellation and would keep wait_for waiting for it
            await asyncio.wait(offs, timeout=OFF_TIMEOUT_S)
        ok = True
        for device, off in zip(outputs, offs, strict=True):
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
                _LOGGER.error(
                    "%s still drives its output after OFF; switch it off at the mains",
                    device.info.name,
                )
        return ok

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
        if self._recorder is None:
            return
        while True:
            self._recorder.heartbeat(self._wall(self.clock.now()))
            await self.clock.sleep(self._heartbeat_s)

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
        if self._recorder is not None:
            self._recorder.alarm(limit, priority, message, self._wall(self.clock.now()))


async def _run_gun(device: Percussion, rpm: int, run_cap_s: float | None) -> None:
    if run_cap_s is None:
        await device.run(rpm)
    else:
        # Both gun drivers take run_cap_s; drivers.base.Percussion does not declare it yet.
        await device.run(rpm, run_cap_s=run_cap_s)


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
