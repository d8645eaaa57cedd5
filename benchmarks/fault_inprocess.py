"""The fault matrix's virtual-clock rows: a real session per cell, a fault, and what the device saw.

Each cell runs one whole session through the real code -- the :class:`SessionRunner` and its
supervisor, the drivers, the simulated bleak backend and the simulated devices on the
in-process radio -- on a :class:`VirtualClock` (``tests/session_harness.py``'s bench), injects
one fault (``simulators/faults.py``; for the ledger rows another process's write lock or a full
disk) at the column's moment, and measures from the simulated devices' own snapshots:

* when every output was OFF after the fault (clock seconds), or when the session went on again;
* the ON time the devices report during therapy (after time zero) against the exposure the
  ledger holds for the session;
* the outcome, what the person was told, and whether relieve claimed every device OFF.

The columns: ``preheat`` 5 s into pre-heat, ``heat`` / ``cold`` 30 s into that phase of a
one-cycle contrast on the contrast pad (with the skin probe under it), ``massage`` 30 s into
the first area of a five-minute massage on the open-profile gun, ``between`` at the switch from
heat to cold: as the cold phase is announced, while the heat is still ON and before the cold
START (the ledger faults a second before it, so that the switch's own records meet them).

Library code: ``benchmarks/fault_matrix.py`` runs it and prints the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fault_cells import ROWS, Cell, Column
from controller.cli.console import LiveView
from controller.ledger.allowances import delivered_seconds
from controller.ledger.records import SessionRecord
from controller.ledger.writer import LEDGER_STALL_LIMIT_S
from controller.session.events import Alarm, Event, Finished, Notice, PhaseChanged, StateChanged
from controller.session.runner import HEARTBEAT_S, OFF_TIMEOUT_S
from controller.session.schedule import build_schedule
from controller.session.supervisor import (
    CHECK_INTERVAL_S,
    LINK_GRACE_S,
    OVER_TEMPERATURE_MARGIN_C,
    TELEMETRY_STALL_S,
)
from profiles.limits import HARD
from simulators.devices.state import DeviceState
from simulators.faults import (
    AttErrorFault,
    BatteryDies,
    DelayNotifications,
    DropNotifications,
    FaultSpec,
    RefuseConnections,
    SensorDrift,
    SensorNan,
    StuckHeater,
)
from tests.session_harness import CONTRAST_MINI, MASSAGE_MINI, Bench, bench, file_size_limit

__all__ = [
    "VIRTUAL_ROWS",
    "run_inprocess_cell",
    "run_inprocess_cells",
]

VIRTUAL_ROWS: tuple[str, ...] = tuple(r.key for r in ROWS if r.where == "virtual")
"""The rows this module measures."""

PAD = "contrast-pad"
PROBE = "skin-probe"
GUN = "massage-gun"

# One contrast cycle of 67.5 s heat and 67.5 s cold at 42 / 12 degC: the switch to cold falls
# between two lease renewals (they come every whole second of the pad's ON time), so a fault
# injected at the switch meets the cold START first.
CONTRAST_CELL = CONTRAST_MINI.replace("_minutes = 2", "_minutes = 1.125")
CONTRAST_HEAT_S = 67.5
MASSAGE_CELL = MASSAGE_MINI

PREHEAT_AT_S = 5.0  # clock seconds into pre-heat
PHASE_AT_S = 30.0  # clock seconds into heat, cold or the first massage area
LEDGER_BEFORE_SWITCH_S = 1.0  # the ledger faults of the "between" column: this long before it
# Real seconds another process holds the ledger's write lock (the ledger-locked row): long
# enough that the session meets it (a whole cell takes about a second of real time), well
# inside the stall limit after which a history that does not keep up ends the session.
LOCK_HOLD_S = 4.0
# The drifting sensor: a degree a clock second, towards the alarm line (fast enough that a
# reading starting from a plate still far from its setpoint crosses it within the phase).
DRIFT_C_PER_MIN = 60.0
BLIP_S = 4.0  # the link-disconnect row: the device is out of range this long (clock seconds)
AFTER_END_S = 10.0  # clock seconds watched after the end: nothing may come back ON
CELL_TIMEOUT_S = 120.0  # real seconds one cell may take before it is called hung

# --- the bounds: the product's own promises (docs/safety.md, docs/running.md) -------------------

# A lost link, or a lease renewal the device refused: relieve cannot switch the output, so the
# promise is the device's lease (H4, at most 5 s); the open profile also turns a running output
# OFF at once when its link drops.
LEASE_BOUND_S = HARD.lease_max_s
# A device report relieve acts on (a probe without a reading, a plate beyond its line): the next
# report comes within a clock second (S2 heartbeat <= 1 s), then every output OFF within
# OFF_TIMEOUT_S (S4).
REPORT_BOUND_S = 1.0 + OFF_TIMEOUT_S
# Telemetry that stops: "no telemetry for 5 s" (S2 watchdog), looked for every CHECK_INTERVAL_S,
# then every output OFF within OFF_TIMEOUT_S.
STALL_BOUND_S = TELEMETRY_STALL_S + CHECK_INTERVAL_S + OFF_TIMEOUT_S
# A history that cannot be written: the next record (a heartbeat every HEARTBEAT_S at most) fails,
# then every output OFF within OFF_TIMEOUT_S.
LEDGER_BOUND_S = HEARTBEAT_S + OFF_TIMEOUT_S


# --- where a fault strikes (the columns) ------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One column: the session it runs and the moment its fault strikes."""

    profile: str
    world: tuple[str, ...]
    roles: dict[str, str]
    outputs: tuple[str, ...]  # the devices whose outputs are measured
    trigger: Callable[[Event], bool]
    delay_s: float  # clock seconds after the trigger event
    words: str


def _phase(mode: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, PhaseChanged) and e.mode == mode


CONTRAST_ROLES = {"heat": PAD, "cold": PAD, "probe": PROBE}
CONTRAST_WORLD = (PAD, PROBE)


def _setting(column: Column, *, ledger: bool = False) -> Setting:
    if column == "massage":
        return Setting(
            MASSAGE_CELL,
            (GUN,),
            {"gun": GUN},
            (GUN,),
            _phase("massage"),
            PHASE_AT_S,
            f"{PHASE_AT_S:g} s into the first massage area",
        )
    if column == "preheat":
        trigger, delay, words = _phase("preheat"), PREHEAT_AT_S, f"{PREHEAT_AT_S:g} s into pre-heat"
    elif column == "heat":
        trigger, delay, words = _phase("heat"), PHASE_AT_S, f"{PHASE_AT_S:g} s into heat"
    elif column == "cold":
        trigger, delay, words = _phase("cold"), PHASE_AT_S, f"{PHASE_AT_S:g} s into cold"
    elif ledger:
        trigger, delay = _phase("heat"), CONTRAST_HEAT_S - LEDGER_BEFORE_SWITCH_S
        words = f"{LEDGER_BEFORE_SWITCH_S:g} s before the switch from heat to cold"
    else:
        trigger, delay, words = _phase("cold"), 0.0, "at the switch from heat to cold"
    return Setting(CONTRAST_CELL, CONTRAST_WORLD, CONTRAST_ROLES, (PAD,), trigger, delay, words)


# --- what goes wrong (the rows) ---------------------------------------------------------------


class Injector:
    """What a row does to the world at the fault's moment, and undoes after the session."""

    def strike(self, b: Bench) -> None:
        raise NotImplementedError

    def after(self, b: Bench) -> None:
        """Called once the session is over (also when it failed)."""

    def notes(self) -> list[str]:
        return []


@dataclass
class DeviceFault(Injector):
    key: str
    fault: FaultSpec

    def strike(self, b: Bench) -> None:
        b.world.inject(self.key, self.fault)


# Another process that takes the ledger's write lock, says so, and holds it.
_HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    print("released", flush=True)
    """
)


@dataclass
class LedgerLock(Injector):
    """Another process holds the ledger's SQLite write lock for ``hold_s`` real seconds."""

    hold_s: float = LOCK_HOLD_S
    holder: subprocess.Popen[str] | None = None
    taken_at: float | None = None  # perf_counter when the lock was held
    ended_at: float | None = None  # perf_counter when the session was over

    def strike(self, b: Bench) -> None:
        # Blocking here is harmless: virtual time does not move while the event loop waits.
        self.holder = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", _HOLD_LOCK, str(b.ledger.path), str(self.hold_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.holder.stdout is None:
            raise RuntimeError("the lock holder has no output to read")
        line = self.holder.stdout.readline()
        if line.strip() != "locked":
            raise RuntimeError(f"the lock holder did not take the lock: {line!r}")
        self.taken_at = time.perf_counter()

    def after(self, b: Bench) -> None:
        self.ended_at = time.perf_counter()
        if self.holder is None:
            return
        try:
            self.holder.communicate(timeout=self.hold_s + LEDGER_STALL_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.holder.kill()
            self.holder.communicate()

    def notes(self) -> list[str]:
        if self.taken_at is None:
            return ["the lock was never taken"]
        out = [
            f"another process held the write lock for {self.hold_s:g} s of real time; on the "
            "virtual clock, clock time stands still while the runner waits for a record it "
            "must have on disk (a new phase), so this cell shows that nothing is lost or left "
            "ON, not the timing of lease renewals (tests/test_ledger_failures.py measures that "
            "in real time)"
        ]
        if self.ended_at is not None:
            waited = self.ended_at - self.taken_at
            out.append(f"the session ended {waited:.1f} s of real time after the lock was taken")
        return out


@dataclass
class FullDisk(Injector):
    """The ledger's file cannot grow any more (the process's file-size limit): a full disk."""

    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def strike(self, b: Bench) -> None:
        wal = Path(f"{b.ledger.path}-wal")
        self.stack.enter_context(file_size_limit(wal.stat().st_size))

    def after(self, b: Bench) -> None:
        self.stack.close()


@dataclass(frozen=True)
class Case:
    """One applicable cell: the fault, what relieve must do, and the bound it keeps."""

    injector: Callable[[], Injector]
    outcomes: tuple[str, ...]  # the outcomes relieve may end with
    expected: str
    bound_s: float
    bound_why: str
    host_cannot_switch: bool = False
    resumes: bool = False  # the session is expected to go on (a short blip)


@dataclass(frozen=True)
class NotApplicable:
    why: str


_LINK_WHY = (
    f"bound {LEASE_BOUND_S:g} s: without a link relieve cannot switch anything, so the device's "
    "lease (H4, at most 5 s) is the promise"
)
_LEASE_WHY = (
    f"bound {LEASE_BOUND_S:g} s: a refused lease renewal leaves the output to its lease (H4, at "
    "most 5 s), which turns it OFF; a refused START switches nothing on"
)
_REPORT_WHY = (
    f"bound {REPORT_BOUND_S:g} s: the next report (at most 1 s, S2) and every output OFF within "
    f"{OFF_TIMEOUT_S:g} s (S4)"
)
_STALL_WHY = (
    f"bound {STALL_BOUND_S:g} s: no telemetry for {TELEMETRY_STALL_S:g} s (S2 watchdog, looked "
    f"for every {CHECK_INTERVAL_S:g} s) and every output OFF within {OFF_TIMEOUT_S:g} s"
)
_LEDGER_WHY = (
    f"bound {LEDGER_BOUND_S:g} s: the next record (a heartbeat every {HEARTBEAT_S:g} s) fails "
    f"and every output OFF within {OFF_TIMEOUT_S:g} s (S3)"
)
_NO_SENSOR = (
    "a massage session has no temperature sensor to fail: the gun measures speed, and no skin "
    "probe is used"
)
_NO_HEATER = "a massage gun has no heater or cooler that could stick on"


_THERMAL_ONLY = {
    "stuck-heater-loud": _NO_HEATER,
    "stuck-heater-silent": _NO_HEATER,
    "sensor-nan": _NO_SENSOR,
    "sensor-drift": _NO_SENSOR,
}


def _case(row: str, column: Column) -> Case | NotApplicable:
    """What cell (``row``, ``column``) does and expects, or why it does not apply."""
    if row not in VIRTUAL_ROWS:
        raise ValueError(f"not a virtual-clock row: {row!r}")
    if column == "massage" and row in _THERMAL_ONLY:
        return NotApplicable(_THERMAL_ONLY[row])
    if row.startswith("ledger-"):
        return _ledger_case(row)
    if row in _THERMAL_ONLY:
        return _thermal_case(row, column)
    return _link_case(row, GUN if column == "massage" else PAD)


def _link_case(row: str, output: str) -> Case:
    """The faults of the link and of the device as a whole, on the output device."""
    match row:
        case "link-disconnect":
            return Case(
                lambda: DeviceFault(output, RefuseConnections(duration=BLIP_S, hide=True)),
                ("completed",),
                f"the link drops and the device is out of range for {BLIP_S:g} s: the output is "
                f"OFF while the link is down, and the session goes on once it is back (within "
                f"the {LINK_GRACE_S:g} s grace, S2)",
                LEASE_BOUND_S,
                _LINK_WHY,
                resumes=True,
            )
        case "refused-reconnection":
            return Case(
                lambda: DeviceFault(output, RefuseConnections(duration=60.0)),
                ("aborted",),
                "the link drops and every reconnection is refused for 60 s: paused, then "
                f"aborted once the {LINK_GRACE_S:g} s grace is over (unattended, S2)",
                LEASE_BOUND_S,
                _LINK_WHY,
            )
        case "notification-loss":
            return Case(
                lambda: DeviceFault(output, DropNotifications(duration=60.0)),
                ("aborted",),
                "every notification lost for 60 s: the watchdog pauses with every output OFF, "
                f"and the session is aborted once the {LINK_GRACE_S:g} s grace is over",
                STALL_BOUND_S,
                _STALL_WHY,
            )
        case "notification-delay":
            return Case(
                lambda: DeviceFault(output, DelayNotifications(duration=30.0, delay=8.0)),
                ("completed", "aborted"),
                "notifications 8 s late for 30 s: the watchdog sees the gap and pauses with every "
                "output OFF; the session may go on once telemetry flows again",
                STALL_BOUND_S,
                _STALL_WHY,
            )
        case "att-error":
            return Case(
                lambda: DeviceFault(output, AttErrorFault(count=1)),
                ("aborted",),
                "the next write is refused (ATT 0x0E): a refused renewal lets the lease run out "
                "(high alarm, H4), a refused START is a high alarm (S4); every output OFF",
                LEASE_BOUND_S,
                _LEASE_WHY,
            )
        case "battery-death":
            return Case(
                lambda: DeviceFault(output, BatteryDies()),
                ("aborted",),
                "the battery dies: the output stops, the link drops for good; paused, then "
                f"aborted once the {LINK_GRACE_S:g} s grace is over",
                LEASE_BOUND_S,
                _LINK_WHY,
            )
    raise ValueError(f"not a link or device row: {row!r}")


def _thermal_case(row: str, column: Column) -> Case:
    """The faults of the pad's output and of the temperature sensors."""
    match row:
        case "stuck-heater-silent" if column == "cold":
            return Case(
                lambda: DeviceFault(PAD, StuckHeater(silent=True)),
                ("completed",),
                "the pad's Peltier welded on in cold and the pad does not know it: while cold is "
                "ON a welded cooler cools as a working one does, so the cold runs to its end; "
                "after the final OFF the plate goes on cooling, and relieve says the pad did not "
                "turn OFF and does not claim every device OFF",
                0.0,
                "no OFF bound: relieve cannot switch a welded output",
                host_cannot_switch=True,
            )
        case "stuck-heater-loud" | "stuck-heater-silent":
            silent = row.endswith("silent")
            return Case(
                lambda: DeviceFault(PAD, StuckHeater(silent=silent)),
                ("aborted",),
                "the pad's output (in cold its Peltier) welded on"
                + (" and the pad does not know it" if silent else " (the pad flags it)")
                + ": relieve aborts, says so, and does not claim every device OFF",
                0.0,
                "no OFF bound: relieve cannot switch a welded output",
                host_cannot_switch=True,
            )
        case "sensor-nan":
            return Case(
                lambda: DeviceFault(PROBE, SensorNan()),
                ("aborted",),
                "the skin probe reads NaN: a high alarm (missing temperature, S4), every output "
                "OFF",
                REPORT_BOUND_S,
                _REPORT_WHY,
            )
        case "sensor-drift":
            cold = column in ("cold", "between")
            rate = -DRIFT_C_PER_MIN if cold else DRIFT_C_PER_MIN
            return Case(
                lambda: DeviceFault(PAD, SensorDrift(rate=rate)),
                ("aborted",),
                f"the pad's own sensor drifts {rate:+g} °C/min: a high alarm once it reads 3 °C "
                "beyond the setpoint (S4 / C4), every output OFF",
                REPORT_BOUND_S,
                "bound counted from the first report beyond the alarm line: " + _REPORT_WHY,
            )
    raise ValueError(f"not a pad or sensor row: {row!r}")


def _ledger_case(row: str) -> Case:
    """The faults of the exposure ledger."""
    match row:
        case "ledger-locked":
            return Case(
                LedgerLock,
                ("completed",),
                f"another process holds the ledger's write lock for {LOCK_HOLD_S:g} s (less than "
                f"the {LEDGER_STALL_LIMIT_S:g} s stall limit): the records wait on their own "
                "thread, the session goes on and everything is recorded",
                0.0,
                "no OFF is due: nothing stops",
            )
        case "ledger-write-failure":
            return Case(
                FullDisk,
                ("aborted",),
                "the disk is full: the next record fails, the session is aborted with every "
                "output OFF and says it is not recorded",
                LEDGER_BOUND_S,
                _LEDGER_WHY,
            )
    raise ValueError(f"not a ledger row: {row!r}")


# --- measuring --------------------------------------------------------------------------------


def _driving(state: DeviceState, *, reported: bool = False) -> bool:
    """Whether an output drives: it reports ON, or (a pad) its element is energised."""
    if state.output_on:
        return True
    return not reported and state.plate_c is not None and state.energised


def _on_seconds(
    history: Sequence[DeviceState], lo: float, hi: float, *, reported: bool = False
) -> float:
    """Clock seconds within [lo, hi] that the device's snapshots show it driving."""
    total = 0.0
    for i, state in enumerate(history):
        if not _driving(state, reported=reported):
            continue
        end = history[i + 1].time if i + 1 < len(history) else hi
        total += max(0.0, min(end, hi) - max(state.time, lo))
    return total


def _all_off_after(
    histories: dict[str, list[tuple[int, DeviceState]]], start: int
) -> tuple[int | None, bool]:
    """The index (into the bench's snapshots) of the first snapshot from ``start`` on after
    which no output drives (None: never), and whether any drove at ``start``."""
    current = {}
    for key, history in histories.items():
        before = [s for i, s in history if i < start]
        current[key] = _driving(before[-1]) if before else False
    was_on = any(current.values())
    if not was_on:
        return start, False
    later = sorted((i, key, s) for key, h in histories.items() for i, s in h if i >= start)
    for i, key, state in later:
        current[key] = _driving(state)
        if not any(current.values()):
            return i, True
    return None, True


def _first_on_after(histories: dict[str, list[tuple[int, DeviceState]]], start: int) -> int | None:
    """The index of the first snapshot from ``start`` on that shows an output driving."""
    found = [i for h in histories.values() for i, s in h if i >= start and _driving(s)]
    return min(found, default=None)


def _first_beyond_line(
    history: Sequence[DeviceState], start: float, setpoints: Mapping[str, float]
) -> float | None:
    """For a drifting pad sensor: the first snapshot after ``start`` whose reading is 3 °C
    beyond the setpoint of the mode it drives (or last drove)."""
    mode: str | None = None
    for state in history:
        if state.output_on and state.mode in setpoints:
            mode = state.mode
        if state.time < start or mode is None or state.sensor_c is None:
            continue
        reading, target = state.sensor_c, setpoints[mode]
        if math.isnan(reading):
            continue
        margin = OVER_TEMPERATURE_MARGIN_C
        if (mode == "heat" and reading > target + margin) or (
            mode == "cold" and reading < target - margin
        ):
            return state.time
    return None


def _one_line(text: str) -> bool:
    text = text.strip()
    return bool(text) and "\n" not in text and "\r" not in text and "Traceback" not in text


def _finished_line(finished: Finished) -> str:
    out = io.StringIO()
    LiveView(out, tty=False)(finished)
    line = out.getvalue().strip()
    # "  2:15  session completed; ..." without the clock in front
    return line.split("  ", 1)[-1].strip() if "  " in line else line


def _sentence(events: Sequence[Event], finished: Finished, fault_index: int) -> str:
    """What the person was told about the fault: the high alarm, the end's reason, a medium
    alarm after the fault, or else the line that closes the session."""
    after = events[fault_index:]
    highs = [e for e in after if isinstance(e, Alarm) and e.priority == "high"]
    if highs:
        return highs[0].message
    if finished.reason:
        return finished.reason
    mediums = [e for e in after if isinstance(e, Alarm)]
    if mediums:
        return mediums[0].message
    return _finished_line(finished)


async def run_inprocess_cell(row: str, column: Column, *, workdir: Path) -> Cell:
    """Run one cell (a whole session with its fault) and measure it."""
    started = time.perf_counter()
    case = _case(row, column)
    if isinstance(case, NotApplicable):
        return Cell(row, column, applies=False, why_not=case.why)
    cell = Cell(
        row,
        column,
        expected=f"{case.expected}; {case.bound_why}",
        bound_s=case.bound_s,
        host_cannot_switch=case.host_cannot_switch,
        off_clock="virtual",
    )
    try:
        await asyncio.wait_for(_measure(cell, case, column, workdir), CELL_TIMEOUT_S)
    except TimeoutError:
        cell.problems.append(f"the cell did not finish within {CELL_TIMEOUT_S:g} s of real time")
    except Exception as exc:  # noqa: BLE001 - a cell that cannot run is a failed cell, said so
        cell.problems.append(f"the cell could not run: {type(exc).__name__}: {exc}")
    cell.wall_s = round(time.perf_counter() - started, 3)
    return cell


@dataclass
class _Run:
    """What one session left behind, for the judge."""

    case: Case
    setting: Setting
    bench: Bench
    finished: Finished
    fault_clock: float  # clock time the fault struck (the end, when it never did)
    fault_event: int  # index into bench.events at the fault
    fault_seen: int  # index into bench.seen at the fault
    end_clock: float  # clock time of the end (Finished)
    final: dict[str, DeviceState]  # every output at the end
    later: dict[str, DeviceState]  # every output AFTER_END_S later
    session: SessionRecord | None
    setpoints: dict[str, float]
    plan_notices: frozenset[str]


def _cell_dir(workdir: Path, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A directory of its own for one cell, under ``workdir`` (created when missing)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=workdir, prefix=prefix)


async def _measure(cell: Cell, case: Case, column: Column, workdir: Path) -> None:
    setting = _setting(column, ledger=cell.row.startswith("ledger-"))
    injector = case.injector()
    with _cell_dir(workdir, f"{cell.row}-{column}-") as tmp:
        async with bench(Path(tmp), devices=setting.world) as b:
            await b.bind(**setting.roles)
            plan = b.plan_from(setting.profile)
            setpoints = {str(p.mode): p.celsius for p in plan.phases if p.celsius is not None}
            b.watch_world()
            struck: list[tuple[float, int, int]] = []  # clock, len(events), len(seen)

            def strike() -> None:
                struck.append((b.clock.now(), len(b.events), len(b.seen)))
                try:
                    injector.strike(b)
                except Exception as exc:  # noqa: BLE001 - said in the cell, which then fails
                    cell.problems.append(f"the fault could not be injected: {exc}")

            if setting.delay_s > 0:
                b.later(setting.trigger, setting.delay_s, strike)
            else:
                b.when(setting.trigger, strike)
            runner = b.runner(plan)
            try:
                finished = await b.run(runner)
            finally:
                injector.after(b)
            end_clock = b.clock.now()
            final = {key: b.world.device(key).state for key in setting.outputs}
            await b.clock.advance(AFTER_END_S)
            later = {key: b.world.device(key).state for key in setting.outputs}
            sessions = b.ledger.sessions()
            if not struck:
                cell.problems.append(
                    f"the fault never struck ({setting.words}): the session ended first"
                )
                struck.append((end_clock, len(b.events), len(b.seen)))
            fault_clock, fault_event, fault_seen = struck[0]
            run = _Run(
                case,
                setting,
                b,
                finished,
                fault_clock,
                fault_event,
                fault_seen,
                end_clock,
                final,
                later,
                sessions[0] if sessions else None,
                setpoints,
                frozenset(a.text for a in build_schedule(plan) if a.kind == "notice"),
            )
            notes = _judge(cell, run)
    cell.notes = "; ".join([*injector.notes(), *notes])


def _judge(cell: Cell, run: _Run) -> list[str]:
    """Fill ``cell`` from what the session left behind; the notes for the reader."""
    b, finished, case = run.bench, run.finished, run.case
    notes = [f"fault {run.setting.words}"]
    cell.outcome = finished.outcome
    cell.claimed_off = finished.devices_off
    if finished.outcome not in case.outcomes:
        cell.problems.append(
            f"expected the session to end {' or '.join(case.outcomes)}, it ended {finished.outcome}"
        )
    histories = {
        key: [(i, seen.state) for i, seen in enumerate(b.seen) if seen.state.key == key]
        for key in run.setting.outputs
    }
    _delivery(cell, run, histories, notes)
    if case.host_cannot_switch:
        _stuck(cell, run, histories, notes)
    else:
        _off_or_resumed(cell, run, histories, notes)
    notes.append(_describe_alarms(run))
    notes.extend(f"also told: “{message}”" for message in _warnings(run))
    # what is left at the end
    cell.left_on = any(_driving(s) for s in run.final.values())
    back_on = [key for key, s in run.later.items() if s.output_on]
    if back_on:
        cell.problems.append(f"{', '.join(back_on)} came back ON after the session ended")
    if not finished.recorded:
        notes.append("the end says the session is NOT recorded in full")
    _told(cell, run)
    return notes


def _told(cell: Cell, run: _Run) -> None:
    """What the person was told, and whether every message since the fault is one line."""
    events = run.bench.events
    cell.sentence = _sentence(events, run.finished, run.fault_event)
    for event in events[run.fault_event :]:
        if isinstance(event, (Alarm, Notice)):
            text = event.message
        elif isinstance(event, Finished):
            text = event.reason or ""
        else:
            continue
        if text and not _one_line(text):
            cell.problems.append(f"not one clear line: {text!r}")


def _warnings(run: _Run) -> list[str]:
    """The notices after the fault that the plan did not schedule (what went wrong)."""
    return [
        e.message
        for e in run.bench.events[run.fault_event :]
        if isinstance(e, Notice) and e.message not in run.plan_notices
    ]


def _high_alarms(run: _Run) -> list[Alarm]:
    return [
        e
        for e in run.bench.events[run.fault_event :]
        if isinstance(e, Alarm) and e.priority == "high"
    ]


def _delivery(
    cell: Cell,
    run: _Run,
    histories: dict[str, list[tuple[int, DeviceState]]],
    notes: list[str],
) -> None:
    """ON time after time zero (what the devices delivered) against the ledger's exposure."""
    running = [
        s
        for s in run.bench.stamps
        if isinstance(s.event, StateChanged) and s.event.state == "running"
    ]
    t0 = running[0].clock if running else run.end_clock
    # A welded output keeps driving after relieve's OFF; relieve records what it switched on.
    reported = run.case.host_cannot_switch
    states = {key: [s for _, s in h] for key, h in histories.items()}
    delivered = sum(_on_seconds(h, t0, run.end_clock, reported=reported) for h in states.values())
    cell.delivered_s = round(delivered, 3)
    if PAD in states:
        preheat = _on_seconds(states[PAD], -math.inf, t0)
        notes.append(f"pre-heat ON {preheat:.1f} s before time zero (not therapy, not recorded)")
    if not running:
        notes.append("the session never reached time zero")
    session = run.session
    if session is None:
        cell.problems.append("the ledger holds no record of the session")
        return
    cell.recorded_s = round(sum(delivered_seconds(session).values()), 3)
    still_open = [p for p in session.phases if p.ended_at is None]
    if still_open:
        notes.append(
            f"{len(still_open)} phase(s) left open in the ledger (outcome {session.outcome!r}), "
            "counted to the last heartbeat plus their worst case (S3)"
        )


def _off_or_resumed(
    cell: Cell,
    run: _Run,
    histories: dict[str, list[tuple[int, DeviceState]]],
    notes: list[str],
) -> None:
    """When every output was OFF after the fault, and when the session went on again."""
    b, finished = run.bench, run.finished
    disturbed = finished.outcome != "completed" or any(
        isinstance(e, Alarm) or (isinstance(e, StateChanged) and e.state in ("paused", "link-lost"))
        for e in b.events[run.fault_event :]
    )
    if not disturbed:
        notes.append("nothing was switched off: the session went on as planned")
        return
    start = run.fault_seen
    off_at, was_on = _all_off_after(histories, start)
    if not was_on:
        notes.append("no output was ON when the fault struck")
        first_on = _first_on_after(histories, start)
        if first_on is None:
            return  # and nothing came on after it
        if finished.outcome == "completed":
            cell.resumed_after_s = round(b.seen[first_on].state.time - run.fault_clock, 3)
            return
        off_at, _ = _all_off_after(histories, first_on + 1)
    plan_end = _plan_end(run)
    if off_at is None or (plan_end is not None and b.seen[off_at].state.time >= plan_end):
        # a session that went on never switched its outputs off for the fault
        cell.problems.append(
            "the outputs stayed ON after the fault"
            + (" until the plan's end" if off_at is not None else "")
            + f" (bound {cell.bound_s:g} s)"
        )
    else:
        cell.off_after_s = round(b.seen[off_at].state.time - run.fault_clock, 3)
        if finished.outcome == "completed":
            back = _first_on_after(histories, off_at + 1)
            if back is not None:
                cell.resumed_after_s = round(b.seen[back].state.time - run.fault_clock, 3)
    if run.case.resumes and cell.resumed_after_s is None:
        cell.problems.append("the session did not go on after the fault: no output came ON again")
    if cell.row == "sensor-drift":
        states = [s for _, s in histories[PAD]]
        beyond = _first_beyond_line(states, run.fault_clock, run.setpoints)
        if beyond is None:
            notes.append("the reading never crossed the alarm line")
        else:
            cell.bound_s = round(beyond - run.fault_clock + REPORT_BOUND_S, 3)
            notes.append(
                f"the reading crossed the alarm line {beyond - run.fault_clock:.1f} s after "
                f"the fault, so the bound is {cell.bound_s:g} s"
            )


def _plan_end(run: _Run) -> float | None:
    """Clock time of the plan's own end (its last ``off`` phase), for a completed session."""
    ends = [
        s.clock
        for s in run.bench.stamps
        if isinstance(s.event, PhaseChanged)
        and s.event.mode == "off"
        and s.event.index is not None
        and s.event.index == s.event.count
    ]
    return ends[-1] if ends else None


def _stuck(
    cell: Cell,
    run: _Run,
    histories: dict[str, list[tuple[int, DeviceState]]],
    notes: list[str],
) -> None:
    """A welded output: relieve must abort, say so, and not claim every device OFF."""
    # a silent welded cooler cannot be told from a working one while its cold is ON (only the
    # completed outcome that case expects lets a session without a high alarm through)
    if not _high_alarms(run) and cell.outcome != "completed":
        cell.problems.append("no high alarm: relieve did not stop the session on the stuck output")
    if not any("did not turn OFF" in message for message in _warnings(run)):
        cell.problems.append("the person was not told that the pad did not turn OFF")
    pad, later = run.final[PAD], run.later[PAD]
    if pad.energised:
        notes.append(
            f"the pad still drove its plate at the end ({pad.plate_c or math.nan:.1f} °C plate, "
            f"{pad.skin_c or math.nan:.1f} °C skin; {AFTER_END_S:g} clock seconds later "
            f"{later.plate_c or math.nan:.1f} °C plate): what it drives past relieve's OFF is "
            "the device's fault, so delivered counts only the time it reported ON"
        )
    skins = [
        s.skin_c for _, s in histories[PAD] if s.time >= run.fault_clock and s.skin_c is not None
    ]
    if skins:
        notes.append(f"skin up to {max(skins):.1f} °C between the fault and the end")


def _describe_alarms(run: _Run) -> str:
    """Every alarm since the fault, with the clock seconds after the fault it came."""
    alarms = [
        (stamp.event, stamp.clock - run.fault_clock)
        for stamp in run.bench.stamps[run.fault_event :]  # one stamp per event, in order
        if isinstance(stamp.event, Alarm)
    ]
    if not alarms:
        return "no alarm"
    return "alarms (clock seconds after the fault): " + ", ".join(
        f"{a.priority} {a.reason} ({a.limit_id or '-'}) {after:.1f} s" for a, after in alarms
    )


async def run_inprocess_cells(
    rows: Sequence[str],
    columns: Sequence[Column],
    *,
    workdir: Path,
    progress: Callable[[Cell], None] | None = None,
) -> list[Cell]:
    """Every (row, column) cell of the virtual rows given, one after another."""
    cells = []
    for row in rows:
        if row not in VIRTUAL_ROWS:
            raise ValueError(f"not a virtual-clock row: {row!r}")
        for column in columns:
            cell = await run_inprocess_cell(row, column, workdir=workdir)
            if progress is not None:
                progress(cell)
            cells.append(cell)
    return cells


def run_inprocess_matrix(
    rows: Sequence[str],
    columns: Sequence[Column],
    *,
    workdir: Path,
    progress: Callable[[Cell], None] | None = None,
) -> list[Cell]:
    """:func:`run_inprocess_cells` from synchronous code (its own event loop)."""
    return asyncio.run(run_inprocess_cells(rows, columns, workdir=workdir, progress=progress))
