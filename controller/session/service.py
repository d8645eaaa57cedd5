"""The session service: the one way every front end runs a session.

The CLI (``relieve run``, ``relieve demo``), the TUI, the node daemon and the MQTT bridge all
run sessions through :class:`SessionService`; none of them assembles a session itself, so every
rule is enforced in one place, in this order, before any device is touched:

1. the profile is loaded and compiled, and its numbers checked against the hard limits;
2. the health questions (a flagged condition blocks its modality; on real devices they must have
   been answered once, and the front end's person is asked them if it can);
3. the daily allowances, checked at once for a quick answer;
4. the person confirms the precautions (and the massage extension) -- through the front end's
   :class:`Person`, with no lock held while they answer;
5. the allowances are decided again and the session recorded in one step (a reservation);

then the devices are bound (by address, by kind from a scan, or ``manual``), the plan is compiled
for what they can do, and the runner runs it beside its safety supervisor. Every device connected
is let go of at the end, also when binding fails half way; a reservation that never began is
withdrawn.

A front end creates a :class:`Session` with :meth:`SessionService.session`, subscribes to its
events (:meth:`Session.subscribe` or ``async for event in session.events()``), awaits
:meth:`Session.run` and controls it with :meth:`Session.pause`, :meth:`Session.resume`,
:meth:`Session.stop` and :meth:`Session.emergency_stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from controller.health import HealthDecision, HealthQuestionsNeededError, check_health, save_answers
from controller.ledger import DeviceInfo as LedgerDevice
from controller.ledger import Ledger, SessionRecorder
from controller.ledger.allowances import AllowanceError, Refusal
from controller.library import ProfileLibrary
from controller.session.binding import ROLES, bind_devices, let_go
from controller.session.bindings import SessionDevices
from controller.session.events import Event, Finished, Notice, SessionStarted
from controller.session.runner import SessionRunner
from controller.session.simulation import Radio, open_radio
from controller.session.supervisor import AskResume
from drivers.core.clock import Clock, MonotonicClock, ScaledClock
from profiles.compiler import compile_plan
from profiles.errors import RelieveError
from profiles.models import Profile
from profiles.plan import Plan

__all__ = [
    "CONFIRMATIONS",
    "EXTENSION_TEXT",
    "PRECAUTIONS_COLD",
    "PRECAUTIONS_GUN",
    "PRECAUTIONS_HEAT",
    "ROLES",
    "SPEED_MAX",
    "SPEED_MIN",
    "AskResume",
    "Availability",
    "NotConfirmedError",
    "Person",
    "Session",
    "SessionError",
    "SessionRequest",
    "SessionService",
    "clock_for",
    "confirmation_id",
    "precautions",
]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

SPEED_MIN = 1.0  # --speed: real time ...
SPEED_MAX = 1000.0  # ... up to a thousand times faster (simulated devices only)

PRECAUTIONS_HEAT = (
    "Before heat (H7): a fabric layer between the pad and your skin; you are awake and will stay "
    "awake; you are not lying on the pad; you have no numbness or impaired sensation there."
)
PRECAUTIONS_COLD = "Before cold: a thin towel between the cold pad or pack and your skin."
PRECAUTIONS_GUN = (
    "Before the massage gun: only the muscles beside the spine, never the spine itself; no "
    "clotting disorder, anticoagulants, recent surgery or fracture there."
)
EXTENSION_TEXT = (
    "The one-a-day extension (M1) adds 3 minutes to today's massage (18 minutes at most)."
)
CONFIRMATIONS = {
    "heat": PRECAUTIONS_HEAT,
    "cold": PRECAUTIONS_COLD,
    "gun": PRECAUTIONS_GUN,
    "extension": EXTENSION_TEXT,
}
_CONFIRMATION_IDS = {text: key for key, text in CONFIRMATIONS.items()}


def confirmation_id(text: str) -> str | None:
    """The id (``heat``, ``cold``, ``gun``, ``extension``) of a text the person confirms."""
    return _CONFIRMATION_IDS.get(text)


class SessionError(RelieveError):
    """A session could not start; the message says why and what to do."""


class NotConfirmedError(SessionError):
    """The person did not confirm a precaution, so nothing was turned on."""


class Person(Protocol):
    """What the service asks of the person, through the front end."""

    async def confirm(self, text: str) -> bool:
        """Show ``text`` (a precaution, the massage extension) and say whether the person
        confirmed it. A front end that cannot ask raises a :class:`RelieveError` saying how to
        confirm instead."""
        ...

    def notice(self, text: str) -> None:
        """A warning or advice before the session starts (it does not stop anything)."""
        ...

    async def health_answers(self) -> Mapping[str, bool] | None:
        """Ask the health questions now (they were never answered and the devices are real):
        condition id to yes/no, or None when they cannot be asked here (unattended; ``--yes``
        never answers them). The service saves the answers in the user's settings."""
        ...

    @property
    def ask_resume(self) -> AskResume | None:
        """Asks "resume when the link is back?" during the session; None: unattended (a long
        link loss ends the session)."""
        ...


@dataclass(frozen=True)
class SessionRequest:
    """What a front end asks for.

    ``profile``: a built-in or user profile name, or a path to a TOML file. ``roles``: ``heat``,
    ``cold``, ``gun``, ``probe`` to a device address or ``manual``; a role not given is found by
    kind in a scan. ``simulate`` / ``simulator``: an in-process simulated world (``world``: its
    device types, all when None) or a simulator server. ``speed``: time N times faster, simulated
    devices only. ``lift``: allowance rules overridden (recorded). ``started_by``: which front
    end, for the record.
    """

    profile: str
    roles: Mapping[str, str] = field(default_factory=dict)
    extend: bool = False
    lift: Collection[str] = ()
    simulate: bool = False
    simulator: str | None = None
    world: Sequence[str] | None = None
    speed: float | None = None
    started_by: str = "cli"
    clock: Clock | None = None

    @property
    def simulated(self) -> bool:
        return self.simulate or self.simulator is not None


def precautions(plan: Plan) -> list[str]:
    """What the person confirms before the first device turns on, for ``plan``."""
    actions = {s.action for s in plan.steps}
    out = []
    if actions & {"heat", "preheat"}:
        out.append(PRECAUTIONS_HEAT)
    if actions & {"cold", "precool"}:
        out.append(PRECAUTIONS_COLD)
    if "run" in actions:
        out.append(PRECAUTIONS_GUN)
    return out


def clock_for(request: SessionRequest) -> Clock:
    """Real time, or faster for simulated devices; a bad speed is refused before anything.
    The request's own ``clock``, when it has one, is used as it is (simulated devices only)."""
    if request.clock is not None:
        if not request.simulated:
            raise SessionError(
                "relieve bug: a clock of its own is only for sessions on simulated devices"
            )
        return request.clock
    speed = request.speed
    # `not low <= speed <= high` refuses NaN too (every comparison with it is false)
    if speed is not None and not SPEED_MIN <= speed <= SPEED_MAX:
        raise SessionError(
            f"--speed must be between {SPEED_MIN:g} and {SPEED_MAX:g} (times real time), not "
            f"{speed:g}; give a number in that range."
        )
    if speed is None or speed == 1:
        return MonotonicClock()
    if not request.simulated:
        raise SessionError(
            "--speed runs time faster and is only for simulated devices; add --simulate or "
            "--simulator SPEC, or leave out --speed."
        )
    return ScaledClock(speed)


@dataclass(frozen=True)
class Availability:
    """Whether a profile may start now, as far as can be known before the devices.

    ``refusals``: the daily allowance rules that refuse it now, each with the first moment it
    allows it (``earliest``, None: not on any day as planned). ``problem``: one sentence when
    something else stands in the way: the profile does not load or breaks a limit, a health
    answer rules it out, or the health questions must be answered first.
    """

    profile: str
    refusals: tuple[Refusal, ...] = ()
    problem: str | None = None
    lifted: tuple[str, ...] = ()
    health_needed: bool = False  # the problem is only that the health questions are unanswered

    @property
    def allowed(self) -> bool:
        return self.problem is None and not self.refusals

    @property
    def sentence(self) -> str | None:
        """Why not, in one sentence (None: allowed)."""
        if self.problem is not None:
            return self.problem
        if self.refusals:
            return str(AllowanceError(self.refusals))
        return None


class SessionService:
    """Runs sessions for every front end. ``config_dir``: where the health answers are kept
    (None: the user's configuration directory)."""

    def __init__(self, library: ProfileLibrary, *, config_dir: Path | None = None) -> None:
        self.library = library
        self.config_dir = config_dir

    def availability(
        self,
        profile: str,
        ledger: Ledger,
        *,
        extend: bool = False,
        lift: Collection[str] = (),
    ) -> Availability:
        """May ``profile`` start now on ``ledger``'s kind of devices? The same checks as a
        session runs before it asks anything (steps 1 to 3), without recording anything.
        Blocking: it reads the profile, the health answers and the ledger."""
        try:
            loaded = self.library.resolve(profile)
            draft = compile_plan(loaded, resolve=self.library.get, extended=extend)
            check_health(draft, self.config_dir, simulated=ledger.simulated)
            decision = ledger.check_allowances(draft, lift=lift)
        except AllowanceError as exc:
            return Availability(profile, refusals=exc.refusals)
        except HealthQuestionsNeededError as exc:
            return Availability(profile, problem=" ".join(str(exc).split()), health_needed=True)
        except RelieveError as exc:
            return Availability(profile, problem=" ".join(str(exc).split()))
        return Availability(profile, lifted=decision.overrides)

    def confirmations(self, profile: str, *, extend: bool = False) -> dict[str, str]:
        """What a session of ``profile`` asks the person to confirm, in order: ``heat``,
        ``cold``, ``gun`` (the precautions) and ``extension``, each to its text. For a front
        end that asks before it hands the session to another process (the node daemon).
        Raises a :class:`RelieveError` when the profile does not load."""
        draft = compile_plan(
            self.library.resolve(profile), resolve=self.library.get, extended=extend
        )
        out = {_CONFIRMATION_IDS[text]: text for text in precautions(draft)}
        if extend:
            out["extension"] = EXTENSION_TEXT
        return out

    def session(self, request: SessionRequest, person: Person, ledger: Ledger) -> Session:
        """A session for ``request``; nothing happens until :meth:`Session.run`. ``ledger``
        must be the history of the same kind of devices (real or simulated) as the request."""
        if ledger.simulated != request.simulated:
            kind = "simulated" if request.simulated else "real"
            raise SessionError(f"relieve bug: a {kind} session needs the {kind} history")
        return Session(self, request, person, ledger)


class Session:
    """One session from request to every device OFF and let go of."""

    def __init__(
        self, service: SessionService, request: SessionRequest, person: Person, ledger: Ledger
    ) -> None:
        self.service = service
        self.request = request
        self.person = person
        self.ledger = ledger
        self.plan: Plan | None = None
        self.health: HealthDecision | None = None
        # the radio the devices are bound on, while it is open (its ``world`` is the simulated
        # world of an in-process simulation: what benchmarks and tests read the devices from)
        self.radio: Radio | None = None
        self._runner: SessionRunner | None = None
        self._task: asyncio.Task[Finished] | None = None
        self._listeners: list[Callable[[Event], None]] = []
        self._queues: list[asyncio.Queue[Event | None]] = []
        self._stop_reason: str | None = None
        self.record_id: int | None = None  # the session's id in the history, once recorded

    # --- events ------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def events(self) -> AsyncIterator[Event]:
        """Every event from now on, until (and including) :class:`Finished`."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
                if isinstance(event, Finished):
                    return
        finally:
            self._queues.remove(queue)

    def _publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # a front end's failure must never stop the session's safety logic
                _LOGGER.exception("an event listener failed on %s", event.type)
        for queue in self._queues:
            queue.put_nowait(event)
        if isinstance(event, SessionStarted) and self.health is not None:
            # said once, in the session's own stream, so a refusal stays one sentence
            for text in self.health.notices:
                self._publish(Notice(event.t, text, level="info"))

    # --- control -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the runner runs (devices bound, the plan under way)."""
        return self._runner is not None

    @property
    def paused(self) -> bool:
        return self._runner is not None and self._runner.paused

    def session_time(self) -> float | None:
        """Session seconds now (as the events' ``t``); None before the runner runs."""
        return self._runner.session_time() if self._runner is not None else None

    def pause(self, reason: str = "paused by you") -> None:
        """Every output OFF and the clock of the plan held (resume continues it)."""
        if self._runner is not None:
            self._runner.pause(reason)

    def resume(self) -> None:
        if self._runner is not None:
            self._runner.resume()

    def stop(self, reason: str = "stopped by you") -> None:
        """End the session: every device OFF. Before any device was switched on, nothing
        starts."""
        if self._runner is not None:
            self._runner.stop(reason)
        else:
            self._cancel_before_start(reason)

    def emergency_stop(self) -> None:
        if self._runner is not None:
            self._runner.emergency_stop()
        else:
            self._cancel_before_start("emergency stop")

    def _cancel_before_start(self, reason: str) -> None:
        self._stop_reason = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> Finished:
        """Everything from the profile to every device OFF; returns the :class:`Finished`
        event (also published). Raises a :class:`RelieveError` when the session may not start,
        before any device is touched."""
        if self._stop_reason is not None:  # stopped before it was run: nothing starts
            raise SessionError(f"Nothing was started ({self._stop_reason}).")
        self._task = asyncio.ensure_future(self._run())
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            # the caller was cancelled: the session ends, every device OFF, then we go
            self.stop("cancelled")
            with contextlib.suppress(asyncio.CancelledError, RelieveError):
                await self._task
            raise

    async def _run(self) -> Finished:
        request, service = self.request, self.service
        try:
            profile = service.library.resolve(request.profile)
            clock = clock_for(request)
            draft = self._draft(profile)
            self.health = await self._check_health(draft, clock)
            for text in self.health.warnings:
                self.person.notice(text)
            decision = self.ledger.check_allowances(draft, lift=request.lift)
            for text in decision.warnings:
                self.person.notice(text)
            for text in precautions(draft):
                await self._confirm(text)
            if request.extend:
                await self._confirm(EXTENSION_TEXT)
            recorder = await self._reserve(draft, clock)
        except asyncio.CancelledError:
            raise SessionError(
                f"Nothing was started ({self._stop_reason or 'cancelled'})."
            ) from None
        return await self._bind_and_run(profile, draft, recorder, clock)

    async def _check_health(self, draft: Plan, clock: Clock) -> HealthDecision:
        """The health check; on real devices never asked before, the person answers first."""
        config_dir, simulated = self.service.config_dir, self.request.simulated
        try:
            return check_health(draft, config_dir, simulated=simulated)
        except HealthQuestionsNeededError:
            answers = await self.person.health_answers()
            if answers is None:
                raise
        await _off_loop(clock, functools.partial(save_answers, config_dir, answers))
        return check_health(draft, config_dir, simulated=simulated)

    async def _reserve(self, draft: Plan, clock: Clock) -> SessionRecorder:
        """Decide the allowances again and record the session, in one step, off the loop."""
        reserving = asyncio.ensure_future(
            asyncio.to_thread(self.ledger.reserve, draft, lift=self.request.lift)
        )
        clock.hold(reserving)
        try:
            recorder, _ = await asyncio.shield(reserving)
        except asyncio.CancelledError:
            # stopped while the ledger wrote: the reservation still lands; take it back
            with contextlib.suppress(Exception):
                late, _ = await reserving
                late.withdraw(self.ledger.now())
            raise
        self.record_id = recorder.id
        return recorder

    def _draft(self, profile: Profile) -> Plan:
        """The plan as compiled before the devices are known (for the checks and questions)."""
        return compile_plan(profile, resolve=self.service.library.get, extended=self.request.extend)

    async def _confirm(self, text: str) -> None:
        if not await self.person.confirm(text):
            raise NotConfirmedError("Not confirmed, so nothing was turned on.")

    async def _bind_and_run(
        self, profile: Profile, draft: Plan, recorder: SessionRecorder, clock: Clock
    ) -> Finished:
        request = self.request
        began = False
        try:
            async with open_radio(
                simulate=request.simulate,
                simulator=request.simulator,
                clock=clock,
                devices=request.world,
            ) as radio:
                self.radio = radio
                devices = SessionDevices()
                try:
                    await bind_devices(
                        devices,
                        roles=request.roles,
                        needed=_roles_needed(draft),
                        radio=radio,
                        clock=clock,
                    )
                    plan = compile_plan(
                        profile,
                        devices.capabilities(),
                        resolve=self.service.library.get,
                        extended=request.extend,
                    )
                    runner = SessionRunner(
                        plan,
                        devices,
                        clock,
                        emit=self._publish,
                        recorder=recorder,
                        ask_resume=self.person.ask_resume,
                        simulated=radio.simulated,
                        wall_now=self.ledger.now,
                    )
                    await _off_loop(
                        clock, functools.partial(recorder.set_devices, _ledger_devices(devices))
                    )
                    # from here a stop goes to the runner, which ends with every device OFF
                    self.plan, self._runner, began = plan, runner, True
                    return await runner.run()
                finally:
                    for device in devices.all_devices():
                        await let_go(device)
                    self.radio = None
        except asyncio.CancelledError:
            if began:
                raise
            raise SessionError(
                f"Nothing was switched on ({self._stop_reason or 'cancelled'})."
            ) from None
        finally:
            if not began:  # no device was switched on: the reservation counts for nothing
                recorder.withdraw(self.ledger.now())


def _roles_needed(plan: Plan) -> set[str]:
    return {s.role for s in plan.steps if s.role != "user"}


def _ledger_devices(devices: SessionDevices) -> dict[str, LedgerDevice]:
    out = {}
    for role in ROLES:
        device = getattr(devices, role)
        if device is not None:
            info = device.info
            out[role] = LedgerDevice(info.address, info.name, info.driver)
    return out


async def _off_loop(clock: Clock, call: Callable[[], _T]) -> _T:
    """``call()`` (ledger I/O) on a worker thread, so the event loop keeps its timing."""
    future = asyncio.ensure_future(asyncio.to_thread(call))
    clock.hold(future)
    return await future
