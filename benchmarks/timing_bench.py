"""Timing and stop of real-time sessions against a real `relieve sim serve` (issue 14, section 4).

Everything runs at x1 real time. The simulated devices live in `relieve sim serve --socket PATH
--events-json` processes started by the benchmark, and the figures come from what the devices
*themselves* report on that event stream, not from what relieve believes.

Clock alignment. The server stamps each event line with ``t``: seconds on its own clock
(``MonotonicClock``, CLOCK_BOOTTIME) since it started, rounded to the millisecond. The benchmark
and every relieve process read the same system clock (``drivers.core.clock.real_seconds``), so
the only unknown is the instant the server started. A reader thread stamps every line on
receipt; no line is received before the instant it reports, so ``start <= receipt - t`` for
every line, and the smallest ``receipt - t`` over all of a server's lines is taken as its start.
A device event then happened at ``start + t``, to about 1 ms (the rounding of ``t``, and the
quickest delivery through the pipe). The pipe's own delay (receipt minus that instant) is
printed beside the figures and is not in them.

Parts (``--part``, repeatable; default all three):

* ``switch``: phase switching. A contrast session runs in this process: the real
  ``SessionRunner`` with its ledger (``--ledger-dir``; default the system's temporary directory,
  a disk as a user's data directory is), on a ``MonotonicClock``, on the server's contrast pad
  bound through the simulated bleak backend. So time zero is known exactly
  (``clock.now() - runner.session_time()`` when the runner says it is running). For each planned
  instant (heat->cold, cold->heat, the end) the error is when the pad reported its new mode minus
  the planned instant. Beside it: when the runner announced the phase (in this process: its
  scheduling and the ledger write, without the radio), and a baseline in the same event loop at
  the same time, a chain of ``asyncio.sleep(phase)`` (each phase's length in turn), whose wake-ups
  are compared with the same planned instants. Phases shorter than a minute are not a valid
  profile (X1 refuses them, never clamps): the benchmark compiles a valid contrast profile
  (1 + 1 minutes, one cycle, 34/25 degC, on the contrast pad) and repeats its heat and cold steps
  ``--cycles`` times at ``--phase-seconds`` each, prompts left out; the runner executes such a
  plan as it does a compiled one. With ``--phase-seconds`` 60-300 and ``--cycles`` at most 3 it
  runs the compiled profile itself. Drift: the lowest error of the last third of the instants
  minus the lowest of the first third (a delay only adds to an error, so the floor is what
  moves when errors accumulate, and one late switch does not); last minus first and a fitted
  slope are shown too.
* ``stop``: from the stop to every output OFF at the devices, ``--reps`` times for each way of
  stopping (``--stop-via``): SIGINT to ``relieve run --json``; a ``stop`` request on the socket
  of the node daemon ``relieve serve``; the ``s`` key of ``relieve tui`` in a pseudo-terminal.
  Each with 1 device (``--devices``; a heat pad at 34 degC: the server hides its skin probe, so
  the session's scan for one finds none) and with 4 (heat pad, cold pad, massage gun, skin probe:
  a routine of a contrast with separate pads and a massage, stopped in its first heat phase, when
  the heat pad heats and the cold pad pre-cools; the gun is bound and idle, as no profile runs a
  gun beside a pad). Every repetition is a new session (a new process for run and tui, a fresh
  data directory). The stop comes 0.2-0.6 s (TUI: 0.5-0.9 s) after the devices report ON, at a
  random point of the drivers' once-a-second lease renewal (``--seed``).
* ``cost``: a ``relieve run`` process's CPU (user + system of all its threads, /proc/PID/stat in
  10 ms ticks) over ``--cost-seconds`` of therapy from time zero, per minute of therapy, and its
  peak RSS (``ru_maxrss`` from wait4 once it exits), for a heat pad alone and for a heat pad, a
  massage gun and a skin probe (a routine: heat for the first half of the window, then the gun;
  all three bound throughout). The two cases run side by side (each process's CPU is its own).
  The process's whole CPU, start-up and stop included, is shown as well.

Targets: the switch error at the device p99 <= 5 ms, and no drift (|drift| <= 2 ms, two steps of
the device timestamps' 1 ms resolution); stop p99 <= 50 ms for every variant; cost under 1 % of
one core (0.6 CPU s per minute of therapy). Exit status 1 when a target is missed or a session
went wrong (the table says which).

    python benchmarks/timing_bench.py                # everything: 7-9 minutes on 2 cores
    python benchmarks/timing_bench.py --part switch --phase-seconds 1 --cycles 30
    python benchmarks/timing_bench.py --part switch --ledger-dir /dev/shm   # without the disk
    python benchmarks/timing_bench.py --part stop --reps 5 --stop-via run --devices 1
    python benchmarks/timing_bench.py --part cost --cost-seconds 180 --json

The stop part takes most of the time (5-7 minutes): each repetition starts a
relieve process, and a session without a probe listens 2 s for one before it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import json
import math
import os
import platform
import pty
import random
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.ledger import Ledger
from controller.ledger.allowances import ALLOWANCE_RULES
from controller.library import ProfileLibrary
from controller.session.binding import let_go
from controller.session.bindings import SessionDevices
from controller.session.events import Event, Finished, PhaseChanged, StateChanged
from controller.session.runner import SessionRunner
from controller.session.simulation import open_radio
from drivers.core.clock import MonotonicClock, real_seconds
from drivers.core.factory import open_device
from profiles.compiler import compile_plan
from profiles.plan import Plan

RELIEVE = str(Path(sys.executable).parent / "relieve")
PARTS = ("switch", "stop", "cost")
STOP_VIAS = ("run", "daemon", "tui")
DEVICE_COUNTS = (1, 4)

REPS = 20
PHASE_S = 2.0
CYCLES = 15
COST_S = 60.0
SEED = 14

SWITCH_P99_MS = 5.0
DRIFT_MS = 2.0  # two steps of the device timestamps' 1 ms resolution
STOP_P99_MS = 50.0
CPU_S_PER_MIN = 0.6  # 1 % of one core

# The simulated devices (simulators.catalog)
ADDRESS = {
    "contrast-pad": "C0:DE:00:00:00:01",
    "heat-pad": "C0:DE:00:00:00:02",
    "cold-pad": "C0:DE:00:00:00:03",
    "massage-gun": "C0:DE:00:00:00:04",
    "skin-probe": "C0:DE:00:00:00:07",
}

READY_S = 30.0  # real seconds for a process to be ready / a session to reach its heat phase
OFF_WAIT_S = 10.0  # real seconds for the outputs to report OFF after a stop
EXIT_WAIT_S = 20.0  # real seconds for a stopped process to exit
WINDOW = struct.pack("HHHH", 30, 100, 0, 0)  # the TUI's terminal: 30 rows, 100 columns

# 34 °C is within 1 °C of a resting plate: pre-heat ends at once, so a session reaches its heat
# phase without waiting for real-time physics (as tests/sim_processes.py does).
HEAT_C = 34
COLD_C = 25

# A server whose skin probe hides for good: a session's scan for a probe finds none.
NO_PROBE_SCENARIO = """\
name = "no probe"

[[fault]]
device = "skin-probe"
kind = "refuse_connections"
hide = true
duration = 10000000
"""


# --- statistics (pure) ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100] of ``values``: a value that was measured."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_ms: Sequence[float]) -> dict[str, Any]:
    """n, p50, p99 (nearest rank), max, min and mean of milliseconds, rounded to 0.001 ms."""
    if not values_ms:
        return {"n": 0, "p50": None, "p99": None, "max": None, "min": None, "mean": None}
    return {
        "n": len(values_ms),
        "p50": round(percentile(values_ms, 50), 3),
        "p99": round(percentile(values_ms, 99), 3),
        "max": round(max(values_ms), 3),
        "min": round(min(values_ms), 3),
        "mean": round(statistics.fmean(values_ms), 3),
    }


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ``ys`` over ``xs`` (0 with fewer than two distinct xs)."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def drift(at_s: Sequence[float], errors_ms: Sequence[float]) -> dict[str, float | None]:
    """How the error moves over a session. ``drift_ms``: the lowest error of the last third of
    the instants minus the lowest of the first third. A delay only ever adds to an error, so
    the floor is what moves when errors accumulate, and a late switch here and there (a slow
    disk write) does not. Also ``last_minus_first_ms`` and ``slope_ms_per_min`` (least squares
    over the planned instants ``at_s``)."""
    n = len(errors_ms)
    if n < 2:
        return {"drift_ms": None, "last_minus_first_ms": None, "slope_ms_per_min": None}
    third = max(1, n // 3)
    return {
        "drift_ms": round(min(errors_ms[-third:]) - min(errors_ms[:third]), 3),
        "last_minus_first_ms": round(errors_ms[-1] - errors_ms[0], 3),
        "slope_ms_per_min": round(slope(at_s, errors_ms) * 60.0, 4),
    }


def align_start(pairs: Sequence[tuple[float, float]]) -> float:
    """The server's start on the shared clock from (receipt, t) pairs: ``min(receipt - t)``
    (no line is received before the instant it reports)."""
    if not pairs:
        raise ValueError("no event lines to align the server's clock with")
    return min(received - t for received, t in pairs)


@dataclass(frozen=True)
class DeviceReport:
    """One event line of one device: when it happened (shared clock), what it reported."""

    at: float
    mode: str | None
    on: bool


def match_switches(
    planned: Sequence[tuple[float, str]], reports: Sequence[DeviceReport]
) -> list[float | None]:
    """For each planned (instant, mode) in order, the first report after the previous match whose
    mode is that mode (``off``: the output reports OFF): its time minus the planned instant, in
    seconds; None when the device never reported it."""
    out: list[float | None] = []
    index = 0
    for at, mode in planned:
        found: float | None = None
        while index < len(reports):
            report = reports[index]
            index += 1
            reached = (not report.on) if mode == "off" else (report.on and report.mode == mode)
            if reached:
                found = report.at - at
                break
        out.append(found)
    return out


# --- reading lines, stamped on receipt ----------------------------------------------------


@dataclass(frozen=True)
class Line:
    at: float  # real_seconds() when it was read
    text: str
    obj: dict[str, Any] | None  # the JSON object, when the line is one


class LineReader:
    """A thread that reads lines from ``stream`` and stamps each on receipt."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._lines: list[Line] = []
        self._cond = threading.Condition()
        self.closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in iter(self._stream.readline, b""):
                at = real_seconds()
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                obj: dict[str, Any] | None = None
                if text.startswith("{"):
                    with contextlib.suppress(ValueError):
                        parsed = json.loads(text)
                        obj = parsed if isinstance(parsed, dict) else None
                with self._cond:
                    self._lines.append(Line(at, text, obj))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # the stream was closed under us
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._lines)

    def lines(self, start: int = 0) -> list[Line]:
        with self._cond:
            return self._lines[start:]

    def wait_for(
        self, predicate: Callable[[Line], bool], timeout_s: float, start: int = 0
    ) -> Line | None:
        """The first line from index ``start`` on that satisfies ``predicate``, waiting for it
        at most ``timeout_s`` real seconds (None: it did not come, or the stream ended)."""
        deadline = time.monotonic() + timeout_s
        index = start
        with self._cond:
            while True:
                while index < len(self._lines):
                    if predicate(self._lines[index]):
                        return self._lines[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def join(self, timeout_s: float = 2.0) -> None:
        self._thread.join(timeout_s)


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:
        raise RuntimeError("relieve bug in the benchmark: a pipe was not opened")
    return stream


def _device_line(device: str, *, on: bool) -> Callable[[Line], bool]:
    """A server event line of ``device`` whose output is ON (``on``) or OFF and not energised."""

    def check(line: Line) -> bool:
        obj = line.obj or {}
        if obj.get("device") != device:
            return False
        if on:
            return bool(obj.get("on"))
        return not obj.get("on") and not obj.get("energised")

    return check


def _event(line: Line, kind: str, **keys: Any) -> bool:
    obj = line.obj
    return (
        obj is not None
        and obj.get("type") == kind
        and all(obj.get(k) == v for k, v in keys.items())
    )


def _heat_phase(line: Line) -> bool:
    """A session's heat phase at or after time zero (not the pre-heat)."""
    return _event(line, "phase", mode="heat") and float((line.obj or {}).get("t", -1)) >= 0


# --- the simulator server ------------------------------------------------------------------


class SimServer:
    """`relieve sim serve --socket PATH --events-json` as a process, its lines read on receipt."""

    def __init__(self, directory: Path, name: str, scenario: str | None) -> None:
        self.socket = directory / f"{name}.sock"
        command = [RELIEVE, "sim", "serve", "--socket", str(self.socket), "--events-json"]
        if scenario is not None:
            path = directory / f"{name}-scenario.toml"
            path.write_text(scenario)
            command += ["--scenario", str(path)]
        self.proc = subprocess.Popen(  # noqa: S603 - relieve itself, no shell
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.events = LineReader(_pipe(self.proc.stdout), f"{name} events")
        self.log = LineReader(_pipe(self.proc.stderr), f"{name} log")
        ready = self.log.wait_for(lambda line: "--simulator " in line.text, READY_S)
        if ready is None:
            self.close()
            raise RuntimeError(f"the simulator server {name} did not start")
        self.spec = ready.text.split("--simulator ", 1)[1].rstrip(")")

    def start_instant(self) -> float:
        """The server's start on the shared clock (see the module's docstring)."""
        return align_start(
            [(line.at, float(line.obj["t"])) for line in self.events.lines() if line.obj]
        )

    def latency_ms(self) -> dict[str, Any]:
        """Receipt minus device time of every line: the pipe's own delay (and the alignment's)."""
        start = self.start_instant()
        delays = [
            (line.at - start - float(line.obj["t"])) * 1000.0
            for line in self.events.lines()
            if line.obj
        ]
        return summary_ms(delays)

    def reports(self, device: str, start: int = 0) -> list[tuple[Line, DeviceReport]]:
        """Every event line of ``device`` from line index ``start`` on, with its device time."""
        origin = self.start_instant()
        out = []
        for line in self.events.lines(start):
            obj = line.obj
            if obj is None or obj.get("device") != device:
                continue
            mode = obj.get("mode")
            report = DeviceReport(
                origin + float(obj["t"]),
                mode if isinstance(mode, str) else None,
                bool(obj.get("on")) or bool(obj.get("energised")),
            )
            out.append((line, report))
        return out

    def wait_on(self, devices: Sequence[str], start: int, timeout_s: float = READY_S) -> bool:
        """Whether every one of ``devices`` reported its output ON after line ``start``."""
        for device in devices:
            seen = self.events.wait_for(_device_line(device, on=True), timeout_s, start)
            if seen is None:
                return False
        return True

    def latest(self, device: str) -> dict[str, Any] | None:
        for line in reversed(self.events.lines()):
            if line.obj is not None and line.obj.get("device") == device:
                return line.obj
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.events.join()
        self.log.join()


class Servers:
    """The two servers, started when first needed: ``pad`` (its skin probe hidden, for the
    heat pad alone and the contrast pad) and ``all`` (every device)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._servers: dict[str, SimServer] = {}

    def get(self, name: str) -> SimServer:
        if name not in self._servers:
            scenario = NO_PROBE_SCENARIO if name == "pad" else None
            self._servers[name] = SimServer(self.directory, name, scenario)
        return self._servers[name]

    def alignment(self) -> dict[str, Any]:
        return {name: server.latency_ms() for name, server in self._servers.items()}

    def close(self) -> None:
        for server in self._servers.values():
            server.close()


# --- profiles ------------------------------------------------------------------------------


def _heat_profile(name: str, minutes: float) -> str:
    return (
        f'name = "{name}"\ntitle = "{name}"\nkind = "heat"\narea = "lower-back"\n\n'
        f"[heat]\nminutes = {minutes:g}\ncelsius = {HEAT_C}\n"
    )


def _contrast_profile(name: str, minutes: float, cycles: int) -> str:
    return (
        f'name = "{name}"\ntitle = "{name}"\nkind = "contrast"\narea = "lower-back"\n\n'
        f"[contrast]\nheat_minutes = {minutes:g}\ncold_minutes = {minutes:g}\n"
        f"cycles = {cycles}\nheat_celsius = {HEAT_C}\ncold_celsius = {COLD_C}\n"
    )


MASSAGE = """\
name = "tb-massage"
title = "tb-massage"
kind = "massage"
area = "lower-back"

[massage]
minutes = 5
speed = "low"

[[massage.areas]]
name = "left-paraspinal"
seconds = 60

[[massage.areas]]
name = "right-paraspinal"
seconds = 60
"""


def _routine(name: str, steps: Sequence[str]) -> str:
    listed = ", ".join(f'"{step}"' for step in steps)
    return f'name = "{name}"\ntitle = "{name}"\nkind = "routine"\nsteps = [{listed}]\n'


def write_profiles(config_dir: Path, cost_s: float) -> None:
    """The benchmark's profiles, in a configuration directory of its own."""
    folder = config_dir / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "tb-warm": _heat_profile("tb-warm", 5),
        "tb-contrast": _contrast_profile("tb-contrast", 1, 1),
        "tb-massage": MASSAGE,
        "tb-routine": _routine("tb-routine", ["tb-contrast", "tb-massage"]),
        "tb-cost-pad": _heat_profile("tb-cost-pad", cost_s / 60.0 + 1.0),
        "tb-cost-heat": _heat_profile("tb-cost-heat", cost_s / 120.0),
        "tb-cost-routine": _routine("tb-cost-routine", ["tb-cost-heat", "tb-massage"]),
    }
    for name, text in texts.items():
        (folder / f"{name}.toml").write_text(text)


# --- part 1: phase switching -----------------------------------------------------------------


def switch_plan(library: ProfileLibrary, phase_s: float, cycles: int) -> tuple[Plan, str]:
    """The contrast plan for the contrast pad, and how it was made (see the module docstring)."""
    if 60.0 <= phase_s <= 300.0 and cycles <= 3:
        text = _contrast_profile("tb-switch", phase_s / 60.0, cycles)
        source = "the compiled contrast profile"
    else:
        text = _contrast_profile("tb-switch", 1, 1)
        source = "a compiled 1+1 min contrast, its steps repeated at the phase length (outside X1)"
    from profiles.parse import parse_profile

    compiled = compile_plan(parse_profile(text, "tb-switch.toml"), resolve=library.get)
    if source.startswith("the compiled"):
        return compiled, source
    heat_phase = next(p for p in compiled.phases if p.mode == "heat")
    cold_phase = next(p for p in compiled.phases if p.mode == "cold")
    heat = next(s for s in compiled.steps if s.action == "heat")
    cold = next(s for s in compiled.steps if s.action == "cold")
    phases = []
    steps = [s for s in compiled.steps if s.action == "preheat"]
    for cycle in range(cycles):
        t = 2 * cycle * phase_s
        phases += [
            dataclasses.replace(heat_phase, start_s=t, duration_s=phase_s),
            dataclasses.replace(cold_phase, start_s=t + phase_s, duration_s=phase_s),
        ]
        steps += [
            dataclasses.replace(heat, start_s=t, duration_s=phase_s),
            dataclasses.replace(cold, start_s=t + phase_s, duration_s=phase_s),
        ]
    plan = dataclasses.replace(
        compiled,
        total_s=2 * cycles * phase_s,
        phases=tuple(phases),
        steps=tuple(steps),
        warnings=(),
    )
    return plan, source


@dataclass
class SwitchRun:
    plan: Plan
    source: str
    t0: float | None = None
    announced: list[tuple[float, float]] = field(default_factory=list)  # (planned offset, stamp)
    baseline: list[float] = field(default_factory=list)  # wake stamps of the chained sleeps
    finished: Finished | None = None
    first_line: int = 0  # the server's first event line of the session


async def chained_sleeps(durations: Sequence[float], stamps: list[float]) -> None:
    """The baseline: sleep each phase's length in turn (each sleep's lateness accumulates)."""
    for seconds in durations:
        await asyncio.sleep(seconds)
        stamps.append(real_seconds())


async def run_switch_session(
    server: SimServer, library: ProfileLibrary, ledger_dir: Path, phase_s: float, cycles: int
) -> SwitchRun:
    clock = MonotonicClock()
    plan, source = switch_plan(library, phase_s, cycles)
    run = SwitchRun(plan, source)
    durations = [phase.duration_s for phase in plan.phases]
    tasks: list[asyncio.Task[None]] = []
    holder: list[SessionRunner] = []

    def emit(event: Event) -> None:
        now = clock.now()
        if isinstance(event, StateChanged) and event.state == "running" and run.t0 is None:
            run.t0 = now - holder[0].session_time()
            tasks.append(asyncio.ensure_future(chained_sleeps(durations, run.baseline)))
        elif isinstance(event, PhaseChanged) and run.t0 is not None and event.t > 0:
            run.announced.append((event.t, now))

    async with open_radio(simulator=server.spec, clock=clock) as radio:
        pad = await open_device(ADDRESS["contrast-pad"], backend=radio.backend, clock=clock)
        await pad.connect()
        devices = SessionDevices()
        devices.assign("heat", pad)
        devices.assign("cold", pad)
        ledger = Ledger.open(ledger_dir, simulated=True)
        try:
            recorder = ledger.start_session(plan.name, plan.kind, started_at=ledger.now())
            runner = SessionRunner(
                plan, devices, clock, emit=emit, recorder=recorder, simulated=True
            )
            holder.append(runner)
            run.first_line = len(server.events)
            run.finished = await runner.run()
            if tasks:
                await asyncio.wait_for(tasks[0], 5.0)
        finally:
            for task in tasks:
                task.cancel()
            await let_go(pad)
            ledger.close()
    return run


def switch_figures(server: SimServer, run: SwitchRun) -> dict[str, Any]:
    """The three error series of a switch run, each with its drift."""
    plan, t0 = run.plan, run.t0
    if t0 is None:
        return {"ok": False, "problem": "the session never reached time zero"}
    planned = [(p.start_s, p.mode) for p in plan.phases[1:]] + [(plan.total_s, "off")]
    offsets = [at for at, _ in planned]
    reports = [r for _, r in server.reports("contrast-pad", run.first_line)]
    absolute = [(t0 + at, mode) for at, mode in planned]
    device = match_switches(absolute, [r for r in reports if r.at > t0])
    missing = sum(1 for e in device if e is None)
    device_ms = [e * 1000.0 for e in device if e is not None]
    announced_ms = [(stamp - t0 - at) * 1000.0 for at, stamp in run.announced]
    ends = [sum(p.duration_s for p in plan.phases[: i + 1]) for i in range(len(plan.phases))]
    baseline_ms = [
        (stamp - t0 - end) * 1000.0 for stamp, end in zip(run.baseline, ends, strict=False)
    ]
    device_at = [at for at, e in zip(offsets, device, strict=True) if e is not None]
    kinds = [
        "end" if after == "off" else f"{before.mode}->{after}"
        for before, after in zip(plan.phases, [m for _, m in planned], strict=True)
    ]
    by_kind = {
        kind: summary_ms(
            [e * 1000.0 for k, e in zip(kinds, device, strict=True) if k == kind and e is not None]
        )
        for kind in dict.fromkeys(kinds)
    }
    finished = run.finished
    ok = (
        missing == 0
        and finished is not None
        and finished.outcome == "completed"
        and finished.devices_off
    )
    return {
        "plan": run.source,
        "phase_s": plan.phases[0].duration_s,
        "phases": len(plan.phases),
        "total_s": plan.total_s,
        "planned_instants": len(planned),
        "device": {**summary_ms(device_ms), **drift(device_at, device_ms), "missing": missing},
        "device_by_switch": by_kind,
        "runner": {
            **summary_ms(announced_ms),
            **drift([at for at, _ in run.announced], announced_ms),
        },
        "chained_sleep": {
            **summary_ms(baseline_ms),
            **drift(ends[: len(baseline_ms)], baseline_ms),
        },
        "outcome": None if finished is None else finished.outcome,
        "devices_off": None if finished is None else finished.devices_off,
        "ok": ok,
        "samples_ms": {
            "device": [round(v, 3) for v in device_ms],
            "runner": [round(v, 3) for v in announced_ms],
            "chained_sleep": [round(v, 3) for v in baseline_ms],
        },
    }


def switch_part(
    servers: Servers, work: Path, *, phase_s: float, cycles: int, ledger_parent: Path | None
) -> dict[str, Any]:
    server = servers.get("pad")
    library = ProfileLibrary(work / "config")
    with tempfile.TemporaryDirectory(prefix="relieve-timing-ledger-", dir=ledger_parent) as where:
        run = asyncio.run(run_switch_session(server, library, Path(where), phase_s, cycles))
    figures = switch_figures(server, run)
    figures["ledger_dir"] = str(ledger_parent or tempfile.gettempdir())
    device = figures.get("device", {})
    p99, drift_ms = device.get("p99"), device.get("drift_ms")
    figures["targets"] = {
        f"switch p99 <= {SWITCH_P99_MS:g} ms": p99 is not None and p99 <= SWITCH_P99_MS,
        f"switch drift within {DRIFT_MS:g} ms": drift_ms is not None and abs(drift_ms) <= DRIFT_MS,
    }
    return figures


# --- part 2: stop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    devices: int
    profile: str
    roles: Mapping[str, str]  # role -> device key
    on: tuple[str, ...]  # the outputs ON when the stop comes
    outputs: tuple[str, ...]  # every output bound (all must end OFF)
    confirmed: tuple[str, ...]  # the precautions, for the daemon's start request
    server: str

    def role_args(self) -> list[str]:
        return [a for role, key in self.roles.items() for a in (f"--{role}", ADDRESS[key])]

    def role_addresses(self) -> dict[str, str]:
        return {role: ADDRESS[key] for role, key in self.roles.items()}


SETUPS = {
    1: Setup(1, "tb-warm", {"heat": "heat-pad"}, ("heat-pad",), ("heat-pad",), ("heat",), "pad"),
    4: Setup(
        4,
        "tb-routine",
        {"heat": "heat-pad", "cold": "cold-pad", "gun": "massage-gun", "probe": "skin-probe"},
        ("heat-pad", "cold-pad"),
        ("heat-pad", "cold-pad", "massage-gun"),
        ("heat", "cold", "gun"),
        "all",
    ),
}


@dataclass
class StopSample:
    sent: float  # the stop's instant (shared clock)
    first_line: int  # the server's first event line after the stop
    on_at_stop: list[str]
    problem: str | None = None
    latency_ms: float | None = None


def _off_latency(server: SimServer, setup: Setup, sample: StopSample) -> None:
    """Wait for every output ON at the stop to report OFF; the latest of those, from the stop."""
    if sample.problem is not None:
        return
    if not sample.on_at_stop:
        sample.problem = "no output was ON when the stop came"
        return
    offs = []
    for device in sample.on_at_stop:
        line = server.events.wait_for(_device_line(device, on=False), OFF_WAIT_S, sample.first_line)
        if line is None:
            sample.problem = f"{device} did not report OFF within {OFF_WAIT_S:g} s of the stop"
            return
        offs.append(server.start_instant() + float((line.obj or {})["t"]))
    still_on = [
        d for d in setup.outputs if (state := server.latest(d)) is not None and state.get("on")
    ]
    if still_on:
        sample.problem = f"still ON after the stop: {', '.join(still_on)}"
        return
    sample.latency_ms = (max(offs) - sample.sent) * 1000.0


def _on_now(server: SimServer, setup: Setup) -> list[str]:
    return [d for d in setup.outputs if (state := server.latest(d)) is not None and state.get("on")]


def _exit_status(proc: subprocess.Popen[bytes], timeout_s: float = EXIT_WAIT_S) -> int | None:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _last_words(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f" ({lines[-1][-200:]})" if lines else ""


def stop_by_sigint(
    server: SimServer, setup: Setup, work: Path, rep: int, rng: random.Random
) -> StopSample:
    """SIGINT to `relieve run --json` in its heat phase."""
    data = work / f"run{setup.devices}-{rep}"
    command = [
        RELIEVE,
        "--data-dir",
        str(data),
        "--config-dir",
        str(work / "config"),
        "run",
        setup.profile,
        "--simulator",
        server.spec,
        *setup.role_args(),
        "--yes",
        "--json",
    ]
    mark = len(server.events)
    errors = work / f"run{setup.devices}-{rep}.stderr"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - relieve itself, no shell
            command, stdout=subprocess.PIPE, stderr=stderr
        )
    out = LineReader(_pipe(proc.stdout), "relieve run")
    try:
        if out.wait_for(_heat_phase, READY_S) is None or not server.wait_on(setup.on, mark):
            return StopSample(0.0, mark, [], f"the session did not start{_last_words(errors)}")
        time.sleep(rng.uniform(0.2, 0.6))
        on = _on_now(server, setup)
        first = len(server.events)
        sent = real_seconds()
        proc.send_signal(signal.SIGINT)
        sample = StopSample(sent, first, on)
        _off_latency(server, setup, sample)
        status = _exit_status(proc)
        finished = out.wait_for(lambda ln: _event(ln, "finished"), 2.0)
        end = (finished.obj or {}) if finished else {}
        if sample.problem is None and (
            status != 0 or end.get("outcome") != "stopped" or end.get("devices_off") is not True
        ):
            sample.problem = (
                f"relieve run ended with status {status}, outcome {end.get('outcome')}, "
                f"devices_off {end.get('devices_off')}{_last_words(errors)}"
            )
        return sample
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.join()


class Daemon:
    """`relieve serve --simulator SPEC` on a data directory of its own."""

    def __init__(self, server: SimServer, work: Path, name: str) -> None:
        self.data = work / name
        self.data.mkdir(parents=True)
        self.errors = work / f"{name}.stderr"
        command = [
            RELIEVE,
            "--data-dir",
            str(self.data),
            "--config-dir",
            str(work / "config"),
            "serve",
            "--simulator",
            server.spec,
        ]
        with self.errors.open("wb") as stderr:
            self.proc = subprocess.Popen(  # noqa: S603 - relieve itself, no shell
                command, stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + READY_S
        while True:
            with contextlib.suppress(OSError):
                self.connect().close()
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"relieve serve did not start{_last_words(self.errors)}")
            time.sleep(0.05)

    def connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(self.data / "relieve.sock"))
        except OSError:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            _exit_status(self.proc)


def _send(conn: socket.socket, obj: Mapping[str, Any]) -> None:
    conn.sendall(json.dumps(obj).encode() + b"\n")


def stop_by_daemon(
    server: SimServer, setup: Setup, daemon: Daemon, rep: int, rng: random.Random
) -> StopSample:
    """A `stop` request on the node daemon's socket while its session heats."""
    mark = len(server.events)
    conn = daemon.connect()
    stream = conn.makefile("rb")
    lines = LineReader(stream, "daemon client")
    try:
        _send(
            conn,
            {
                "request": "start",
                "id": 1,
                "profile": setup.profile,
                "roles": setup.role_addresses(),
                "confirmed": list(setup.confirmed),
                "lift": sorted(ALLOWANCE_RULES),  # 20 sessions a day on one history
                "started_by": "timing-bench",
            },
        )
        reply = lines.wait_for(_reply("start", 1), READY_S)
        if reply is None or not (reply.obj or {}).get("ok"):
            why = (reply.obj or {}).get("error") if reply else "no reply"
            return StopSample(0.0, mark, [], f"the daemon did not start the session: {why}")
        if lines.wait_for(_heat_phase, READY_S) is None or not server.wait_on(setup.on, mark):
            return StopSample(0.0, mark, [], "the daemon's session did not reach its heat phase")
        time.sleep(rng.uniform(0.2, 0.6))
        on = _on_now(server, setup)
        first = len(server.events)
        sent = real_seconds()
        _send(conn, {"request": "stop", "id": 2, "by": f"timing bench {rep}"})
        sample = StopSample(sent, first, on)
        _off_latency(server, setup, sample)
        finished = lines.wait_for(lambda ln: _event(ln, "finished"), EXIT_WAIT_S)
        end = (finished.obj or {}) if finished else {}
        if sample.problem is None and (
            end.get("outcome") != "stopped" or end.get("devices_off") is not True
        ):
            sample.problem = (
                f"the daemon's session ended {end.get('outcome')}, devices_off "
                f"{end.get('devices_off')}{_last_words(daemon.errors)}"
            )
        if not _daemon_idle(conn, lines):
            sample.problem = sample.problem or "the daemon still had the session after its end"
        return sample
    finally:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        stream.close()
        conn.close()
        lines.join()


def _reply(verb: str, number: int) -> Callable[[Line], bool]:
    def check(line: Line) -> bool:
        obj = line.obj or {}
        return obj.get("reply") == verb and obj.get("id") == number

    return check


def _daemon_idle(conn: socket.socket, lines: LineReader) -> bool:
    """Ask `status` until the daemon has no session (it lets go of the devices after the
    session's `finished`), so the next start is not refused as busy."""
    deadline = time.monotonic() + EXIT_WAIT_S
    for number in range(3, 10_000):
        mark = len(lines)
        _send(conn, {"request": "status", "id": number})
        answer = lines.wait_for(_reply("status", number), 5.0, mark)
        if answer is not None and (answer.obj or {}).get("session") is None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


class Terminal:
    """`relieve tui` in a pseudo-terminal: what it wrote is drained by a thread."""

    def __init__(self, command: list[str]) -> None:
        env = {**os.environ, "TERM": "xterm-256color"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the TUI on the terminal, its size set before it starts
            fcntl.ioctl(0, termios.TIOCSWINSZ, WINDOW)
            os.execve(command[0], command, env)  # noqa: S606 - relieve itself, no shell
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, WINDOW)
        self.out = bytearray()
        self._lock = threading.Lock()
        self.status: int | None = None
        self._thread = threading.Thread(target=self._drain, name="tui output", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                if self.status is not None:
                    return
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.out += data
                del self.out[:-65536]  # the screen's last bytes are enough

    def text(self) -> str:
        with self._lock:
            return self.out.decode("utf-8", "replace")

    def press(self, key: bytes) -> None:
        os.write(self.fd, key)

    def wait_exit(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while self.status is None and time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            else:
                time.sleep(0.02)
        return self.status

    def close(self) -> None:
        if self.wait_exit(0) is None:
            os.kill(self.pid, signal.SIGKILL)
            _, status = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(status)
        self._thread.join(2.0)
        os.close(self.fd)


def stop_by_tui_key(
    server: SimServer, setup: Setup, work: Path, rep: int, rng: random.Random
) -> StopSample:
    """The `s` key of `relieve tui` (in a pseudo-terminal) while the session heats."""
    command = [
        RELIEVE,
        "--data-dir",
        str(work / f"tui{setup.devices}-{rep}"),
        "--config-dir",
        str(work / "config"),
        "tui",
        setup.profile,
        "--simulator",
        server.spec,
        *setup.role_args(),
        "--yes",
    ]
    mark = len(server.events)
    term = Terminal(command)
    try:
        if not server.wait_on(setup.on, mark):
            return StopSample(0.0, mark, [], "the TUI's session did not switch its outputs ON")
        # no phase event to read here: the heat phase begins as soon as the pad is ON (pre-heat
        # at 34 °C ends at once), so wait a little longer than for the other stops
        time.sleep(0.5 + rng.uniform(0.0, 0.4))
        on = _on_now(server, setup)
        first = len(server.events)
        sent = real_seconds()
        term.press(b"s")
        sample = StopSample(sent, first, on)
        _off_latency(server, setup, sample)
        # q quits once the session has ended; while it still ends (an output that looked
        # driven at its OFF is watched a few seconds more) q asks "stop the session and quit?",
        # and y answers it
        for key in (b"q", b"y") * 3:
            time.sleep(0.3)
            term.press(key)
            if term.wait_exit(3.0) is not None:
                break
        said = " ".join(term.text().split())
        if sample.problem is None and (
            term.status != 0 or "Session stopped" not in said or "Every device is OFF" not in said
        ):
            sample.problem = f"relieve tui ended with status {term.status}: {said[-200:]!r}"
        return sample
    finally:
        term.close()


def stop_part(
    servers: Servers,
    work: Path,
    *,
    reps: int,
    vias: Sequence[str],
    counts: Sequence[int],
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - delays, not secrets
    measured: list[tuple[str, Setup, float, list[StopSample]]] = []
    for via in vias:
        for count in counts:
            setup = SETUPS[count]
            server = servers.get(setup.server)
            samples: list[StopSample] = []
            began = time.monotonic()
            if via == "daemon":
                daemon = Daemon(server, work, f"daemon{count}")
                try:
                    samples = [stop_by_daemon(server, setup, daemon, r, rng) for r in range(reps)]
                finally:
                    daemon.close()
            elif via == "run":
                samples = [stop_by_sigint(server, setup, work, r, rng) for r in range(reps)]
            else:
                samples = [stop_by_tui_key(server, setup, work, r, rng) for r in range(reps)]
            measured.append((via, setup, time.monotonic() - began, samples))
    results: dict[str, Any] = {}
    for via, setup, seconds, samples in measured:
        latencies = [s.latency_ms for s in samples if s.latency_ms is not None]
        problems = [f"rep {i + 1}: {s.problem}" for i, s in enumerate(samples) if s.problem]
        stats = summary_ms(latencies)
        ons = sorted({", ".join(s.on_at_stop) for s in samples if s.on_at_stop})
        results[f"{via} {setup.devices}"] = {
            "via": {
                "run": "SIGINT to relieve run",
                "daemon": "stop request to relieve serve",
                "tui": "s key in relieve tui",
            }[via],
            "devices": setup.devices,
            "bound": list(dict.fromkeys(setup.roles.values())),
            "on_at_stop": ons,
            **stats,
            "samples_ms": [round(v, 3) for v in latencies],
            "seconds": round(seconds, 1),
            "problems": problems,
            "met": stats["p99"] is not None and stats["p99"] <= STOP_P99_MS and not problems,
        }
    return {
        "reps": reps,
        "variants": results,
        "targets": {
            f"stop {name} p99 <= {STOP_P99_MS:g} ms": v["met"] for name, v in results.items()
        },
    }


# --- part 3: cost ----------------------------------------------------------------------------

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime (fields 14 and 15)


def process_hwm_kib(pid: int) -> int | None:
    """Peak resident set size (VmHWM) of process ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def cost_case(
    server: SimServer,
    work: Path,
    *,
    name: str,
    profile: str,
    roles: Sequence[str],
    window_s: float,
) -> dict[str, Any]:
    command = [
        RELIEVE,
        "--data-dir",
        str(work / f"cost-{name}"),
        "--config-dir",
        str(work / "config"),
        "run",
        profile,
        "--simulator",
        server.spec,
        *[a for key in roles for a in (f"--{_role_of(key)}", ADDRESS[key])],
        "--yes",
        "--json",
    ]
    errors = work / f"cost-{name}.stderr"
    launched = real_seconds()
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - relieve itself, no shell
            command, stdout=subprocess.PIPE, stderr=stderr
        )
    out = LineReader(_pipe(proc.stdout), "relieve run")
    problem: str | None = None
    try:
        zero = out.wait_for(_heat_phase, READY_S)
        if zero is None:
            return {"problem": f"the session did not start{_last_words(errors)}"}
        cpu0 = process_cpu_s(proc.pid)
        start = real_seconds()
        time.sleep(max(0.0, zero.at + window_s - real_seconds()))
        if proc.poll() is not None:
            return {"problem": f"relieve run ended before the window did{_last_words(errors)}"}
        cpu1 = process_cpu_s(proc.pid)
        end = real_seconds()
        hwm = process_hwm_kib(proc.pid)
        ran = [
            str((ln.obj or {}).get("mode"))
            for ln in out.lines()
            if _event(ln, "phase") and float((ln.obj or {}).get("t", -1)) >= 0
        ]
        proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            problem = f"relieve run exited with status {proc.returncode}{_last_words(errors)}"
        minutes = (end - start) / 60.0
        per_minute = (cpu1 - cpu0) / minutes
        return {
            "bound": list(roles),
            "phases": ran,
            "window_s": round(end - start, 3),
            "cpu_s": round(cpu1 - cpu0, 3),
            "cpu_s_per_min": round(per_minute, 4),
            "core_percent": round(per_minute / 60.0 * 100.0, 3),
            "process_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "process_wall_s": round(real_seconds() - launched, 3),
            "peak_rss_mib": round(usage.ru_maxrss / 1024.0, 1),
            "vmhwm_mib": None if hwm is None else round(hwm / 1024.0, 1),
            "problem": problem,
            "met": per_minute <= CPU_S_PER_MIN and problem is None,
        }
    finally:
        if proc.poll() is None and proc.returncode is None:
            proc.kill()
            proc.wait()
        out.join()


def _role_of(key: str) -> str:
    return {"heat-pad": "heat", "massage-gun": "gun", "skin-probe": "probe"}[key]


def cost_part(servers: Servers, work: Path, window_s: float) -> dict[str, Any]:
    pad, everything = servers.get("pad"), servers.get("all")
    # CPU seconds are each process's own: the two cases run side by side to save time
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        alone = pool.submit(
            cost_case,
            pad,
            work,
            name="pad",
            profile="tb-cost-pad",
            roles=["heat-pad"],
            window_s=window_s,
        )
        three = pool.submit(
            cost_case,
            everything,
            work,
            name="pad-gun-probe",
            profile="tb-cost-routine",
            roles=["heat-pad", "massage-gun", "skin-probe"],
            window_s=window_s,
        )
        cases = {"pad": alone.result(), "pad+gun+probe": three.result()}
    return {
        "window_s": window_s,
        "cases": cases,
        "targets": {
            f"cost {name} <= {CPU_S_PER_MIN:g} CPU s/min": bool(case.get("met"))
            for name, case in cases.items()
        },
    }


# --- report ----------------------------------------------------------------------------------


def _f(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _met(flag: bool) -> str:
    return "met" if flag else "MISSED"


def switch_table(s: dict[str, Any]) -> list[str]:
    if "device" not in s:
        return [f"switch: {s.get('problem')}"]
    lines = [
        f"Phase switching: {s['phases']} phases of {s['phase_s']:g} s ({s['total_s']:g} s), "
        f"{s['planned_instants']} planned instants; {s['plan']}",
        f"  {'series':<34}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'drift ms':>10}"
        f"{'last-first':>12}{'ms/min':>9}",
    ]
    names = {
        "device": "device reports the new mode",
        "runner": "runner announces the phase",
        "chained_sleep": "chained asyncio.sleep (baseline)",
    }
    for key, label in names.items():
        r = s[key]
        lines.append(
            f"  {label:<34}{r['n']:>4}{_f(r['p50'], 2):>9}{_f(r['p99'], 2):>9}"
            f"{_f(r['max'], 2):>9}{_f(r['drift_ms'], 2):>10}{_f(r['last_minus_first_ms'], 2):>12}"
            f"{_f(r['slope_ms_per_min'], 3):>9}"
        )
    lines.append(
        "  device, by switch: "
        + ", ".join(
            f"{kind} p50 {_f(r['p50'], 1)} / max {_f(r['max'], 1)} ms (n {r['n']})"
            for kind, r in s["device_by_switch"].items()
        )
        + "; device instants to 1 ms (the server's t)"
    )
    if s["device"].get("missing"):
        lines.append(f"  {s['device']['missing']} switches never reported by the device")
    lines.append(
        f"  session: {s['outcome']}, devices_off {s['devices_off']}; ledger in {s['ledger_dir']}"
    )
    lines += [f"  target {name}: {_met(flag)}" for name, flag in s["targets"].items()]
    return lines


def stop_table(s: dict[str, Any]) -> list[str]:
    lines = [
        f"Stop to every output OFF at the devices ({s['reps']} repetitions each)",
        f"  {'stop':<32}{'devices':>8}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'took s':>8}  ON at the stop",
    ]
    for v in s["variants"].values():
        lines.append(
            f"  {v['via']:<32}{v['devices']:>8}{v['n']:>4}{_f(v['p50'], 1):>9}"
            f"{_f(v['p99'], 1):>9}{_f(v['max'], 1):>9}{v['seconds']:>8.0f}  "
            f"{' / '.join(v['on_at_stop']) or '-'}"
        )
        lines += [f"    problem: {p}" for p in v["problems"]]
    lines.append(
        f"  target p99 <= {STOP_P99_MS:g} ms: "
        + ", ".join(
            f"{name.split(' p99')[0].removeprefix('stop ')} {_met(flag)}"
            for name, flag in s["targets"].items()
        )
    )
    return lines


def cost_table(s: dict[str, Any]) -> list[str]:
    lines = [
        f"Cost of a real-time session: relieve run over {s['window_s']:g} s of therapy",
        f"  {'devices':<16}{'CPU s':>7}{'s/min':>8}{'% core':>8}{'process CPU s':>15}"
        f"{'peak RSS MiB':>14}  phases",
    ]
    for name, c in s["cases"].items():
        if "cpu_s" not in c:
            lines.append(f"  {name:<16}problem: {c.get('problem')}")
            continue
        lines.append(
            f"  {name:<16}{c['cpu_s']:>7.2f}{c['cpu_s_per_min']:>8.3f}{c['core_percent']:>8.2f}"
            f"{c['process_cpu_s']:>15.2f}{_f(c['peak_rss_mib']):>14}  {'+'.join(c['phases'])}"
        )
        if c.get("problem"):
            lines.append(f"    problem: {c['problem']}")
    lines += [f"  target {name}: {_met(flag)}" for name, flag in s["targets"].items()]
    return lines


def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = args.part or list(PARTS)
    began = time.monotonic()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="relieve-timing-") as directory:
        work = Path(directory)
        write_profiles(work / "config", args.cost_seconds)
        servers = Servers(work)
        try:
            if "switch" in parts:
                results["switch"] = switch_part(
                    servers,
                    work,
                    phase_s=args.phase_seconds,
                    cycles=args.cycles,
                    ledger_parent=args.ledger_dir,
                )
            if "stop" in parts:
                results["stop"] = stop_part(
                    servers,
                    work,
                    reps=args.reps,
                    vias=args.stop_via or list(STOP_VIAS),
                    counts=args.devices or list(DEVICE_COUNTS),
                    seed=args.seed,
                )
            if "cost" in parts:
                results["cost"] = cost_part(servers, work, args.cost_seconds)
            alignment = servers.alignment()
        finally:
            servers.close()
    targets: dict[str, bool] = {}
    for part in results.values():
        targets.update(part.get("targets", {}))
    switch_ok = results.get("switch", {}).get("ok", True)
    return {
        **results,
        "server_pipe_latency_ms": alignment,
        "targets": targets,
        "missed": [name for name, flag in targets.items() if not flag]
        + ([] if switch_ok else ["switch session did not complete cleanly"]),
        "seconds": round(time.monotonic() - began, 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cores": os.cpu_count(),
    }


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if "switch" in results:
        lines += [*switch_table(results["switch"]), ""]
    if "stop" in results:
        lines += [*stop_table(results["stop"]), ""]
    if "cost" in results:
        lines += [*cost_table(results["cost"]), ""]
    for name, latency in results["server_pipe_latency_ms"].items():
        lines.append(
            f"Server '{name}' event pipe: {latency['n']} lines, receipt after the device instant "
            f"p50 {_f(latency['p50'], 3)} ms, max {_f(latency['max'], 3)} ms (not in the figures)"
        )
    lines.append(
        f"{results['seconds']:g} s in all, {results['python']}, {results['cores']} cores. "
        + (
            "Every target met."
            if not results["missed"]
            else f"MISSED: {'; '.join(results['missed'])}"
        )
    )
    return "\n".join(lines)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--part", action="append", choices=PARTS, help="repeatable; default all")
    parser.add_argument(
        "--reps", type=_count, default=REPS, help=f"stops per variant (default {REPS})"
    )
    parser.add_argument(
        "--phase-seconds",
        type=_positive,
        default=PHASE_S,
        help=f"length of each contrast phase (default {PHASE_S:g})",
    )
    parser.add_argument(
        "--cycles", type=_count, default=CYCLES, help=f"heat+cold cycles (default {CYCLES})"
    )
    parser.add_argument(
        "--stop-via", action="append", choices=STOP_VIAS, help="repeatable; default all"
    )
    parser.add_argument(
        "--devices", action="append", type=int, choices=DEVICE_COUNTS, help="repeatable; 1 and 4"
    )
    parser.add_argument(
        "--cost-seconds",
        type=_positive,
        default=COST_S,
        help=f"therapy seconds measured per cost case, 10-600 (default {COST_S:g})",
    )
    parser.add_argument(
        "--ledger-dir",
        type=Path,
        help="where the switch session's ledger goes (default: the system's temporary "
        "directory); e.g. /dev/shm to take the disk out of the figures",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="for the stops' random delays")
    args = parser.parse_args(argv)
    if not 10 <= args.cost_seconds <= 600:
        parser.error("--cost-seconds must be between 10 and 600")
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 1 if results["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
