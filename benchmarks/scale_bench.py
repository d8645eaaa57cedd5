"""How many concurrent sessions one process (one event loop, one Bluetooth adapter) can drive.

For each N of ``--sessions`` (default 1, 8, 32), N SessionRunners run at once in one process and
one asyncio event loop, each on two simulated devices of its own: a heat pad (role ``heat``)
and a cold pad (role ``cold``). The 2N pads are on one bumble virtual radio and are reached
through the process's one simulated adapter, as one small computer with one Bluetooth radio
would reach the pads of N rooms. Each pad has an address of its own (the catalog gives every
kind one address, and ``SimWorld`` holds each kind once, so the script builds the pads itself,
with the catalog's heat-pad and cold-pad specifications under new addresses). Every session has
its own exposure ledger (one person per room), on the RAM disk when there is one.

Every session runs the same contrast profile (1 minute heat at 42 °C, 1 minute cold at 12 °C,
``--cycles`` cycles; X1 allows no shorter phase, and limits are refused, never clamped): the
heat pad pre-heats, the cold pad pre-cools during the heat phases. The script measures:

* **switch error**: for every instant where the plan changes what a pad does (the cold pad ON
  at time zero, the heat pad OFF and ON again at each phase change), the time from the planned
  instant (the session's time zero + the plan's offset) to the pad's own report of its new mode
  (the simulated device's state, as ``tests/session_harness.py``'s ``watch_world`` reads it),
  in real milliseconds, p50 / p99 / max over every switch of every session;
* **stop-all**: in the middle of the last heat phase (both pads ON in every room) every session
  is stopped in the same loop turn, the way the session service and the node daemon stop one
  (``SessionRunner.stop``); the time until each pad reports its output OFF (p50 / p99 / max
  per pad) and until the last one does (the total);
* **CPU**: ``time.process_time`` of the whole process (every thread: the ledgers' writers too)
  from the start of the sessions to the end of the stop, per session per minute of therapy
  (clock) time, and as the share of one core it kept busy;
* **peak RSS** (sampled from /proc), **event-loop lag** (a ticker task sleeping 10 ms at a
  time, and how late it woke) and the garbage collector's **full collections** (how many, and
  how long each held the loop).

By default every session starts in the same loop turn, so their switches fall within a few
milliseconds of each other: the worst case for the switch error (``--stagger-ms`` spreads the
starts). The simulated pads, their radio and bumble's stacks run in the same process and on the
same loop as the controller, so the CPU and the lag figures include the devices' work, which a
real deployment does not pay (``--profile`` splits the loop's CPU time by layer). Each room's
pads go on the air only when they are connected: the simulated radio delivers every
advertisement to every controller on the link, so 2N pads advertising together would cost the
process O(N^2) (a real radio costs the computer nothing for them).

    python benchmarks/scale_bench.py                      # N = 1, 8, 32 at x4 (about 2.5 min)
    python benchmarks/scale_bench.py --clock real         # at x1 (about 10 min)
    python benchmarks/scale_bench.py --sessions 64,128 --json
    python benchmarks/scale_bench.py --stagger-ms 50      # starts (and switches) 50 ms apart
    python benchmarks/scale_bench.py --gc-freeze          # full collections skip the set-up
    python benchmarks/scale_bench.py --sessions 32 --profile   # where the loop's time goes

``--clock scaled`` (the default, ``--speed 4``) runs therapy time four times faster: a device
ticks, a lease is renewed, a heartbeat written four times as often per real second, so the
load per real second is about that of 4N sessions in real time; the switch error and the
stop-all latency are real milliseconds either way. ``--clock real`` measures at x1. Other
options: ``--cycles`` (1-3), ``--link-latency-ms`` (7.5 models the BLE connection interval),
``--no-ledger``, ``--ledger-dir``, ``--off-bound-ms``.

Target (issue 14): switch error p99 within 5 ms; every output OFF after a stop-all within the
runner's own bound (``OFF_TIMEOUT_S``, 1 s). The exit status is 1 only for a safety failure
(an output not reported OFF within that bound after the stop-all, not OFF at the end, or a
session that ended without confirming its devices OFF), never for a scaling figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import json
import logging
import math
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.bindings import SessionDevices
from controller.session.events import Event, Finished, StateChanged
from controller.session.runner import OFF_TIMEOUT_S, SessionRunner
from drivers.core.backend import BleBackend
from drivers.core.clock import Clock, MonotonicClock, ScaledClock
from drivers.core.factory import AnyDevice, open_device
from profiles.compiler import compile_plan
from profiles.parse import parse_profile
from profiles.plan import Plan
from simulators import backend as sim
from simulators.catalog import spec_for
from simulators.devices.open_thermal import OpenThermalPad
from simulators.devices.state import DeviceState
from simulators.radio import DelayedLink

DEFAULT_SESSIONS = (1, 8, 32)
DEFAULT_SPEED = 4.0  # --clock scaled: clock seconds per real second
DEFAULT_CYCLES = 2
SWITCH_TARGET_MS = 5.0  # issue 14: switch error p99 within this
LAG_TARGET_MS = 5.0  # the loop should keep up as well as the switches must
BUSY_CORE_SHARE = 0.8  # beyond this share of one core the loop has no headroom left
TICKER_S = 0.010  # the lag ticker's sleep (real seconds)
RSS_EVERY_TICKS = 20  # sample the RSS every this many ticks
CONNECT_TIMEOUT_S = 10.0  # real seconds to find and connect one pad
DISCONNECT_TIMEOUT_S = 3.0  # real seconds per pad when letting go at the end
PAD_STOP_TIMEOUT_S = 3.0  # real seconds for a simulated pad to go off the air
START_TIMEOUT_S = 300.0  # real seconds for every session to reach time zero (pre-heat)
MAX_SPREAD_S = 20.0  # clock seconds the staggered starts may spread over (half a phase is 30)
LOG_KEPT = 5  # log messages kept (the first ones) per N in the results

ROLES: tuple[tuple[str, str], ...] = (("heat", "heat-pad"), ("cold", "cold-pad"))
LIBRARY = ProfileLibrary(Path("/nonexistent-relieve-config"))  # built-in profiles only
RAM_DISK = Path("/dev/shm")  # noqa: S108 - only ever a parent for mkdtemp

ClockKind = Literal["real", "scaled"]


def contrast_profile(cycles: int) -> str:
    """The sessions' profile: the shortest contrast X1 allows, ``cycles`` times."""
    return f"""
name = "scale-contrast"
title = "Contrast, one-minute phases (scale benchmark)"
kind = "contrast"
area = "lower-back"

[contrast]
heat_minutes = 1
cold_minutes = 1
cycles = {cycles}
heat_celsius = 42
cold_celsius = 12
"""


# --- pure helpers -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating linearly between the closest ranks."""
    if not values:
        raise ValueError("no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"a percentile is 0-100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """count, p50, p99 and max of durations in seconds, as milliseconds (None when empty)."""
    if not seconds:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {
        "count": len(seconds),
        "p50": round(percentile(seconds, 50) * 1000, 3),
        "p99": round(percentile(seconds, 99) * 1000, 3),
        "max": round(max(seconds) * 1000, 3),
    }


_STEP_MODES = {"preheat": "heat", "heat": "heat", "precool": "cold", "cold": "cold"}
_INSTANT_S = 1e-6  # plan offsets closer than this are the same instant


@dataclass(frozen=True)
class Switch:
    """A planned change of what the pad of ``role`` does, ``at`` seconds of therapy time."""

    role: str
    at: float
    mode: str  # "heat", "cold" or "off": what the pad reports from then on


def planned_switches(plan: Plan, until_s: float) -> list[Switch]:
    """Every instant in [0, until_s) where the plan changes the mode of a role's output.

    A role's output is in a step's mode (pre-heat counts as heat, pre-cool as cold) from the
    step's start to its end, and OFF outside its steps; where one step follows another of the
    same mode without a gap nothing changes (the runner does not switch the output OFF between
    them).
    """
    switches: list[Switch] = []
    for role in ("heat", "cold"):
        spans = [
            (step.start_s, step.end_s, _STEP_MODES[step.action])
            for step in plan.steps
            if step.role == role and step.action in _STEP_MODES
        ]

        def mode_at(t: float, spans: list[tuple[float, float, str]] = spans) -> str:
            return next((mode for start, end, mode in spans if start <= t < end), "off")

        edges = sorted({t for start, end, _ in spans for t in (start, end)})
        switches.extend(
            Switch(role, at, mode_at(at))
            for at in edges
            if 0.0 <= at < until_s and mode_at(at) != mode_at(at - _INSTANT_S)
        )
    return sorted(switches, key=lambda s: (s.at, s.role))


@dataclass(frozen=True)
class Report:
    """What a pad said of itself: its mode ("off" when its output is off) at clock ``time``."""

    time: float
    mode: str


def observed_mode(state: DeviceState) -> str:
    """A pad's mode as a switch is judged: its reported mode, "off" only when it reports its
    output OFF *and* nothing drives the plate ("driven" when it claims OFF but still drives)."""
    if state.output_on:
        return state.mode
    return "driven" if state.energised else "off"


def first_report(reports: Sequence[Report], since: float, mode: str) -> Report | None:
    """The first report of ``mode`` at or after clock time ``since``."""
    return next((r for r in reports if r.time >= since and r.mode == mode), None)


def knee(
    results: Sequence[Mapping[str, Any]],
    *,
    switch_target_ms: float = SWITCH_TARGET_MS,
    lag_target_ms: float = LAG_TARGET_MS,
    busy_share: float = BUSY_CORE_SHARE,
) -> dict[str, Any]:
    """Where scaling stops: the smallest N (of those run) that misses a figure, and why.

    A run misses when its switch error p99 is over ``switch_target_ms``, its event-loop lag p99
    over ``lag_target_ms``, it kept more than ``busy_share`` of one core busy (one event loop
    runs on one core), a switch was never reported, or a session ended before the stop-all.
    """
    for result in sorted(results, key=lambda r: int(r["sessions"])):
        why: list[str] = []
        p99 = result["switch_error_ms"]["p99"]
        if p99 is not None and p99 > switch_target_ms:
            why.append(f"switch error p99 {p99:g} ms > {switch_target_ms:g} ms")
        lag = result["loop_lag_ms"]["p99"]
        if lag is not None and lag > lag_target_ms:
            why.append(f"event-loop lag p99 {lag:g} ms > {lag_target_ms:g} ms")
        share = result["cpu"]["core_share"]
        if share is not None and share > busy_share:
            why.append(f"{share:.0%} of one core busy (> {busy_share:.0%})")
        if result["switches_missed"]:
            why.append(f"{result['switches_missed']} switch(es) never reported")
        early = int(result["sessions"]) - int(result["outcomes"].get("stopped", 0))
        if early:
            why.append(f"{early} session(s) ended before the stop-all")
        if why:
            return {"sessions": int(result["sessions"]), "why": why}
    return {"sessions": None, "why": []}


# --- one N --------------------------------------------------------------------------------------


@dataclass
class Room:
    """One session: its pads (simulated and driven), its runner, what its pads reported."""

    index: int
    pads: dict[str, OpenThermalPad]  # role -> simulated pad
    devices: SessionDevices = field(default_factory=SessionDevices)
    ledger: Ledger | None = None
    runner: SessionRunner | None = None
    task: asyncio.Task[Finished] | None = None
    t0: float | None = None  # clock time of therapy zero
    reports: dict[str, list[Report]] = field(default_factory=dict)  # role -> mode changes
    # events by type, counted, not kept: a front end forwards them and lets them go (keeping
    # every telemetry event would grow the heap the garbage collector walks)
    event_counts: dict[str, int] = field(default_factory=dict)

    def watch(self) -> None:
        """Record every change of mode each pad reports (``watch_world``, changes only)."""
        for role, pad in self.pads.items():
            reports: list[Report] = []
            self.reports[role] = reports

            def seen(state: DeviceState, reports: list[Report] = reports) -> None:
                mode = observed_mode(state)
                if not reports or reports[-1].mode != mode:
                    reports.append(Report(state.time, mode))

            pad.register_callback(seen)

    def emit(self, event: Event) -> None:
        self.event_counts[event.type] = self.event_counts.get(event.type, 0) + 1
        if isinstance(event, StateChanged) and event.state == "running" and self.t0 is None:
            runner = self.runner
            if runner is not None:
                self.t0 = runner.clock.now() - runner.session_time()


def _address(index: int, key: str) -> str:
    """A static random address of room ``index``'s pad ``key`` (apart from the catalog's)."""
    suffix = spec_for(key).address[-2:]
    return f"C0:DE:10:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}:{suffix}"


class LogCounter(logging.Handler):
    """Counts warnings and errors logged while a run goes (by level, and by the part of the run:
    setting up, the sessions, letting go), and keeps the first few."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.part = "set-up"
        self.counts: dict[str, int] = {}
        self.parts: dict[str, int] = {}
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1
        self.parts[self.part] = self.parts.get(self.part, 0) + 1
        if len(self.first) < LOG_KEPT:
            message = record.getMessage().splitlines()[0]
            if record.exc_info and (exc := record.exc_info[1]) is not None:
                message += f" [{type(exc).__name__}: {exc}]"
            self.first.append(f"({self.part}) {record.levelname} {record.name}: {message}")


@contextlib.contextmanager
def counting_logs() -> Iterator[LogCounter]:
    counter = LogCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    try:
        yield counter
    finally:
        root.removeHandler(counter)


def rss_bytes() -> int:
    """The resident set size now (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


class GcWatch:
    """Times the garbage collector's full (generation 2) collections while it is on."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.young = 0  # generation 0 and 1 collections
        self._started: float | None = None
        self._on = False

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def start(self) -> None:
        self._on = True

    def stop(self) -> None:
        self._on = False

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if not self._on:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            if info.get("generation") == 2:
                self.pauses.append(time.perf_counter() - self._started)
            else:
                self.young += 1
            self._started = None


class Ticker:
    """An asyncio task that sleeps :data:`TICKER_S` at a time and records how late it woke."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.rss_peak = rss_bytes()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            due = loop.time() + TICKER_S
            await asyncio.sleep(TICKER_S)
            self.lags.append(max(0.0, loop.time() - due))
            ticks += 1
            if ticks % RSS_EVERY_TICKS == 0:
                self.rss_peak = max(self.rss_peak, rss_bytes())


def make_clock(kind: ClockKind, speed: float) -> Clock:
    return MonotonicClock() if kind == "real" else ScaledClock(speed)


def _stop_offset(plan: Plan) -> float:
    """Therapy seconds of the stop-all: the middle of the last heat phase."""
    heats = [p for p in plan.phases if p.mode == "heat"]
    last = heats[-1]
    return last.start_s + last.duration_s / 2


async def _connect(room: Room, backend: BleBackend, clock: Clock, link: DelayedLink) -> None:
    """Put the room's pads on the air, and connect them.

    The pads go on the air only now, just before they are connected: the simulated radio hands
    every advertisement to every controller on the link, so 2N pads advertising at once would
    cost the process O(N^2) (128 of them keep a core busy on their own, and a connection times
    out), which a real radio does not cost the computer. A connected pad no longer advertises.
    """
    await asyncio.gather(*(pad.start(link) for pad in room.pads.values()))
    for role, pad in room.pads.items():
        device: AnyDevice = await asyncio.wait_for(
            open_device(pad.address, backend=backend, clock=clock), CONNECT_TIMEOUT_S
        )
        # in the room's devices at once, so it is let go of even when the next one fails
        if not room.devices.assign(role, device):
            raise RuntimeError(f"{pad.address} cannot take the {role} role")
        await asyncio.wait_for(device.connect(), CONNECT_TIMEOUT_S)


async def _release(rooms: Sequence[Room], pads: Sequence[OpenThermalPad]) -> None:
    """Let go of every driver, take every pad off the air, close every ledger."""

    async def let_go(device: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(device.disconnect(), DISCONNECT_TIMEOUT_S)

    await asyncio.gather(*(let_go(d) for room in rooms for d in room.devices.all_devices()))

    async def off_air(pad: OpenThermalPad) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pad.stop(), PAD_STOP_TIMEOUT_S)

    await asyncio.gather(*(off_air(pad) for pad in pads))
    for room in rooms:
        if room.ledger is not None:
            room.ledger.close()
    await sim.reset()


@dataclass(frozen=True)
class Options:
    clock: ClockKind = "scaled"
    speed: float = DEFAULT_SPEED
    cycles: int = DEFAULT_CYCLES
    link_latency_s: float = 0.0
    off_bound_s: float = OFF_TIMEOUT_S
    ledger_parent: Path | None = None
    ledger: bool = True
    profile: bool = False
    gc_freeze: bool = False
    stagger_s: float = 0.0  # real seconds between one session's start and the next


@dataclass
class Window:
    """What was measured from the sessions' start to the end of the stop-all."""

    stop_clock: float = 0.0  # clock time of the stop-all
    finished: list[Finished | BaseException] = field(default_factory=list)
    final: dict[str, DeviceState] = field(default_factory=dict)  # address -> state at the end
    cpu_s: float = 0.0
    wall_s: float = 0.0
    clock_s: float = 0.0
    tracked_objects: int = 0


async def _set_up(
    rooms: Sequence[Room], clock: Clock, link: DelayedLink, options: Options, data_dir: Path
) -> Plan:
    """Connect every room's pads, compile the plan, and give each room its ledger and runner."""
    backend = BleBackend(
        client=sim.SimClient,
        scanner=sim.SimScanner,
        name="simulated",
        find_timeout_s=CONNECT_TIMEOUT_S,
    )
    for room in rooms:  # one adapter: it makes its connections one at a time anyway
        await _connect(room, backend, clock, link)
    plan = compile_plan(
        parse_profile(contrast_profile(options.cycles), "scale-contrast.toml"),
        rooms[0].devices.capabilities(),
        resolve=LIBRARY.get,
    )
    for room in rooms:
        recorder = None
        if options.ledger:
            room.ledger = Ledger.open(data_dir / f"room{room.index}", simulated=True)
            recorder = room.ledger.start_session(plan.name, plan.kind, started_at=room.ledger.now())
        room.runner = SessionRunner(
            plan, room.devices, clock, emit=room.emit, recorder=recorder, simulated=True
        )
        room.watch()
    return plan


async def _sessions(
    rooms: Sequence[Room], clock: Clock, options: Options, stop_at: float
) -> Window:
    """Start every session, stop them all at ``stop_at`` seconds of therapy time (counted from
    the last session's time zero), wait until each has ended."""
    window = Window()
    cpu_start, wall_start, clock_start = time.process_time(), time.perf_counter(), clock.now()
    tasks: list[asyncio.Task[Finished]] = []
    for room in rooms:
        if options.stagger_s and tasks:
            await asyncio.sleep(options.stagger_s)
        if room.runner is not None:
            room.task = asyncio.ensure_future(room.runner.run())
            tasks.append(room.task)
    try:
        # every session at time zero (or over already), then the stop-all in the last heat phase
        while any(r.t0 is None and r.task is not None and not r.task.done() for r in rooms):
            if time.perf_counter() - wall_start > START_TIMEOUT_S:
                raise RuntimeError("the sessions did not reach time zero in time")
            await asyncio.sleep(0.01)
        zeros = [r.t0 for r in rooms if r.t0 is not None]
        await clock.sleep_until((max(zeros) if zeros else clock.now()) + stop_at)
    finally:  # also when the benchmark itself fails: no session is left running
        window.stop_clock = clock.now()
        for room in rooms:
            if room.runner is not None:
                room.runner.stop("stop-all (scale benchmark)")
        window.finished = list(await asyncio.gather(*tasks, return_exceptions=True))
    window.cpu_s = time.process_time() - cpu_start
    window.wall_s = time.perf_counter() - wall_start
    window.clock_s = clock.now() - clock_start
    return window


async def run_n(sessions: int, options: Options, data_dir: Path) -> dict[str, Any]:
    """Run ``sessions`` sessions at once; their figures."""
    gc.collect()
    rss_before = rss_bytes()
    clock = make_clock(options.clock, options.speed)
    link = DelayedLink(options.link_latency_s)
    rooms = [
        Room(
            i,
            {
                role: OpenThermalPad(
                    dataclasses.replace(spec_for(key), address=_address(i, key)), clock=clock
                )
                for role, key in ROLES
            },
        )
        for i in range(sessions)
    ]
    pads = [pad for room in rooms for pad in room.pads.values()]
    ticker = Ticker()
    profiler = cProfile.Profile() if options.profile else None
    with counting_logs() as logs, GcWatch() as collections:
        try:
            setup_start = time.perf_counter()
            sim.use_link(link)
            plan = await _set_up(rooms, clock, link, options, data_dir)
            stop_at = _stop_offset(plan)
            setup_s = time.perf_counter() - setup_start
            if options.gc_freeze:
                gc.collect()
                gc.freeze()  # what exists now is never examined by a collection again
            logs.part = "sessions"
            collections.start()
            ticker.start()
            if profiler is not None:
                profiler.enable()
            window = await _sessions(rooms, clock, options, stop_at)
            if profiler is not None:
                profiler.disable()
            collections.stop()
            await ticker.stop()
            window.final = {pad.address: pad.state for pad in pads}
            window.tracked_objects = len(gc.get_objects())
        finally:
            collections.stop()
            await ticker.stop()
            logs.part = "let go"
            await _release(rooms, pads)
            if options.gc_freeze:
                gc.unfreeze()

    switches = planned_switches(plan, stop_at)
    errors, missed = switch_errors(rooms, switches, window.stop_clock, clock.speed)
    offs, already_off, failures = stop_all_latencies(
        rooms, window.stop_clock, clock.speed, options.off_bound_s
    )
    failures += [
        f"{address} still ON at the end: {observed_mode(state)}"
        for address, state in window.final.items()
        if state.output_on or state.energised
    ]
    outcomes, reasons, devices_off = _outcomes(rooms, window.finished, failures)
    therapy_minutes = sessions * window.clock_s / 60.0
    out: dict[str, Any] = {
        "sessions": sessions,
        "devices": 2 * sessions,
        "setup_s": round(setup_s, 3),
        "wall_s": round(window.wall_s, 3),
        "clock_s": round(window.clock_s, 3),
        "time_zero_spread_ms": _spread_ms([r.t0 for r in rooms if r.t0 is not None], clock.speed),
        "switches_planned": len(switches) * sessions,
        "switches_missed": missed,
        "switch_error_ms": summary_ms([e for _, e in errors]),
        # an ON waits for its phase's record to be on disk first (S3); an OFF does not
        "switch_error_ms_by_kind": {
            "on": summary_ms([e for s, e in errors if s.mode != "off"]),
            "off": summary_ms([e for s, e in errors if s.mode == "off"]),
        },
        "stop_all_ms": {
            "per_device": summary_ms(offs),
            "total": round(max(offs) * 1000, 3) if offs else None,
            "already_off": already_off,
            "bound": round(options.off_bound_s * 1000, 3),
        },
        "cpu": {
            "seconds": round(window.cpu_s, 3),
            "per_session_per_therapy_minute_s": round(window.cpu_s / therapy_minutes, 4)
            if therapy_minutes > 0
            else None,
            "core_share": round(window.cpu_s / window.wall_s, 3) if window.wall_s > 0 else None,
        },
        "rss_mib": {
            "before": round(rss_before / 2**20, 1),
            "peak": round(ticker.rss_peak / 2**20, 1),
            "per_session": round((ticker.rss_peak - rss_before) / 2**20 / sessions, 2),
        },
        "loop_lag_ms": summary_ms(ticker.lags),
        "gc": {
            "full_collections": len(collections.pauses),
            "full_pause_ms": summary_ms(collections.pauses),
            "young_collections": collections.young,
            "tracked_objects": window.tracked_objects,
        },
        "outcomes": outcomes,
        "events": _merged(room.event_counts for room in rooms),
        "reasons": reasons,
        "devices_off": devices_off,
        "safety_failures": failures,
        "log": {"counts": logs.counts, "parts": logs.parts, "first": logs.first},
    }
    if profiler is not None:
        out["cpu_by_layer"] = cpu_by_layer(profiler)
    return out


def switch_errors(
    rooms: Sequence[Room], switches: Sequence[Switch], stop_clock: float, speed: float
) -> tuple[list[tuple[Switch, float]], int]:
    """Each switch seen, with the real seconds from its planned instant to its pad's report;
    how many were never seen."""
    errors: list[tuple[Switch, float]] = []
    missed = 0
    for room in rooms:
        for switch in switches:
            if room.t0 is None:
                missed += 1
                continue
            at = room.t0 + switch.at
            seen = first_report(room.reports[switch.role], at, switch.mode)
            if seen is None or seen.time > stop_clock:
                missed += 1
            else:
                errors.append((switch, (seen.time - at) / speed))
    return errors, missed


def stop_all_latencies(
    rooms: Sequence[Room], stop_clock: float, speed: float, bound_s: float
) -> tuple[list[float], int, list[str]]:
    """Real seconds from the stop-all to each pad's report of OFF, the pads that were OFF
    already, and the safety failures (a pad never OFF, or OFF later than ``bound_s``)."""
    offs: list[float] = []
    already_off = 0
    failures: list[str] = []
    for room in rooms:
        for role, reports in room.reports.items():
            before = [r for r in reports if r.time < stop_clock]
            if before and before[-1].mode == "off":
                already_off += 1
                continue
            off = first_report(reports, stop_clock, "off")
            if off is None:
                failures.append(f"room {room.index}: the {role} pad never reported OFF")
                continue
            latency = (off.time - stop_clock) / speed
            offs.append(latency)
            if latency > bound_s:
                failures.append(
                    f"room {room.index}: the {role} pad reported OFF {latency * 1000:.0f} ms "
                    f"after the stop-all (bound {bound_s * 1000:.0f} ms)"
                )
    return offs, already_off, failures


def _outcomes(
    rooms: Sequence[Room], finished: Sequence[Finished | BaseException], failures: list[str]
) -> tuple[dict[str, int], list[str], bool]:
    """Outcome counts, the reasons given, whether every session confirmed its devices OFF (a
    session that did not is added to ``failures``)."""
    outcomes: dict[str, int] = {}
    reasons: set[str] = set()
    devices_off = True
    for room, result in zip(rooms, finished, strict=True):
        if isinstance(result, BaseException):
            outcomes["error"] = outcomes.get("error", 0) + 1
            reasons.add(f"{type(result).__name__}: {result}")
            failures.append(f"room {room.index}: the session raised {type(result).__name__}")
            devices_off = False
            continue
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.reason:
            reasons.add(result.reason)
        if not result.devices_off:
            devices_off = False
            failures.append(f"room {room.index}: the session did not confirm its devices OFF")
    return outcomes, sorted(reasons), devices_off


def _spread_ms(times: Sequence[float], speed: float) -> float | None:
    """Real milliseconds between the first and the last of clock ``times``."""
    return round((max(times) - min(times)) / speed * 1000, 3) if times else None


def _merged(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for one in counts:
        for key, value in one.items():
            out[key] = out.get(key, 0) + value
    return dict(sorted(out.items()))


# --- where the CPU goes (--profile) -------------------------------------------------------------

_ROOT = Path(__file__).resolve().parent.parent.as_posix() + "/"
# (where, layer): a path inside the project by its prefix, any other path by a part of it
PROJECT_LAYERS: tuple[tuple[str, str], ...] = (
    ("controller/", "relieve: session (runner, supervisor, ledger)"),
    ("drivers/", "relieve: drivers and codecs"),
    ("simulators/backend/", "central: simulated bleak backend"),
    ("simulators/devices/", "simulated devices (firmware, GATT)"),
    ("simulators/", "simulated devices (radio, physics)"),
    ("benchmarks/", "this benchmark (watchers, ticker)"),
)
LIBRARY_LAYERS: tuple[tuple[str, str], ...] = (
    ("/bumble/", "bumble (hosts, controllers, ATT/GATT of both sides)"),
    ("/bleak/", "bleak"),
    ("/asyncio/", "asyncio event loop"),
)
OTHER_LAYER = "other (standard library, other packages)"
IDLE = "<method 'poll' of 'select.epoll' objects>"  # the loop waiting: not work


def layer_of(filename: str) -> str | None:
    """The layer of a function's file; None for a built-in (its time is its caller's)."""
    if filename == "~" or filename.startswith("<"):
        return None
    path = Path(filename).as_posix()
    if "/site-packages/" not in path and path.startswith(_ROOT):
        inside = path[len(_ROOT) :]
        return next((name for prefix, name in PROJECT_LAYERS if inside.startswith(prefix)), None)
    return next((name for part, name in LIBRARY_LAYERS if part in path), OTHER_LAYER)


def cpu_by_layer(profiler: cProfile.Profile) -> dict[str, float]:
    """Share of the event loop's busy time spent in each layer's own code (cProfile's own
    time; a built-in's time goes to the layer of the function that called it; the loop's
    wait for I/O and timers is left out)."""
    # ``stats`` holds pstats' raw table; typeshed does not declare the attribute
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}

    def add(layer: str | None, seconds: float) -> None:
        key = layer or OTHER_LAYER
        totals[key] = totals.get(key, 0.0) + seconds

    for (filename, _line, name), (_cc, _nc, own_s, _cum, callers) in raw.items():
        if name == IDLE:
            continue
        layer = layer_of(filename)
        if layer is not None or not callers:
            add(layer, own_s)
            continue
        for (caller_file, _l, _n), (_c, _n2, caller_own_s, _ct) in callers.items():
            add(layer_of(caller_file), caller_own_s)
    whole = sum(totals.values()) or 1.0
    return {k: round(v / whole, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


# --- the whole run ------------------------------------------------------------------------------


def default_ledger_parent() -> Path | None:
    """The RAM disk when it is a writable directory, else None (the system's temp directory)."""
    try:
        with tempfile.TemporaryDirectory(dir=RAM_DISK):
            return RAM_DISK
    except OSError:
        return None


async def run_all(counts: Sequence[int], options: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(
        prefix="relieve-scale-bench-", dir=options.ledger_parent
    ) as directory:
        # one after the other: each N has the process to itself
        results = [await run_n(n, options, Path(directory) / f"n{n}") for n in counts]
    failures = [f"N={r['sessions']}: {f}" for r in results for f in r["safety_failures"]]
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpus": os.cpu_count(),
        "clock": options.clock,
        "speed": 1.0 if options.clock == "real" else options.speed,
        "cycles": options.cycles,
        "gc_freeze": options.gc_freeze,
        "stagger_ms": round(options.stagger_s * 1000, 3),
        "link_latency_ms": round(options.link_latency_s * 1000, 3),
        "ledger": str(options.ledger_parent or tempfile.gettempdir()) if options.ledger else None,
        "targets": {
            "switch_error_p99_ms": SWITCH_TARGET_MS,
            "loop_lag_p99_ms": LAG_TARGET_MS,
            "core_share": BUSY_CORE_SHARE,
            "off_after_stop_all_ms": round(options.off_bound_s * 1000, 3),
        },
        "results": results,
        "knee": knee(results),
        "safety_failures": failures,
        "ok": not failures,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(report: Mapping[str, Any]) -> str:
    lines = [
        f"{report['clock']} clock x{report['speed']:g}, {report['cycles']} cycle(s) of 1+1 min "
        f"contrast, stop-all mid-heat; {report['python']}, {report['cpus']} CPUs; "
        f"ledgers: {report['ledger'] or 'none'}"
        + ("; gc.freeze() after set-up" if report["gc_freeze"] else "")
        + (f"; starts {report['stagger_ms']:g} ms apart" if report["stagger_ms"] else ""),
        "",
        f"{'N':>4}{'switch ms p50/p99/max':>24}{'miss':>6}{'stop-all ms p50/p99/max':>26}"
        f"{'total':>8}{'CPU s/sess/min':>16}{'core':>7}{'lag ms p50/p99/max':>22}"
        f"{'RSS MiB':>9}{'/sess':>7}{'full GC n/max ms':>18}  outcomes",
    ]
    for r in report["results"]:
        sw, off, lag = r["switch_error_ms"], r["stop_all_ms"]["per_device"], r["loop_lag_ms"]
        cpu = r["cpu"]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        lines.append(
            f"{r['sessions']:>4}"
            f"{_ms(sw['p50']) + '/' + _ms(sw['p99']) + '/' + _ms(sw['max']):>24}"
            f"{r['switches_missed']:>6}"
            f"{_ms(off['p50']) + '/' + _ms(off['p99']) + '/' + _ms(off['max']):>26}"
            f"{_ms(r['stop_all_ms']['total']):>8}"
            f"{cpu['per_session_per_therapy_minute_s'] or 0:>16.3f}"
            f"{cpu['core_share'] or 0:>7.2f}"
            f"{_ms(lag['p50']) + '/' + _ms(lag['p99']) + '/' + _ms(lag['max']):>22}"
            f"{r['rss_mib']['peak']:>9.1f}{r['rss_mib']['per_session']:>7.2f}"
            f"{str(r['gc']['full_collections']) + '/' + _ms(r['gc']['full_pause_ms']['max']):>18}"
            f"  {outcomes}"
        )
        if r["reasons"] and set(r["outcomes"]) != {"stopped"}:
            lines.append(f"      reasons: {'; '.join(r['reasons'])}")
        if r["log"]["counts"]:
            counts = ", ".join(f"{v} {k.lower()}" for k, v in r["log"]["counts"].items())
            parts = ", ".join(f"{v} in {k}" for k, v in r["log"]["parts"].items())
            lines.append(f"      log: {counts} ({parts}); first: {r['log']['first'][0]}")
        if "cpu_by_layer" in r:
            lines.append("      CPU by layer (own time, cProfile):")
            lines.extend(
                f"        {share:>6.1%}  {name}" for name, share in r["cpu_by_layer"].items()
            )
    targets = report["targets"]
    lines.append("")
    lines.append(
        f"Targets: switch error p99 <= {targets['switch_error_p99_ms']:g} ms; every output OFF "
        f"within {targets['off_after_stop_all_ms']:g} ms of the stop-all (safety: exit 1)."
    )
    k = report["knee"]
    if k["sessions"] is None:
        lines.append("Scaling: every N run met the figures.")
    else:
        lines.append(f"Scaling stops at N={k['sessions']}: {'; '.join(k['why'])}.")
    if report["safety_failures"]:
        lines.append("SAFETY FAILURES:")
        lines.extend(f"  {f}" for f in report["safety_failures"])
    return "\n".join(lines)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers like 1,8,32") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError("each session count must be at least 1")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sessions",
        type=_counts,
        default=list(DEFAULT_SESSIONS),
        help="session counts to run, one after the other (default 1,8,32)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--clock",
        choices=("real", "scaled"),
        default="scaled",
        help="real time, or therapy time --speed times faster (default scaled)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"clock seconds per real second with --clock scaled (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--cycles",
        type=int,
        default=DEFAULT_CYCLES,
        help=f"contrast cycles of 1+1 minutes, 1-3 (default {DEFAULT_CYCLES})",
    )
    parser.add_argument(
        "--link-latency-ms",
        type=float,
        default=0.0,
        help="per-packet radio latency (7.5 = the BLE minimum connection interval; default 0)",
    )
    parser.add_argument(
        "--off-bound-ms",
        type=float,
        default=OFF_TIMEOUT_S * 1000,
        help=f"safety bound for OFF after the stop-all (default {OFF_TIMEOUT_S * 1000:g})",
    )
    parser.add_argument("--no-ledger", action="store_true", help="run the sessions unrecorded")
    parser.add_argument(
        "--ledger-dir",
        type=Path,
        help="where the ledgers go (default: /dev/shm when there is one)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also split the CPU time by layer with cProfile (slows everything down)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the sessions are set up (full collections skip what exists then)",
    )
    parser.add_argument(
        "--stagger-ms",
        type=float,
        default=0.0,
        help="real ms between one session's start and the next (default 0: every session "
        "switches in the same instant, the worst case)",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.cycles <= 3):
        parser.error("--cycles must be 1-3 (X1: at most 3 contrast cycles)")
    if not (args.speed > 0 and math.isfinite(args.speed)):
        parser.error("--speed must be a positive number")
    if args.link_latency_ms < 0 or args.off_bound_ms <= 0:
        parser.error("--link-latency-ms must be >= 0 and --off-bound-ms > 0")
    speed = 1.0 if args.clock == "real" else args.speed
    spread_s = (max(args.sessions) - 1) * args.stagger_ms / 1000 * speed
    if args.stagger_ms < 0 or spread_s > MAX_SPREAD_S:
        parser.error(
            f"--stagger-ms must be >= 0 and spread the starts over at most {MAX_SPREAD_S:g} "
            "clock seconds (the stop-all must find every session in its last heat phase)"
        )
    if args.ledger_dir is not None and not args.ledger_dir.is_dir():
        parser.error(f"--ledger-dir {args.ledger_dir} is not a directory")
    options = Options(
        clock=args.clock,
        speed=args.speed,
        cycles=args.cycles,
        link_latency_s=args.link_latency_ms / 1000,
        off_bound_s=args.off_bound_ms / 1000,
        ledger_parent=args.ledger_dir if args.ledger_dir is not None else default_ledger_parent(),
        ledger=not args.no_ledger,
        profile=args.profile,
        gc_freeze=args.gc_freeze,
        stagger_s=args.stagger_ms / 1000,
    )
    report = asyncio.run(run_all(args.sessions, options))
    sys.stdout.write((json.dumps(report, indent=2) if args.json else table(report)) + "\n")
    if not report["ok"]:
        sys.stderr.write("scale_bench: an output was not OFF in time after the stop-all\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
