"""Running whole sessions in virtual time: the real runner, drivers and simulators.

A :class:`Bench` holds a simulated world on a :class:`VirtualClock`, the drivers bound to it,
a ledger in a temporary directory, and every event the session emitted -- each also stamped
with the clock and real time it was emitted at, so a test can say *when* something happened.
While a session runs the bench also records what the simulated devices themselves report
(:meth:`Bench.watch_world`), which is the truth a test checks "OFF" against.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controller.ledger import Ledger
from controller.ledger.records import SessionRecord
from controller.library import ProfileLibrary
from controller.session.bindings import SessionDevices
from controller.session.events import Event, Finished
from controller.session.runner import SessionRunner
from controller.session.simulation import Radio, open_radio
from controller.session.supervisor import AskResume
from drivers.core.clock import VirtualClock
from drivers.core.factory import AnyDevice, open_device
from profiles.compiler import compile_plan
from profiles.parse import parse_profile
from profiles.plan import Plan
from simulators.devices.state import DeviceState
from simulators.world import SimWorld

# A one-cycle contrast (2 + 2 minutes): short sessions for control and fault tests.
CONTRAST_MINI = """
name = "contrast-mini"
title = "Contrast, one short cycle"
kind = "contrast"
area = "lower-back"

[contrast]
heat_minutes = 2
cold_minutes = 2
cycles = 1
heat_celsius = 42
cold_celsius = 12
"""

# One minute of heat at 40 °C: short sessions through the CLI and the service.
HEAT_MINUTE = """
name = "heat-minute"
title = "One minute of heat"
kind = "heat"
area = "lower-back"

[heat]
minutes = 1
celsius = 40
"""

# Five minutes of massage over two areas: short gun sessions.
MASSAGE_MINI = """
name = "massage-mini"
title = "Massage, five minutes"
kind = "massage"
area = "lower-back"

[massage]
minutes = 5
speed = "medium"

[[massage.areas]]
name = "left-glute"
seconds = 60

[[massage.areas]]
name = "right-glute"
seconds = 60
"""

LIBRARY = ProfileLibrary(Path("/nonexistent-relieve-config"))
WORLD = ("contrast-pad", "massage-gun", "skin-probe")
ADDRESSES = {
    "contrast-pad": "C0:DE:00:00:00:01",
    "heat-pad": "C0:DE:00:00:00:02",
    "cold-pad": "C0:DE:00:00:00:03",
    "massage-gun": "C0:DE:00:00:00:04",
    "theragun": "C0:DE:00:00:00:05",
    "heating-mat": "C0:DE:00:00:00:06",
    "skin-probe": "C0:DE:00:00:00:07",
}
# The RAM disk, where the machine has one: see _ledger_parent.
RAM_DISK = Path("/dev/shm")  # noqa: S108 - only ever a parent for mkdtemp
# Real seconds a test waits for a device to let go at the end (the driver's own OFF bound is 5).
DISCONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Stamped:
    """An event (None: a moment a test marked) with the clock and real (perf_counter) time it
    happened at."""

    event: Event | None
    clock: float
    real: float


@dataclass(frozen=True)
class Seen:
    """One snapshot of a simulated device, with the real time it was taken at."""

    state: DeviceState
    real: float


Trigger = tuple[Callable[[Event], bool], Callable[[], object]]


@dataclass
class Bench:
    clock: VirtualClock
    radio: Radio
    ledger: Ledger
    devices: SessionDevices = field(default_factory=SessionDevices)
    events: list[Event] = field(default_factory=list)
    stamps: list[Stamped] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    _triggers: list[Trigger] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def world(self) -> SimWorld:
        assert self.radio.world is not None
        return self.radio.world

    async def bind(
        self,
        *,
        heat: str | None = None,
        cold: str | None = None,
        gun: str | None = None,
        probe: str | None = None,
        manual: Sequence[str] = (),
    ) -> SessionDevices:
        """Connect the simulated devices (catalog keys) to their roles; ``manual`` roles have
        no device (a passive pack, your own gun)."""
        opened: dict[str, AnyDevice] = {}
        for role, key in (("heat", heat), ("cold", cold), ("gun", gun), ("probe", probe)):
            if key is None:
                continue
            if key not in opened:
                opened[key] = await open_device(
                    ADDRESSES[key], backend=self.radio.backend, clock=self.clock
                )
                await opened[key].connect()
            self.devices.assign(role, opened[key])
        self.devices.manual = frozenset(manual)
        return self.devices

    def plan(self, name: str, *, extended: bool = False) -> Plan:
        """A built-in profile compiled for the bound devices."""
        return compile_plan(
            LIBRARY.get(name),
            self.devices.capabilities(),
            resolve=LIBRARY.get,
            extended=extended,
        )

    def plan_from(self, toml: str, *, extended: bool = False) -> Plan:
        """A profile written in the test (TOML text) compiled for the bound devices."""
        profile = parse_profile(toml, "test-profile.toml")
        return compile_plan(
            profile, self.devices.capabilities(), resolve=LIBRARY.get, extended=extended
        )

    def runner(self, plan: Plan, *, ask_resume: AskResume | None = None) -> SessionRunner:
        recorder = self.ledger.start_session(
            plan.name,
            plan.kind,
            started_at=self.ledger.now(),
            extended=plan.extended,
        )
        return SessionRunner(
            plan,
            self.devices,
            self.clock,
            emit=self._emit,
            recorder=recorder,
            simulated=True,
            ask_resume=ask_resume,
        )

    def _emit(self, event: Event) -> None:
        self.events.append(event)
        self.stamps.append(Stamped(event, self.clock.now(), time.perf_counter()))
        for trigger in list(self._triggers):
            predicate, action = trigger
            if predicate(event):
                self._triggers.remove(trigger)
                action()

    def when(self, predicate: Callable[[Event], bool], action: Callable[[], object]) -> None:
        """Do ``action`` once, right after the first event that ``predicate`` accepts (inside
        the runner's emit, so before the runner's next step)."""
        self._triggers.append((predicate, action))

    def later(
        self, predicate: Callable[[Event], bool], delay_s: float, action: Callable[[], object]
    ) -> list[Stamped]:
        """Do ``action`` ``delay_s`` clock seconds after the first event ``predicate`` accepts;
        the returned list gets the moment it was done."""
        done: list[Stamped] = []

        async def wait_then_act() -> None:
            await self.clock.sleep(delay_s)
            done.append(self.mark())
            action()

        def start() -> None:
            task = asyncio.ensure_future(wait_then_act())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self.when(predicate, start)
        return done

    def mark(self) -> Stamped:
        """This moment, in clock and real time."""
        return Stamped(None, self.clock.now(), time.perf_counter())

    def watch_world(self) -> None:
        """Record every snapshot the simulated devices publish from now on (at least one a
        clock second while watched)."""
        self.world.register_callback(
            lambda state: self.seen.append(Seen(state, time.perf_counter()))
        )

    def history(self, key: str) -> list[DeviceState]:
        """What device ``key`` reported of itself, in clock order."""
        return [s.state for s in self.seen if s.state.key == key]

    async def run(self, runner: SessionRunner) -> Finished:
        task = asyncio.ensure_future(runner.run())
        await self.clock.run(task)
        return task.result()

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def stamp_of(self, predicate: Callable[[Event], bool]) -> Stamped:
        """The first event ``predicate`` accepts, with its times."""
        return next(s for s in self.stamps if s.event is not None and predicate(s.event))

    def assert_off_within(self, key: str, after: Stamped, bound_s: float) -> None:
        """Device ``key`` went OFF for good (see :meth:`watch_world`) no later than ``bound_s``
        after the event ``after``, in real time and in clock time (so not by a lease running
        out, which takes clock seconds)."""
        history = [seen for seen in self.seen if seen.state.key == key]
        on = [i for i, seen in enumerate(history) if _driving(seen.state)]
        if not on:
            return  # never on while watched
        assert on[-1] + 1 < len(history), f"{key} never reported OFF after {after.event}"
        off = history[on[-1] + 1]
        assert off.real - after.real <= bound_s, f"OFF {off.real - after.real:.3f} s real later"
        assert off.state.time - after.clock <= bound_s, (
            f"OFF {off.state.time - after.clock:.3f} clock s later"
        )


def _driving(state: DeviceState) -> bool:
    return state.output_on or (state.plate_c is not None and state.energised)


def planned_phases(plan: Plan) -> list[tuple[str, float]]:
    """(mode, seconds) of every phase the ledger records (rests between holds are not)."""
    return [(p.mode, p.duration_s) for p in plan.phases if p.mode != "off"]


def recorded_phases(session: SessionRecord) -> list[tuple[str, float]]:
    """(mode, seconds) of every phase the ledger recorded for ``session``."""
    out: list[tuple[str, float]] = []
    for phase in session.phases:
        assert phase.ended_at is not None, f"phase {phase.id} was never closed"
        out.append((phase.mode, (phase.ended_at - phase.started_at).total_seconds()))
    return out


def assert_same_phases(
    recorded: list[tuple[str, float]], planned: list[tuple[str, float]], *, tolerance_s: float = 1.0
) -> None:
    """Same modes in the same order, each duration within ``tolerance_s``."""
    assert [m for m, _ in recorded] == [m for m, _ in planned]
    for (mode, got), (_, want) in zip(recorded, planned, strict=True):
        assert abs(got - want) <= tolerance_s, f"{mode}: {got} s recorded, {want} s planned"


def assert_off(world: SimWorld, key: str) -> None:
    """The simulated device itself says its output is OFF (and, for a pad, not energised)."""
    state = world.device(key).state
    assert not state.output_on, f"{key} reports its output ON: {state}"
    if state.plate_c is not None:  # a pad: nothing drives the plate either
        assert not state.energised, f"{key} still drives its plate: {state}"


def _ledger_parent(tmp_path: Path, stack: contextlib.ExitStack) -> Path:
    """Where a bench keeps its ledger: on the RAM disk when the machine has one.

    Every heartbeat (each 10 clock seconds) is a synchronous SQLite commit, about 1 ms on a
    disk, and a session in virtual time beats every few milliseconds of real time. These tests
    are about the engine, not the disk (the kill test keeps its ledger on disk).
    """
    try:
        return Path(stack.enter_context(tempfile.TemporaryDirectory(dir=RAM_DISK)))
    except OSError:
        return tmp_path


@contextlib.asynccontextmanager
async def bench(tmp_path: Path, devices: Sequence[str] = WORLD) -> AsyncIterator[Bench]:
    clock = VirtualClock()
    with contextlib.ExitStack() as stack:
        async with _open_bench(clock, _ledger_parent(tmp_path, stack), devices) as b:
            yield b


@contextlib.asynccontextmanager
async def _open_bench(
    clock: VirtualClock, parent: Path, devices: Sequence[str]
) -> AsyncIterator[Bench]:
    async with open_radio(simulate=True, clock=clock, devices=devices) as radio:
        ledger = Ledger.open(parent / "data", simulated=True)
        b = Bench(clock, radio, ledger)
        try:
            yield b
        finally:
            for device in b.devices.all_devices():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(device.disconnect(), DISCONNECT_TIMEOUT_S)
            ledger.close()


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """This process cannot grow a file beyond ``limit`` bytes: a full disk, for the ledger."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
