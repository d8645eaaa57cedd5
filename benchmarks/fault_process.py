"""The fault matrix's real-time rows: faults of relieve's own processes, and of the MQTT broker.

Every cell runs a real session, in real processes, in real time:

* ``relieve sim serve --events-json`` plays the devices. Its stdout (one JSON line per change of
  a device's state) is read on a thread of this script and every line is stamped with
  ``time.monotonic()`` as it arrives: that is the device's own account, and every figure about
  outputs comes from it, never from what relieve says.
* The controller is ``relieve run PROFILE --simulator unix:... --yes --json`` (rows ``sigkill``,
  ``sigterm``, ``sigstop``), or ``relieve serve --simulator ...`` with ``relieve run`` as its
  client (rows ``daemon-killed`` and ``broker-loss``; the latter with an ``[mqtt]`` table and a
  real mosquitto on a free port). Its ``--json`` events are stamped the same way; they say when
  the column is reached and when therapy time zero was.

The fault (a signal, or the broker's SIGKILL) is sent once the column is reached: 1.5 s into
pre-heat, heat, cold or massage with the output reported ON by the device, or the moment the
controller announces the heat -> cold switch of a contrast (``between``). Measured:

* ``off_after_s``: real seconds from the fault to the device line after which every output
  stays OFF (reported OFF, and a heater or cooler no longer energised; a gun's motor must then
  report standstill within its spin-down, ``SPIN_DOWN_S``); the bound is the product's promise:
  a lost controller leaves the pad to its lease, H4 (at most 5 s of device time), SIGTERM turns
  every output OFF within ``OFF_TIMEOUT_S`` (1 s);
* after SIGSTOP for 15 s and SIGCONT: nothing switched back ON without the person;
* the broker's loss: no pause and no alarm, the output still ON 3 s later, the bridge back once
  the broker is, and a stop sent over MQTT then turns every output OFF within 1 s;
* ``delivered_s``: the ON time the devices reported after therapy time zero (device seconds);
  ``recorded_s``: the exposure ``relieve history --json --simulated`` records afterwards;
* the sentence the person was told (see each row's notes for which one).

The cold and between columns need a minute of heat first (a contrast's shortest heat phase,
X1); they run with ``--speed 4`` on the simulator and the controller, and their bounds are the
same promises in device time (5 s of lease is 1.25 real seconds at x4; a simulated device grants
at least 0.25 real seconds). The other columns run at x1.

    python benchmarks/fault_process.py               # every real-time cell (about 7 minutes)
    python benchmarks/fault_process.py --row sigterm --column heat
    python benchmarks/fault_process.py --json        # one JSON object
    python benchmarks/fault_process.py --workdir D   # keep every cell's files (stamped output)

Exit status 1 when a cell fails (an output ON past its bound, less recorded than delivered, no
clear sentence, or the session did not do what the row expects).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fault_cells import COLUMNS, ROWS, Cell, Column, render_markdown, summary
from controller.cli.console import LiveView
from controller.session.events import EventDecodeError, Finished, event_from_json
from controller.session.runner import OFF_TIMEOUT_S
from drivers.codecs.open_common import LEASE_MAX_MS
from drivers.core.watch import SPIN_DOWN_S
from simulators.devices.open_device import LEASE_REAL_FLOOR_S
from tests.mqtt_broker import Broker, BrokerError

__all__ = ["PROCESS_ROWS", "run_process_cells"]

RELIEVE = str(Path(sys.executable).parent / "relieve")
PROCESS_ROWS = ("sigkill", "sigterm", "sigstop", "daemon-killed", "broker-loss")

LEASE_MAX_S = LEASE_MAX_MS / 1000  # H4: every ON ends on the device within this (device time)
STOP_S = 15.0  # the SIGSTOP row: how long the controller is stopped
SCALED_SPEED = 4.0  # the cold and between columns (a minute of heat comes first)
LEAD_S = 1.5  # real seconds into the column (output ON) before the fault
LEAD_QUICK_S = 1.0
READY_S = 30.0  # real seconds for a server, a daemon, a session to get going
REACH_S = 60.0  # real seconds for the session to reach its column, beyond the plan's own wait
END_S = 20.0  # real seconds a process may take to end once it should
SETTLE_S = 1.0  # real seconds watched after the end, for anything switched back on
OUTAGE_S = 3.0  # how long the broker stays away
OUTAGE_QUICK_S = 2.0
RECONNECT_S = 45.0  # the bridge's backoff is 1 s doubling (with jitter): a bound, not a wait
NODE = "fault-cell"
SOCKET_PATH_MAX = 100  # a unix socket's path must fit sockaddr_un (108 bytes)

HEAT_PAD = "C0:DE:00:00:00:02"
CONTRAST_PAD = "C0:DE:00:00:00:01"
MASSAGE_GUN = "C0:DE:00:00:00:04"
SKIN_PROBE = "C0:DE:00:00:00:07"


class CellError(Exception):
    """The cell could not be measured as planned; the message says what happened."""


# --- the sessions, one per column -------------------------------------------------------------

_PREHEAT = """
name = "fault-preheat"
title = "Pre-heat to 42 degC, then a warm minute"
kind = "heat"
area = "lower-back"

[heat]
minutes = 1
celsius = 42
"""

# 34 degC is within 1 degC of the resting plate: pre-heat ends at once and heat begins.
_HEAT = """
name = "fault-heat"
title = "One warm minute"
kind = "heat"
area = "lower-back"

[heat]
minutes = 1
celsius = 34
"""

# The shortest contrast X1 allows: one minute of heat (at once, as above), one of cold.
_CONTRAST = """
name = "fault-contrast"
title = "One minute warm, one minute cool"
kind = "contrast"
area = "lower-back"

[contrast]
heat_minutes = 1
cold_minutes = 1
cycles = 1
heat_celsius = 34
cold_celsius = 25
"""

_MASSAGE = """
name = "fault-massage"
title = "Five minutes of massage, lower back"
kind = "massage"
area = "lower-back"

[massage]
minutes = 5

[[massage.areas]]
name = "left-paraspinal"
seconds = 60

[[massage.areas]]
name = "right-paraspinal"
seconds = 60
"""

_PROBE_UNDER_HEAT_PAD = """
name = "probe under the heat pad"

[[device]]
key = "skin-probe"
placed_under = "heat-pad"
"""


@dataclass(frozen=True)
class Setup:
    """How one column's session is run and when its fault is sent."""

    profile: str
    roles: tuple[str, ...]
    mode: str  # the phase that is the column
    speed: float = 1.0
    scenario: str | None = None
    at_once: bool = False  # the fault as the phase is announced (between), not LEAD_S into it


SETUPS: dict[Column, Setup] = {
    "preheat": Setup(
        _PREHEAT,
        ("--heat", HEAT_PAD, "--probe", SKIN_PROBE),
        "preheat",
        scenario=_PROBE_UNDER_HEAT_PAD,
    ),
    "heat": Setup(
        _HEAT, ("--heat", HEAT_PAD, "--probe", SKIN_PROBE), "heat", scenario=_PROBE_UNDER_HEAT_PAD
    ),
    "cold": Setup(
        _CONTRAST,
        ("--heat", CONTRAST_PAD, "--cold", CONTRAST_PAD, "--probe", SKIN_PROBE),
        "cold",
        speed=SCALED_SPEED,
    ),
    "massage": Setup(_MASSAGE, ("--gun", MASSAGE_GUN), "massage"),
    "between": Setup(
        _CONTRAST,
        ("--heat", CONTRAST_PAD, "--cold", CONTRAST_PAD, "--probe", SKIN_PROBE),
        "cold",
        speed=SCALED_SPEED,
        at_once=True,
    ),
}


def lease_bound_s(speed: float) -> float:
    """H4 in real seconds: at most 5 s of device time (never less than a simulated device's
    real-time floor under a scaled clock)."""
    return LEASE_MAX_S if speed == 1 else max(LEASE_MAX_S / speed, LEASE_REAL_FLOOR_S)


# --- reading a child's output ---------------------------------------------------------------


class Pipe:
    """A child's stdout or stderr, read line by line on a thread; each line is stamped with
    ``time.monotonic()`` as it arrives (and parsed, when it is a JSON object)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: list[tuple[float, str]] = []
        self._objects: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(stream.readline, b""):
                stamp = time.monotonic()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                obj = _json_object(line)
                with self._lock:
                    self._lines.append((stamp, line))
                    if obj is not None:
                        self._objects.append((stamp, obj))

    def lines(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines())

    def objects(self) -> list[tuple[float, dict[str, Any]]]:
        """The lines that are JSON objects, with their stamps."""
        with self._lock:
            return list(self._objects)

    def drain(self, timeout_s: float = 2.0) -> None:
        """Wait for the last lines of a child that has ended."""
        self._thread.join(timeout_s)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    out: Pipe
    err: Pipe

    @property
    def pid(self) -> int:
        return self.popen.pid

    def ended(self) -> bool:
        return self.popen.poll() is not None

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def last_error_line(self) -> str:
        lines = [line for _, line in self.err.lines() if line.strip()]
        return lines[-1].strip() if lines else ""


def _end(child: Child) -> None:
    """Whatever the cell left: continued if stopped, SIGTERM, then SIGKILL if it lingers."""
    if child.ended():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGCONT)
        child.popen.send_signal(signal.SIGTERM)
    if child.wait(10.0) is None:
        child.popen.kill()
        child.popen.wait()


class Processes:
    """The processes of one cell; every one is ended when the cell is done (last first)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self._stack = contextlib.ExitStack()
        self._children: list[Child] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stack.close()
        finally:
            self._keep()

    def _keep(self) -> None:
        """Every child's output, stamped, in the cell's directory (to read a failure again)."""
        for child in self._children:
            for what, pipe in (("out", child.out), ("err", child.err)):
                pipe.drain(1.0)
                text = "".join(f"{stamp:.3f} {line}\n" for stamp, line in pipe.lines())
                (self.cwd / f"{child.name}.{what}").write_text(text)

    def start(self, name: str, command: Sequence[str]) -> Child:
        popen = subprocess.Popen(  # noqa: S603 - relieve itself, with arguments of this script
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.cwd,
            env=self.env,
        )
        if popen.stdout is None or popen.stderr is None:  # pragma: no cover - both are pipes
            raise CellError(f"{name}: no pipes")
        child = Child(name, popen, Pipe(popen.stdout), Pipe(popen.stderr))
        self._stack.callback(_end, child)
        self._children.append(child)
        return child

    def later(self, callback: Callable[[], None]) -> None:
        self._stack.callback(callback)

    def relieve(self, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - relieve itself, with arguments of this script
            [RELIEVE, "--data-dir", str(data), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=self.env,
            timeout=60,
            check=False,
        )


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float) -> float:
    """Poll ``predicate`` until true (returns the monotonic time it was seen); CellError after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() >= deadline:
            raise CellError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.01)


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Like :func:`wait_for`, but False at the time-out."""
    try:
        wait_for(predicate, "", timeout_s)
    except CellError:
        return False
    return True


# --- the devices' own account ---------------------------------------------------------------


def _driving(state: dict[str, Any]) -> bool:
    """The output is ON: reported ON, or a heater or cooler really energised (a stuck one
    reports OFF). A gun's drive is its reported state: its motor coasts down after OFF."""
    if state.get("on"):
        return True
    return bool(state.get("energised")) and state.get("output") != "percussion"


def _moving(state: dict[str, Any]) -> bool:
    """The output is ON or still energised (a gun's motor still turning)."""
    return bool(state.get("on")) or bool(state.get("energised"))


Predicate = Callable[[dict[str, Any]], bool]


class Devices:
    """What ``relieve sim serve --events-json`` said, read as the cell goes."""

    def __init__(self, pipe: Pipe, speed: float) -> None:
        self.pipe = pipe
        self.speed = speed

    def states(self) -> list[tuple[float, dict[str, Any]]]:
        return [
            (stamp, obj)
            for stamp, obj in self.pipe.objects()
            if "device" in obj and obj.get("output") != "probe"
        ]

    def on_now(self, which: Predicate = _driving) -> set[str]:
        """The outputs whose latest report is ON (by ``which``)."""
        return self.on_at(math.inf, which)

    def on_at(self, stamp: float, which: Predicate = _driving) -> set[str]:
        latest: dict[str, dict[str, Any]] = {}
        for seen, state in self.states():
            if seen > stamp:
                break
            latest[str(state["device"])] = state
        return {key for key, state in latest.items() if which(state)}

    def turned_on_after(self, stamp: float) -> list[dict[str, Any]]:
        """Lines after ``stamp`` that switch an output ON that was OFF before."""
        latest: dict[str, bool] = {}
        found = []
        for seen, state in self.states():
            key = str(state["device"])
            driving = _moving(state)
            if seen > stamp and driving and not latest.get(key, False):
                found.append(state)
            latest[key] = driving
        return found

    def all_off_since(self, which: Predicate = _driving) -> float | None:
        """The stamp of the line from which every output has stayed OFF (by ``which``; None:
        one is ON now; 0.0 when nothing was ever ON)."""
        latest: dict[str, bool] = {}
        since: float | None = 0.0
        for seen, state in self.states():
            was_on = any(latest.values())
            latest[str(state["device"])] = which(state)
            if any(latest.values()):
                since = None
            elif was_on and since is None:
                since = seen
        return since

    def device_offset(self) -> float:
        """speed * stamp - t, at its least: the server clock's zero on the stamps' scale."""
        pairs = [(s, float(o["t"])) for s, o in self.pipe.objects() if "t" in o and "device" in o]
        if not pairs:
            return 0.0
        return min(self.speed * s - t for s, t in pairs)

    def delivered_s(self, zero: float | None, end: float) -> float:
        """ON time (``on`` true) in device seconds from therapy time zero (a stamp) to ``end``;
        nothing before time zero (pre-heat is not therapy: the person puts the pad on at 0)."""
        return 0.0 if zero is None else self.on_seconds(zero, end)

    def on_seconds(self, start: float, end: float) -> float:
        """ON time (``on`` true) in device seconds between two stamps."""
        offset = self.device_offset()
        t_start = self.speed * start - offset
        t_end = self.speed * end - offset
        total = 0.0
        since: dict[str, float] = {}
        for _, state in self.states():
            key = str(state["device"])
            t = float(state["t"])
            if state.get("on"):
                since.setdefault(key, t)
            elif key in since:
                total += max(0.0, min(t, t_end) - max(since.pop(key), t_start))
        for started in since.values():
            total += max(0.0, t_end - max(started, t_start))
        return total


# --- what relieve said ------------------------------------------------------------------------


class Events:
    """The session's ``--json`` event lines (of ``relieve run``, in-process or a daemon's
    client)."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def all(self) -> list[tuple[float, dict[str, Any]]]:
        return [(s, o) for s, o in self.pipe.objects() if "type" in o]

    def phase(self, mode: str) -> float | None:
        for stamp, event in self.all():
            if event["type"] == "phase" and event.get("mode") == mode:
                return stamp
        return None

    def time_zero(self) -> float | None:
        for stamp, event in self.all():
            if event["type"] == "state" and event.get("state") == "running":
                return stamp
        return None

    def finished(self) -> dict[str, Any] | None:
        for _, event in self.all():
            if event["type"] == "finished":
                return event
        return None

    def after(self, stamp: float) -> list[tuple[float, dict[str, Any]]]:
        return [(s, e) for s, e in self.all() if s > stamp]


def console_line(finished: dict[str, Any]) -> str:
    """The line ``relieve run`` without ``--json`` ends with, for this finished event: relieve's
    own console view renders it."""
    try:
        event = event_from_json(finished)
    except EventDecodeError as exc:
        return f"(an undecodable finished event: {exc})"
    if not isinstance(event, Finished):
        return ""
    out = io.StringIO()
    LiveView(out, tty=False)(event)
    return out.getvalue().strip()


def _history(procs: Processes, data: Path) -> list[dict[str, Any]]:
    done = procs.relieve(data, "history", "--simulated", "--json")
    if done.returncode != 0:
        raise CellError(f"relieve history failed ({done.returncode}): {done.stderr.strip()}")
    sessions = json.loads(done.stdout)
    if not isinstance(sessions, list):
        raise CellError("relieve history --json did not print a list")
    return [s for s in sessions if isinstance(s, dict)]


def _from_history(cell: Cell, sessions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if len(sessions) != 1:
        cell.problems.append(f"the history holds {len(sessions)} sessions, not 1")
        return None
    session = sessions[0]
    cell.outcome = str(session.get("outcome", ""))
    exposure = session.get("exposure_seconds") or {}
    cell.recorded_s = round(sum(float(v) for v in exposure.values()), 3)
    return session


# --- one cell ---------------------------------------------------------------------------------


@dataclass
class Rig:
    """One cell's directories, processes and the simulator server's account."""

    row: str
    column: Column
    setup: Setup
    home: Path  # the cell's directory under workdir
    short: Path  # where sockets (and the data directory) go: a short path
    procs: Processes
    quick: bool
    data: Path = field(init=False)
    config: Path = field(init=False)
    profile: Path = field(init=False)
    spec: str = ""

    def __post_init__(self) -> None:
        self.data = self.short / "d"
        self.config = self.home / "config"
        (self.config / "profiles").mkdir(parents=True, exist_ok=True)
        self.profile = self.home / "profile.toml"
        self.profile.write_text(self.setup.profile)

    @property
    def speed(self) -> float:
        return self.setup.speed

    @property
    def lead_s(self) -> float:
        return LEAD_QUICK_S if self.quick else LEAD_S

    def speed_args(self) -> list[str]:
        return [] if self.speed == 1 else ["--speed", f"{self.speed:g}"]

    def sim_server(self) -> Devices:
        """``relieve sim serve --events-json``, once it says it is ready."""
        command = [RELIEVE, "sim", "serve", "--socket", str(self.short / "sim.sock")]
        command.append("--events-json")
        if self.setup.scenario is not None:
            scenario = self.home / "scenario.toml"
            scenario.write_text(self.setup.scenario)
            command += ["--scenario", str(scenario)]
        server = self.procs.start("sim", [*command, *self.speed_args()])
        marker = "(connect with --simulator "

        def ready() -> bool:
            if server.ended():
                raise CellError(f"relieve sim serve ended: {server.last_error_line()}")
            return marker in server.err.text()

        wait_for(ready, "relieve sim serve", READY_S)
        self.spec = server.err.text().split(marker, 1)[1].split(")", 1)[0]
        return Devices(server.out, self.speed)

    def run(self, *radio: str) -> tuple[Child, Events]:
        """``relieve run PROFILE ROLES --yes --json`` (with ``radio``; none through a daemon)."""
        command = [RELIEVE, "--data-dir", str(self.data), "run", str(self.profile), *radio]
        child = self.procs.start("run", [*command, *self.setup.roles, "--yes", "--json"])
        return child, Events(child.out)

    def fault_note(self) -> str:
        if self.setup.at_once:
            return "fault as the controller announced the switch from heat to cold"
        return f"fault {self.lead_s:g} s into {self.setup.mode}, with the output reported ON"

    def reach(self, run: Child, events: Events, devices: Devices) -> float:
        """Wait until the session is in the column; the monotonic time to send the fault at."""
        mode = self.setup.mode
        plan_wait = 60.0 / self.speed if mode == "cold" else 0.0  # a contrast's minute of heat

        def in_column() -> bool:
            if run.ended():
                raise CellError(
                    f"relieve run ended before the {mode} phase: "
                    f"{run.last_error_line() or run.popen.returncode}"
                )
            if events.phase(mode) is None:
                return False
            return self.setup.at_once or bool(devices.on_now())

        seen = wait_for(in_column, f"the {mode} phase", REACH_S + plan_wait)
        if self.setup.at_once:
            return seen
        time.sleep(self.lead_s)
        if mode == "preheat" and events.phase("heat") is not None:
            raise CellError("pre-heat ended before the fault was sent")
        if not devices.on_now():
            raise CellError(f"no output was ON {self.lead_s:g} s into the {mode} phase")
        return time.monotonic()


def _expected_outcome(cell: Cell, wanted: Sequence[str]) -> None:
    if cell.outcome not in wanted:
        cell.problems.append(f"outcome {cell.outcome!r}, expected {' or '.join(wanted)}")


def _measure_off(cell: Cell, devices: Devices, fault: float) -> None:
    """off_after_s and left_on, from the devices' lines. A gun's drive is OFF when it reports
    OFF; its motor must then report standstill within its spin-down (SPIN_DOWN_S)."""
    wait_until(lambda: not devices.on_now(_moving), SPIN_DOWN_S + 1.0)
    on = devices.on_now(_moving)
    cell.left_on = bool(on)
    if on:
        cell.off_after_s = None
        cell.notes = _join(cell.notes, f"still ON at the end: {', '.join(sorted(on))}")
        return
    since = devices.all_off_since()
    if since is None or since <= fault:
        cell.off_after_s = None
        cell.notes = _join(cell.notes, "no output was ON at the fault or after it")
        return
    cell.off_after_s = round(since - fault, 3)
    still = devices.all_off_since(_moving)
    if still is not None and still > since:
        cell.notes = _join(
            cell.notes, f"the gun's motor reported standstill {still - fault:.2f} s after the fault"
        )
        if still - since > SPIN_DOWN_S:
            cell.problems.append(
                f"the gun's motor turned {still - since:.2f} s after its OFF (spin-down "
                f"allowance {SPIN_DOWN_S:g} s)"
            )


def _at_fault(devices: Devices, fault: float) -> str:
    """What the outputs were doing when the fault was sent (for the between column)."""
    latest: dict[str, dict[str, Any]] = {}
    for seen, state in devices.states():
        if seen > fault:
            break
        latest[str(state["device"])] = state
    on = [f"{key} ON in {state.get('mode')}" for key, state in latest.items() if _driving(state)]
    return "at the fault: " + (", ".join(on) if on else "every output OFF")


def _delivered(cell: Cell, devices: Devices, events: Events, end: float) -> None:
    """delivered_s: the devices' ON time from therapy time zero; pre-heat's in the notes."""
    zero = events.time_zero()
    cell.delivered_s = round(devices.delivered_s(zero, end), 3)
    before = devices.on_seconds(-math.inf, end if zero is None else zero)
    if before >= 0.05:  # less is rounding
        cell.notes = _join(
            cell.notes,
            f"ON {before:.1f} s before therapy time zero (pre-heat: not therapy, not recorded)",
        )


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _speed_note(rig: Rig) -> str:
    if rig.speed == 1:
        return "real time (x1)"
    return (
        f"x{rig.speed:g} on the simulator and the controller, to reach the {rig.setup.mode} "
        "phase after the contrast's minute of heat; the bound is 5 s of device time"
    )


def _exited(cell: Cell, run: Child, after: float, since: str) -> None:
    """Wait for ``relieve run`` to end; note when (a problem when it does not)."""
    code = run.wait(END_S)
    if code is None:
        cell.problems.append(f"relieve run did not end within {END_S:g} s of {since}")
        return
    took = time.monotonic() - after
    cell.notes = _join(cell.notes, f"relieve run exited {code} {took:.2f} s after {since}")


# --- the controller rows --------------------------------------------------------------------


def _sigkill(cell: Cell, run: Child, devices: Devices, lease: float) -> None:
    cell.bound_s = round(lease, 3)
    cell.expected = (
        "the link ends with the process, so the open-profile device turns OFF at once "
        f"(at the latest its lease, H4: {lease:g} s); history: interrupted (S3)"
    )
    os.kill(run.pid, signal.SIGKILL)
    run.wait(END_S)
    wait_until(lambda: not devices.on_now(), lease + 5.0)
    time.sleep(SETTLE_S)


def _sigterm(cell: Cell, run: Child, devices: Devices, fault: float) -> None:
    cell.bound_s = OFF_TIMEOUT_S
    cell.expected = (
        f"relieve stops the session: every output OFF within {OFF_TIMEOUT_S:g} s "
        "(OFF_TIMEOUT_S), outcome stopped"
    )
    os.kill(run.pid, signal.SIGTERM)
    _exited(cell, run, fault, "SIGTERM")
    wait_until(lambda: not devices.on_now(), OFF_TIMEOUT_S + 5.0)
    time.sleep(SETTLE_S)


def _sigstop(cell: Cell, run: Child, devices: Devices, lease: float) -> None:
    cell.bound_s = round(lease, 3)
    cell.expected = (
        f"while relieve is stopped the device's lease turns it OFF (H4: {lease:g} s); after "
        "SIGCONT nothing goes back ON without the person; unattended, the session ends "
        "aborted (S2)"
    )
    os.kill(run.pid, signal.SIGSTOP)
    try:
        time.sleep(STOP_S)
        on_while_stopped = devices.on_now()
    finally:
        os.kill(run.pid, signal.SIGCONT)
    continued = time.monotonic()
    if on_while_stopped:
        cell.problems.append(
            f"still ON after {STOP_S:g} s of SIGSTOP: {', '.join(sorted(on_while_stopped))}"
        )
    _exited(cell, run, continued, "SIGCONT")
    time.sleep(SETTLE_S)
    back_on = devices.turned_on_after(continued)
    if back_on:
        cell.problems.append(
            f"switched back ON after SIGCONT: {back_on[0]['device']} at device t={back_on[0]['t']}"
        )


def _controller_cell(rig: Rig, cell: Cell) -> float:
    """sigkill, sigterm, sigstop: ``relieve run`` against ``relieve sim serve``. Returns the
    monotonic time the observation ended."""
    row = rig.row
    devices = rig.sim_server()
    run, events = rig.run("--simulator", rig.spec, *rig.speed_args())
    lease = lease_bound_s(rig.speed)
    fault = rig.reach(run, events, devices)
    cell.notes = _join(cell.notes, rig.fault_note())
    on_at_fault = devices.on_at(fault)
    if rig.setup.at_once:
        cell.notes = _join(cell.notes, _at_fault(devices, fault))
    if row == "sigkill":
        _sigkill(cell, run, devices, lease)
    elif row == "sigterm":
        _sigterm(cell, run, devices, fault)
    else:
        _sigstop(cell, run, devices, lease)
    run.out.drain()
    _measure_off(cell, devices, fault)
    if not on_at_fault and cell.off_after_s is None and not cell.left_on:
        cell.problems.append("no output was ON at the fault: the cell measured nothing")
    end = time.monotonic()
    session = _from_history(cell, _history(rig.procs, rig.data))
    _delivered(cell, devices, events, end)
    finished = events.finished()
    cell.claimed_off = None if finished is None else bool(finished.get("devices_off"))
    if row == "sigkill":
        _expected_outcome(cell, ("interrupted",))
        alarms = [] if session is None else session.get("alarms") or []
        s3 = [str(a.get("message", "")) for a in alarms if a.get("limit") == "S3"]
        cell.sentence = s3[0] if s3 else ""
        cell.notes = _join(
            cell.notes,
            "told: the S3 line `relieve history` shows under the session (a killed process "
            "prints nothing; the history is where the person reads what happened)",
        )
        return end
    _expected_outcome(cell, ("stopped",) if row == "sigterm" else ("aborted",))
    if finished is None:
        cell.problems.append("relieve run printed no finished event")
    else:
        cell.sentence = console_line(finished)
        if not finished.get("devices_off"):
            cell.problems.append("relieve did not confirm every device OFF")
    cell.notes = _join(
        cell.notes,
        "told: the closing line of `relieve run` (its console view of the finished event)",
    )
    return end


# --- the daemon rows ------------------------------------------------------------------------


@dataclass
class Node:
    """A daemon's cell: the simulator server, the broker (broker-loss only), the daemon and
    the ``relieve run`` that asked it for the session."""

    rig: Rig
    devices: Devices
    serve: Child
    run: Child
    events: Events
    broker: Broker | None


def _start_node(rig: Rig) -> Node:
    devices = rig.sim_server()
    broker: Broker | None = None
    if rig.row == "broker-loss":
        broker = Broker(rig.home / "broker")
        broker.start()
        rig.procs.later(broker.stop)
        (rig.config / "config.toml").write_text(broker.mqtt_toml(node=NODE))
    command = [RELIEVE, "--data-dir", str(rig.data), "serve", "--simulator", rig.spec]
    serve = rig.procs.start("serve", [*command, *rig.speed_args()])
    socket_file = rig.data / "relieve.sock"

    def listening() -> bool:
        if serve.ended():
            raise CellError(f"relieve serve ended: {serve.last_error_line()}")
        log = serve.err.text()
        connected = broker is None or log.count("MQTT: connected") >= 1
        return socket_file.exists() and "serving" in log and connected

    wait_for(listening, "relieve serve", READY_S)
    run, events = rig.run()
    return Node(rig, devices, serve, run, events, broker)


def _daemon_cell(rig: Rig, cell: Cell) -> float:
    """daemon-killed, broker-loss: ``relieve serve`` runs the session ``relieve run`` asked
    for. Returns the monotonic time the observation ended."""
    node = _start_node(rig)
    fault = rig.reach(node.run, node.events, node.devices)
    cell.notes = _join(cell.notes, rig.fault_note())
    if rig.setup.at_once:
        cell.notes = _join(cell.notes, _at_fault(node.devices, fault))
    if node.broker is not None:
        end = _broker_loss(cell, node, fault)
    else:
        end = _daemon_killed(cell, node, fault)
    _delivered(cell, node.devices, node.events, end)
    return end


def _daemon_killed(cell: Cell, node: Node, fault: float) -> float:
    lease = lease_bound_s(node.rig.speed)
    cell.bound_s = round(lease, 3)
    cell.expected = (
        "the daemon's links end with it: every output OFF at once (at the latest its lease, "
        f"H4: {lease:g} s); relieve run says so in one sentence; history: interrupted (S3)"
    )
    os.kill(node.serve.pid, signal.SIGKILL)
    node.serve.wait(END_S)
    wait_until(lambda: not node.devices.on_now(), lease + 5.0)
    code = node.run.wait(END_S)
    if code is None:
        cell.problems.append(f"relieve run did not end within {END_S:g} s of the kill")
    elif code == 0:
        cell.problems.append("relieve run exited 0 although its daemon was killed")
    time.sleep(SETTLE_S)
    node.run.err.drain()
    _measure_off(cell, node.devices, fault)
    end = time.monotonic()
    _from_history(cell, _history(node.rig.procs, node.rig.data))
    _expected_outcome(cell, ("interrupted",))
    cell.sentence = node.run.last_error_line()
    finished = node.events.finished()
    if finished is not None:
        cell.claimed_off = bool(finished.get("devices_off"))
    cell.notes = _join(
        cell.notes,
        f"relieve run exited {code}; told: what relieve run printed when its daemon vanished",
    )
    return end


def _broker_loss(cell: Cell, node: Node, fault: float) -> float:
    broker, devices, events = node.broker, node.devices, node.events
    if broker is None:
        raise CellError("no broker for the broker-loss row")
    cell.bound_s = OFF_TIMEOUT_S
    cell.expected = (
        "MQTT is not in the safety loop: the session goes on without a pause; the bridge "
        "reconnects when the broker is back; a stop sent over MQTT then ends it with every "
        f"output OFF (within {OFF_TIMEOUT_S:g} s)"
    )
    broker.kill()
    outage = OUTAGE_QUICK_S if node.rig.quick else OUTAGE_S
    time.sleep(outage)
    troubles = [
        e
        for _, e in events.after(fault)
        if e["type"] in ("alarm", "finished")
        or (e["type"] == "state" and e.get("state") in ("paused", "link-lost"))
    ]
    if troubles:
        cell.problems.append(f"the broker's loss touched the session: {troubles[0]}")
    if not devices.on_now():
        cell.problems.append(f"no output ON {outage:g} s into the broker's absence")
    later = events.after(fault)
    if later:
        cell.resumed_after_s = round(later[0][0] - fault, 3)
    else:
        cell.problems.append("the session sent no event while the broker was away")
    restarted = time.monotonic()
    broker.start()
    connected = wait_for(
        lambda: node.serve.err.text().count("MQTT: connected") >= 2,
        "the bridge to reconnect",
        RECONNECT_S,
    )
    notes = [
        f"resumed: the first session event after the broker's kill; broker away {outage:g} s, "
        f"the bridge reconnected {connected - restarted:.2f} s after it was back"
    ]
    if events.finished() is None:
        notes.append(_stop_over_mqtt(cell, broker, devices, events))
    else:
        notes.append("the session ended by itself before a stop was needed")
    code = node.run.wait(END_S)
    time.sleep(SETTLE_S)
    end = time.monotonic()
    wait_until(lambda: not devices.on_now(_moving), SPIN_DOWN_S + 1.0)
    cell.left_on = bool(devices.on_now(_moving))
    cell.off_after_s = None
    _from_history(cell, _history(node.rig.procs, node.rig.data))
    _expected_outcome(cell, ("stopped", "completed"))
    finished = events.finished()
    if finished is None:
        cell.problems.append("relieve run printed no finished event")
    else:
        cell.claimed_off = bool(finished.get("devices_off"))
        cell.sentence = console_line(finished)
        if not cell.claimed_off:
            cell.problems.append("relieve did not confirm every device OFF")
    notes.append(
        f"relieve run exited {code}; told: the closing line of `relieve run` (the broker's "
        "loss itself is only in the daemon's log)"
    )
    cell.notes = _join(cell.notes, *notes)
    return end


def _stop_over_mqtt(cell: Cell, broker: Broker, devices: Devices, events: Events) -> str:
    """``cmd/stop`` over the broker; the session must end with every output OFF in time."""
    sent = time.monotonic()
    answer = asyncio.run(_mqtt_stop(broker))
    wait_for(lambda: events.finished() is not None, "the session to end", END_S)
    wait_until(lambda: not devices.on_now(), OFF_TIMEOUT_S + 5.0)
    note = f"stop over MQTT answered {answer}"
    since = devices.all_off_since()
    if since is not None and since > sent:
        off = since - sent
        note += f", every output OFF {off:.2f} s after it was sent"
        if off > OFF_TIMEOUT_S:
            cell.problems.append(f"OFF {off:.2f} s after the MQTT stop (bound {OFF_TIMEOUT_S:g} s)")
    return note


async def _mqtt_stop(broker: Broker) -> str:
    """Send ``cmd/stop`` to the node; its answer on ``cmd/result``."""
    async with broker.client() as client:
        await client.subscribe(f"relieve/{NODE}/cmd/result", qos=1)
        await client.publish(f"relieve/{NODE}/cmd/stop", b"{}", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | bytearray):
                    return payload.decode("utf-8", "replace")
    return "nothing"


# --- the matrix's entry point -----------------------------------------------------------------


@contextlib.contextmanager
def _short_dir(home: Path) -> Iterator[Path]:
    """``home``, or a short directory under the system's temporary directory when sockets in
    ``home`` would not fit a unix socket's path."""
    if len(str(home / "d" / "relieve.sock")) <= SOCKET_PATH_MAX:
        yield home
        return
    short = Path(tempfile.mkdtemp(prefix="rfp-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _environment(config: Path) -> dict[str, str]:
    env = {**os.environ, "RELIEVE_CONFIG_DIR": str(config)}
    env.pop("RELIEVE_DATA_DIR", None)
    return env


def run_cell(row: str, column: Column, *, workdir: Path, quick: bool = False) -> Cell:
    """One real-time cell, in its own directory under ``workdir``."""
    if row not in PROCESS_ROWS:
        raise ValueError(f"{row!r} is not a real-time row; these are {', '.join(PROCESS_ROWS)}")
    started = time.monotonic()
    home = workdir / f"{row}-{column}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    setup = SETUPS[column]
    cell = Cell(row, column, off_clock="real")
    with _short_dir(home) as short, Processes(_environment(home / "config"), home) as procs:
        rig = Rig(row, column, setup, home, short, procs, quick)
        try:
            if row in ("daemon-killed", "broker-loss"):
                _daemon_cell(rig, cell)
            else:
                _controller_cell(rig, cell)
        except (CellError, BrokerError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            cell.problems.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
            cell.expected = cell.expected or "(the cell could not be measured)"
        cell.notes = _join(cell.notes, _speed_note(rig))
    cell.wall_s = round(time.monotonic() - started, 2)
    return cell


def run_process_cells(
    rows: Sequence[str], columns: Sequence[Column], *, workdir: Path, quick: bool = False
) -> list[Cell]:
    """Every (row, column) of the real-time rows asked for, one at a time."""
    unknown = [r for r in rows if r not in PROCESS_ROWS]
    if unknown:
        raise ValueError(f"not real-time rows: {', '.join(unknown)}")
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        run_cell(row, column, workdir=workdir, quick=quick) for row in rows for column in columns
    ]


# --- alone ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--row", action="append", choices=PROCESS_ROWS, help="repeatable")
    parser.add_argument(
        "--column", action="append", choices=[c for c, _ in COLUMNS], help="repeatable"
    )
    parser.add_argument("--quick", action="store_true", help="shorter leads and outage")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--workdir", type=Path, help="keep every cell's files here")
    args = parser.parse_args(argv)
    rows: list[str] = args.row or list(PROCESS_ROWS)
    columns: list[Column] = args.column or [c for c, _ in COLUMNS]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cells = run_process_cells(rows, columns, workdir=workdir, quick=args.quick)
    wall = time.monotonic() - started
    totals = summary(cells)
    if args.json:
        print(
            json.dumps(
                {
                    "cells": [c.to_json() for c in cells],
                    "summary": totals,
                    "wall_s": round(wall, 1),
                },
                indent=2,
                allow_nan=False,
            )
        )
    else:
        titles = {r.key: r.title for r in ROWS}
        header = (
            "# Fault matrix: the real-time rows\n\n"
            f"{', '.join(titles[r] for r in rows)}; {totals['passed']} of "
            f"{totals['applicable']} cells pass; {wall:.0f} s in all."
        )
        print(render_markdown(cells, header=header))
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
