"""Soak: days of virtual time through the session service, one ledger on disk (issue 14, part 3).

Every virtual day a person tries the built-in profiles of every kind (stretch, contrast, cold,
massage with and without the one-a-day extension, the routine, heat) at fixed times of day, as
someone using relieve would: the sessions the daily allowances allow run back to back, and the
attempts in between (a second contrast too soon, a fourth heat session, cold inside the cold
rest, the extension twice, massage beyond the daily total) must be refused. On day 4 an injury
is recorded on the lower back (``relieve injury add``), so heat and contrast are refused for 48
hours (H6). Every session goes through :class:`controller.session.service.SessionService` --
what every front end uses -- on the in-process simulated world (the contrast pad, the skin
probe and the massage gun) and a :class:`~drivers.core.clock.VirtualClock`; the ledger (one
SQLite file on disk for the whole soak) takes its "now" from the same clock, so the days pass
for the allowance checks. About one session in four (``--fault-every``, seeded) gets a fault
from the fault matrix injected into a simulated device during one of its phases, the kinds
taking turns: a link blip, a short notification loss (both must still complete), a long link
loss, a long notification loss, battery death, a drifting or NaN sensor (all must abort).

Judged, each time (the exit status is 1 when any fails):

* a refusal names the right rule: the soak keeps its own account of what the sessions it ran
  delivered (from their events) and decides independently which rules must refuse (H5, H6,
  C2, M1, M4); the refusal's main rule and the rules it lists must match, and its sentence
  must name the rule; an allowed session must not be refused, and one that must be refused
  must not run (within a two-minute margin around each rule's boundary, either answer
  passes); ``SessionService.availability`` must say the same before the attempt;
* an allowed session completes, or ends as the injected fault must end it;
* every output is OFF when the session finishes, from the simulated device's own state,
  ``Finished.devices_off`` and ``recorded`` are true, and the ledger's record (outcome, phases
  inside the session, seconds of each modality) matches what the session's events showed;
  at the end, ``relieve history --json`` lists every session of the ledger;
* memory does not grow from the end of day 1 to the end of the last day beyond the noise
  thresholds (:data:`TRACED_GROWTH_MAX`, :data:`RSS_GROWTH_MAX`), and neither do open files
  or threads (the event loop's executor workers aside: asyncio keeps a bounded pool).

Measured: sessions tried, run, completed, aborted and refused (by rule) per day; the ledger's
size after each day (its pages, and its files on disk) and the growth per day; peak memory
(``ru_maxrss``, tracemalloc's peak) and memory at the end of each day after ``gc.collect()``;
the time of history queries on the full ledger (``Ledger.sessions()``, ``Ledger.exposure``,
the allowance check, and ``relieve history`` with its ``--json``, ``--csv`` and ``--today``
renderings, in-process); the wall time of each day and of the whole soak.

    python benchmarks/soak.py                     # 7 days, a readable table
    python benchmarks/soak.py --days 2 --json     # one JSON object
    python benchmarks/soak.py --quick             # 1 day, until 09:00 (a smoke test)
    python benchmarks/soak.py --ledger-dir DIR    # keep the ledger in DIR (a data directory)

The ledger goes to a new temporary directory under /var/tmp (on disk, unlike /dev/shm),
removed at the end unless ``--ledger-dir`` names one. tracemalloc makes the sessions about three
times slower; ``--no-tracemalloc`` measures their wall time without it (the history queries are
always timed without it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import logging
import math
import os
import platform
import random
import re
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli import history as history_cmd
from controller.cli.commands import build_parser
from controller.ledger import Ledger, SessionRecord
from controller.ledger.allowances import MODALITIES, AllowanceError, delivered_seconds, local_day
from controller.library import ProfileLibrary
from controller.session.events import (
    Alarm,
    Event,
    Finished,
    PhaseChanged,
    SessionStarted,
    StateChanged,
)
from controller.session.service import Session, SessionRequest, SessionService
from controller.session.supervisor import AskResume
from drivers.core.clock import VirtualClock
from profiles.compiler import compile_plan
from profiles.errors import RelieveError
from profiles.limits import HARD
from profiles.plan import Plan
from simulators.faults import (
    BatteryDies,
    Disconnect,
    DropNotifications,
    FaultSpec,
    RefuseConnections,
    SensorDrift,
    SensorNan,
)
from simulators.world import SimWorld

DAYS = 7
SEED = 14
FAULT_EVERY = 4  # about one session (with a device) in this many gets a fault
TZ = timezone(timedelta(hours=1), "CET")  # a fixed offset: no daylight-saving change mid-soak
START = datetime(2026, 12, 7, tzinfo=TZ)  # day 1 begins at this local midnight (a Monday)
QUICK_UNTIL = "09:00"
QUERY_RUNS = 7  # each history query is timed this many times

# The judge's margins: within this many seconds of a rule's boundary either answer passes, as
# the soak's own account (from events) and the ledger's may differ by a pre-heat or a pause.
BOUNDARY_TOLERANCE_S = 120.0
M4_TOLERANCE_S = 60.0  # the same for the day's massage total
# Seconds of a modality the ledger may differ from what the session's events showed.
RECORD_TOLERANCE_S = 2.0

# Noise thresholds for memory growth from the end of day 1 to the end of the last day.
TRACED_GROWTH_MAX = 2 * 1024 * 1024  # Python objects (tracemalloc), after gc.collect()
RSS_GROWTH_MAX = 16 * 1024 * 1024  # resident set size (allocator and SQLite caches included)
FD_GROWTH_MAX = 2  # open file descriptors (SQLite keeps some for reuse)
THREAD_GROWTH_MAX = 0

# The in-process world: the demo's devices (catalog keys) and their addresses.
PAD, PROBE, GUN = "contrast-pad", "skin-probe", "massage-gun"
WORLD = (PAD, GUN, PROBE)
ADDRESSES = {PAD: "C0:DE:00:00:00:01", GUN: "C0:DE:00:00:00:04", PROBE: "C0:DE:00:00:00:07"}

# Built-in profiles only: a config directory that does not exist holds no user profiles.
LIBRARY = ProfileLibrary(Path("/nonexistent-relieve-config"))
RULES = ("H5", "H6", "C2", "M1", "M4")
RULE_ID = re.compile(r"\b([A-Z]\d+L?)\b")  # a limit's ID in a sentence (docs/safety.md)


# --- the day's plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A person starting ``profile`` at ``at`` (local HH:MM); ``why`` says what they do."""

    at: str
    profile: str
    extend: bool = False
    why: str = ""


@dataclass(frozen=True)
class Injury:
    """A person recording an injury at ``at`` (``relieve injury add --area AREA``)."""

    at: str
    area: str = "lower-back"


INJURY_DAY = 4


def day_plan(day: int) -> tuple[Attempt | Injury, ...]:
    """What the person tries on ``day`` (1-based), in time order.

    The allowed sessions run back to back; the others are meant to be refused (the rule in
    ``why`` is what a person without faults would meet; the judge decides from what really
    ran). Odd and even days swap the two contrast profiles.
    """
    first, other = ("contrast-lower-back", "contrast-quick")
    if day % 2 == 0:
        first, other = other, first
    plan: list[Attempt | Injury] = [
        Attempt("07:00", "stretch-lower-back", why="stretches"),
        Attempt("07:30", first, why="the day's first contrast"),
        Attempt("08:05", "cold-pack-acute", why="cold inside the cold rest (C2)"),
        Attempt("08:10", other, why="a second contrast too soon (H5, C2)"),
        Attempt("08:15", "massage-extended", extend=True, why="massage with the extension"),
        Attempt("08:40", "massage-extended", extend=True, why="the extension again (M1)"),
        Attempt("08:50", "cold-pack-acute", why="cold after the rest"),
        Attempt("09:45", "routine-lower-back", why="the routine (the second heat session)"),
        Attempt("10:40", "massage-extended", why="massage, 43 minutes today"),
        Attempt("11:00", "massage-lower-back", why="massage beyond 45 minutes (M4)"),
        Attempt("12:00", "heat-soak", why="the third heat session"),
        Attempt("12:30", other, why="a fourth heat session (H5)"),
        Attempt("13:00", "cold-pack-acute", why="cold"),
        Attempt("13:30", "cold-pack-acute", why="cold inside the cold rest (C2)"),
        Attempt("14:30", "stretch-lower-back", why="stretches"),
    ]
    if day == INJURY_DAY:
        plan.insert(11, Injury("12:15"))  # after the heat soak: H6 until day 6, 12:15
    return tuple(plan)


def _offset(hhmm: str) -> timedelta:
    hours, minutes = hhmm.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes))


# --- the judge: which rules must refuse ---------------------------------------------------------


@dataclass
class Delivered:
    """What one session that ran delivered, as its events showed (the soak's own account)."""

    started: datetime
    extended: bool
    heat: bool = False
    cold_ends: dict[str, datetime] = field(default_factory=dict)  # area -> last cold moment
    massage_s: float = 0.0


@dataclass(frozen=True)
class RuleCheck:
    """Whether one rule must refuse a session now. ``sure``: far enough from the rule's
    boundary that relieve must agree; ``earliest``: when it allows it (None: not as planned)."""

    rule: str
    refuses: bool
    sure: bool
    earliest: datetime | None


@dataclass(frozen=True)
class Needs:
    """What a plan asks of the allowances: first heat / cold offsets per area, massage."""

    heat: Mapping[str, float]
    cold: Mapping[str, float]
    massage_s: float
    extended: bool

    @classmethod
    def of(cls, plan: Plan) -> Needs:
        heat: dict[str, float] = {}
        cold: dict[str, float] = {}
        for phase in plan.phases:
            area = phase.area or "unspecified"
            if phase.mode == "heat":
                heat[area] = min(heat.get(area, math.inf), phase.start_s)
            elif phase.mode == "cold":
                cold[area] = min(cold.get(area, math.inf), phase.start_s)
        massage = sum(p.duration_s for p in plan.phases if p.mode == "massage")
        return cls(heat, cold, massage, plan.extended)


def _timed(rule: str, earliest: datetime | None, now: datetime) -> RuleCheck:
    if earliest is None:
        return RuleCheck(rule, refuses=False, sure=True, earliest=None)
    margin = abs((earliest - now).total_seconds())
    return RuleCheck(rule, earliest > now, margin > BOUNDARY_TOLERANCE_S, earliest)


def _latest(moments: Sequence[datetime]) -> datetime | None:
    return max(moments) if moments else None


def expected_checks(
    needs: Needs,
    now: datetime,
    delivered: Sequence[Delivered],
    injuries: Sequence[tuple[str, datetime]],
    tz: tzinfo = TZ,
) -> list[RuleCheck]:
    """Each allowance rule's verdict for a session with ``needs`` starting ``now``, from what
    the soak saw run (not from the ledger): the oracle the refusals are judged against."""
    today = local_day(now, tz)
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    h6 = [
        at + timedelta(seconds=HARD.acute_no_heat_s - offset)
        for area, offset in needs.heat.items()
        for hurt, at in injuries
        if hurt == area and at <= now
    ]
    c2 = []
    for area, offset in needs.cold.items():
        last = _latest([d.cold_ends[area] for d in delivered if area in d.cold_ends])
        if last is not None:
            c2.append(last + timedelta(seconds=HARD.cold_rest_min_s - offset))
    checks = [_timed("H6", _latest(h6), now), _h5(needs, now, delivered, today, midnight)]
    checks.append(_timed("C2", _latest(c2), now))
    todays = [d for d in delivered if local_day(d.started, tz) == today]
    used = needs.extended and any(d.extended for d in todays)
    checks.append(RuleCheck("M1", used, sure=True, earliest=midnight if used else None))
    if needs.massage_s > 0:
        total = sum(d.massage_s for d in todays) + needs.massage_s
        excess = total - HARD.massage_daily_max_s
        earliest = midnight if needs.massage_s <= HARD.massage_daily_max_s else None
        checks.append(RuleCheck("M4", excess > 0, abs(excess) > M4_TOLERANCE_S, earliest))
    return checks


def _h5(
    needs: Needs, now: datetime, delivered: Sequence[Delivered], today: date, midnight: datetime
) -> RuleCheck:
    if not needs.heat:
        return RuleCheck("H5", refuses=False, sure=True, earliest=None)
    heat = [d.started for d in delivered if d.heat]
    last = _latest(heat)
    gap = last + timedelta(seconds=HARD.heat_session_gap_s) if last is not None else None
    if sum(1 for s in heat if local_day(s, TZ) == today) >= HARD.heat_sessions_per_day:
        return RuleCheck("H5", refuses=True, sure=True, earliest=max(midnight, gap or midnight))
    return _timed("H5", gap, now)


def judge(checks: Sequence[RuleCheck], refused: tuple[str, frozenset[str]] | None) -> list[str]:
    """What is wrong with relieve's answer (``refused``: the main rule and every rule of the
    refusal; None: the session was allowed) against ``checks``; empty when it is right."""
    must = {c.rule for c in checks if c.refuses and c.sure}
    may = {c.rule for c in checks if c.refuses or not c.sure}
    if refused is None:
        return [f"ran, but {', '.join(sorted(must))} must refuse it"] if must else []
    main, rules = refused
    problems = []
    if rules - may:
        problems.append(f"refused by {', '.join(sorted(rules - may))}, which must not refuse it")
    if must - rules:
        problems.append(f"{', '.join(sorted(must - rules))} must refuse it too")
    last = {c.rule: _key(c) for c in checks if c.rule in rules & may}
    if last:
        latest = max(last.values())
        firsts = {r for r, k in last.items() if k >= latest - BOUNDARY_TOLERANCE_S}
        if main not in firsts:
            problems.append(f"names {main} first, expected {' or '.join(sorted(firsts))}")
    return problems


def _key(check: RuleCheck) -> float:
    return math.inf if check.earliest is None else check.earliest.timestamp()


# --- faults -------------------------------------------------------------------------------------

Target = Literal["pad", "probe", "gun"]
TARGET_KEYS: dict[Target, str] = {"pad": PAD, "probe": PROBE, "gun": GUN}
TARGET_ROLES: dict[Target, str] = {"pad": "heat", "probe": "probe", "gun": "gun"}


@dataclass(frozen=True)
class FaultKind:
    """One fault of the matrix: where it goes, in which phases, and how the session ends."""

    name: str
    target: Target
    modes: tuple[str, ...]
    build: Callable[[float], FaultSpec]  # ``at`` (seconds after the phase began) -> the fault
    outcome: Literal["completed", "aborted"]


THERMAL = ("heat", "cold")
FAULTS: tuple[FaultKind, ...] = (
    FaultKind("link blip", "pad", THERMAL, lambda at: Disconnect(at=at), "completed"),
    FaultKind("link blip", "gun", ("massage",), lambda at: Disconnect(at=at), "completed"),
    FaultKind(
        "short notification loss",
        "pad",
        THERMAL,
        lambda at: DropNotifications(at=at, duration=8),
        "completed",
    ),
    FaultKind(
        "long link loss",
        "pad",
        THERMAL,
        lambda at: RefuseConnections(at=at, duration=60, hide=True),
        "aborted",
    ),
    FaultKind(
        "long link loss",
        "gun",
        ("massage",),
        lambda at: RefuseConnections(at=at, duration=60, hide=True),
        "aborted",
    ),
    FaultKind(
        "notification loss",
        "pad",
        THERMAL,
        lambda at: DropNotifications(at=at, duration=60),
        "aborted",
    ),
    FaultKind(
        "notification loss",
        "gun",
        ("massage",),
        lambda at: DropNotifications(at=at, duration=60),
        "aborted",
    ),
    FaultKind("battery death", "pad", THERMAL, lambda at: BatteryDies(at=at), "aborted"),
    FaultKind("battery death", "gun", ("massage",), lambda at: BatteryDies(at=at), "aborted"),
    FaultKind(
        "skin sensor drift", "probe", ("heat",), lambda at: SensorDrift(at=at, rate=30), "aborted"
    ),
    FaultKind(
        "plate sensor drift", "pad", ("cold",), lambda at: SensorDrift(at=at, rate=-30), "aborted"
    ),
    FaultKind("probe NaN", "probe", THERMAL, lambda at: SensorNan(at=at), "aborted"),
)
MIN_FAULT_PHASE_S = 40.0  # phases shorter than this get no fault (it must strike inside them)


@dataclass(frozen=True)
class FaultPlan:
    kind: FaultKind
    phase_index: int
    at: float

    @property
    def text(self) -> str:
        return f"{self.kind.name} ({self.kind.target}, phase {self.phase_index}, +{self.at:.0f} s)"


def choose_fault(
    rng: random.Random, plan: Plan, roles: Mapping[str, str], turn: int
) -> tuple[FaultPlan, int] | None:
    """The first kind of fault from :data:`FAULTS` number ``turn`` on (round the list) that
    one of ``plan``'s phases can hold (its mode, its device bound, long enough): that fault in
    one such phase (chosen by ``rng``), at a moment in it (``rng``), and the next turn. None
    when the plan holds none."""
    for step in range(len(FAULTS)):
        number = (turn + step) % len(FAULTS)
        kind = FAULTS[number]
        phases = [
            (index, phase)
            for index, phase in enumerate(plan.phases)
            if phase.mode in kind.modes
            and phase.duration_s >= MIN_FAULT_PHASE_S
            and TARGET_ROLES[kind.target] in roles
        ]
        if phases:
            index, phase = rng.choice(phases)
            at = rng.uniform(5.0, min(60.0, phase.duration_s - 20.0))
            return FaultPlan(kind, index, round(at, 1)), number + 1
    return None


# --- one session's events -----------------------------------------------------------------------


class Watch:
    """Subscribed to one session: what it delivered (for the judge), its alarms, the fault
    injected at its phase, and every simulated device's own state when it finished."""

    def __init__(self, session: Session, clock: VirtualClock, fault: FaultPlan | None) -> None:
        self.session = session
        self.clock = clock
        self.fault = fault
        self.injected_at: float | None = None
        self.world: SimWorld | None = None
        self.started_at: float | None = None
        self.finished: Finished | None = None
        self.alarms: list[tuple[str, str | None, str]] = []
        self.events = 0
        self.heat = False
        # delivered stretches: (mode, area, clock start, clock end)
        self.stretches: list[tuple[str, str, float, float]] = []
        self.left_on: list[str] = []
        self._open: tuple[str, str, float] | None = None
        self._current: tuple[str, str] | None = None
        self._paused = False

    def __call__(self, event: Event) -> None:
        self.events += 1
        now = self.clock.now()
        if isinstance(event, SessionStarted):
            self.started_at = now
            radio = self.session.radio
            self.world = radio.world if radio is not None else None
        elif isinstance(event, PhaseChanged):
            self._phase(event, now)
        elif isinstance(event, StateChanged):
            if event.state in ("paused", "link-lost"):
                self._close(now)
                self._paused = True
            elif event.state == "resumed":
                self._paused = False
                self._reopen(now)
        elif isinstance(event, Alarm):
            self.alarms.append((event.priority, event.limit_id, event.reason))
        elif isinstance(event, Finished):
            self._close(now)
            self._current = None
            self.finished = event
            self._read_devices()

    def _phase(self, event: PhaseChanged, now: float) -> None:
        self._close(now)
        self._current = (event.mode, event.area or "unspecified")
        self.heat = self.heat or event.mode == "heat"
        if not self._paused:
            self._reopen(now)
        fault = self.fault
        due = fault is not None and self.injected_at is None and event.index == fault.phase_index
        if due and fault is not None and self.world is not None:
            self.world.inject(TARGET_KEYS[fault.kind.target], fault.kind.build(fault.at))
            self.injected_at = now

    def _reopen(self, now: float) -> None:
        if self._current is not None and self._current[0] in ("heat", "cold", "massage"):
            self._open = (*self._current, now)

    def _close(self, now: float) -> None:
        if self._open is not None:
            mode, area, start = self._open
            self.stretches.append((mode, area, start, now))
            self._open = None

    def _read_devices(self) -> None:
        """Every simulated device's own state at the moment relieve says it finished."""
        if self.world is None:
            return
        for key in self.world.keys:
            state = self.world.device(key).state
            if state.output_on or (state.plate_c is not None and state.energised):
                self.left_on.append(key)

    def seconds(self) -> dict[str, float]:
        out = {"heat": 0.0, "cold": 0.0, "massage": 0.0}
        for mode, _, start, end in self.stretches:
            out[mode] += end - start
        return out

    def delivered(
        self, started: datetime, extended: bool, wall: Callable[[float], datetime]
    ) -> Delivered:
        cold_ends: dict[str, datetime] = {}
        for mode, area, _, end in self.stretches:
            if mode == "cold":
                cold_ends[area] = max(cold_ends.get(area, wall(end)), wall(end))
        return Delivered(started, extended, self.heat, cold_ends, self.seconds()["massage"])


class SoakPerson:
    """The person at the front end: confirms every precaution; unattended during a session
    (a long link loss ends it, as on the node daemon)."""

    def __init__(self) -> None:
        self.notices: Counter[str] = Counter()

    async def confirm(self, text: str) -> bool:
        return True

    def notice(self, text: str) -> None:
        rules = RULE_ID.findall(text)
        self.notices[rules[-1] if rules else "other"] += 1

    async def health_answers(self) -> Mapping[str, bool] | None:
        return None

    @property
    def ask_resume(self) -> AskResume | None:
        return None


# --- running the soak ---------------------------------------------------------------------------


@dataclass
class AttemptResult:
    day: int
    at: str  # local HH:MM:SS when it was tried
    profile: str
    extend: bool
    result: str  # completed, aborted, stopped, refused, error
    rule: str | None = None  # the refusal's main rule
    rules: list[str] = field(default_factory=list)  # every rule of the refusal
    expected: list[str] = field(default_factory=list)  # the rules the judge says must refuse
    fault: str | None = None
    fault_outcome: str | None = None  # how the injected fault must end the session
    alarms: list[str] = field(default_factory=list)
    clock_s: float = 0.0  # virtual seconds the attempt took
    wall_s: float = 0.0
    events: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class DayFigures:
    day: int
    date: str
    attempts: int = 0
    ran: int = 0
    completed: int = 0
    aborted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # main rule -> count
    faults: int = 0
    problems: int = 0
    wall_s: float = 0.0
    ledger_bytes: int = 0  # the database's pages (page_count x page_size)
    ledger_files_bytes: int = 0  # the file, its WAL and its shared-memory file on disk
    sessions_in_ledger: int = 0
    phases_in_ledger: int = 0
    rss_bytes: int = 0
    traced_bytes: int | None = None
    fds: int = 0
    threads: int = 0  # every thread
    own_threads: int = 0  # without the event loop's executor workers (``asyncio_N``)
    tasks: int = 0
    clock_sleepers: bool = False  # something still asleep on the clock at the end of the day


@dataclass
class Options:
    days: int = DAYS
    seed: int = SEED
    fault_every: int = FAULT_EVERY
    until: str | None = None  # each day's plan stops after this local time
    trace: bool = True  # tracemalloc on


class Soak:
    """One soak: the clock, the ledger, the service and the soak's own account."""

    def __init__(self, options: Options, data_dir: Path) -> None:
        self.options = options
        self.data_dir = data_dir
        self.clock = VirtualClock()
        self.rng = random.Random(options.seed)  # noqa: S311 - reproducible choices, not secrets
        self.config_dir = data_dir / "config"  # no health answers: simulated sessions go ahead
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.service = SessionService(LIBRARY, config_dir=self.config_dir)
        self.person = SoakPerson()
        # the kinds of fault take turns (from a seeded one), so a soak meets each of them
        self.fault_turn = self.rng.randrange(len(FAULTS))
        self.delivered: list[Delivered] = []
        self.injuries: list[tuple[str, datetime]] = []
        self.attempts: list[AttemptResult] = []
        self.days: list[DayFigures] = []
        self.ledger = Ledger.open(data_dir, simulated=True, now=self.now, tz=TZ)

    def now(self) -> datetime:
        return START + timedelta(seconds=self.clock.now())

    def wall(self, clock_s: float) -> datetime:
        return START + timedelta(seconds=clock_s)

    async def run(self) -> None:
        for day in range(1, self.options.days + 1):
            began = time.perf_counter()
            figures = DayFigures(day, (START + timedelta(days=day - 1)).strftime("%a %d %b"))
            for item in day_plan(day):
                moment = START + timedelta(days=day - 1) + _offset(item.at)
                if self.options.until is not None and _offset(item.at) > _offset(
                    self.options.until
                ):
                    break
                await self._clock_to(moment)
                if isinstance(item, Injury):
                    self._injury(item)
                    continue
                result = await self.attempt(day, item)
                self._count(figures, result)
            figures.wall_s = time.perf_counter() - began
            await _ledger_writers_done()
            self._measure(figures)
            self.days.append(figures)

    async def _clock_to(self, moment: datetime) -> None:
        target = (moment - START).total_seconds()
        if target > self.clock.now():
            await self.clock.advance_to(target)

    def _injury(self, injury: Injury) -> None:
        """``relieve injury add --area AREA --simulated`` now, through the CLI's own code."""
        args = build_parser().parse_args(
            [
                "--data-dir",
                str(self.data_dir),
                "injury",
                "add",
                "--area",
                injury.area,
                "--simulated",
            ]
        )
        history_cmd.injury_add(args, now=self.now, tz=TZ, out=io.StringIO())
        self.injuries.append((injury.area, self.now()))  # now: later than planned after a long day

    def _roles(self, plan: Plan) -> dict[str, str]:
        needed = {s.role for s in plan.steps}
        roles: dict[str, str] = {r: ADDRESSES[PAD] for r in ("heat", "cold") if r in needed}
        if roles:
            roles["probe"] = ADDRESSES[PROBE]  # named, so nothing is scanned for in real time
        if "gun" in needed:
            roles["gun"] = ADDRESSES[GUN]
        return roles

    async def attempt(self, day: int, attempt: Attempt) -> AttemptResult:
        """Try one session as a front end would; judge the answer and what happened."""
        now = self.now()
        draft = compile_plan(
            LIBRARY.get(attempt.profile), resolve=LIBRARY.get, extended=attempt.extend
        )
        checks = expected_checks(Needs.of(draft), now, self.delivered, self.injuries)
        roles = self._roles(draft)
        result = AttemptResult(day, f"{now:%H:%M:%S}", attempt.profile, attempt.extend, "error")
        result.expected = sorted(c.rule for c in checks if c.refuses and c.sure)
        available = self.service.availability(attempt.profile, self.ledger, extend=attempt.extend)
        request = SessionRequest(
            profile=attempt.profile,
            roles=roles,
            extend=attempt.extend,
            simulate=True,
            world=WORLD,
            clock=self.clock,
            started_by="soak",
        )
        session = self.service.session(request, self.person, self.ledger)
        watch = Watch(session, self.clock, None)
        session.subscribe(lambda e: self._on_start(e, watch, session, roles))
        session.subscribe(watch)
        clock_began, began = self.clock.now(), time.perf_counter()
        task = asyncio.ensure_future(session.run())
        await self.clock.run(task)
        result.wall_s = round(time.perf_counter() - began, 4)
        result.clock_s = self.clock.now() - clock_began
        result.events = watch.events
        refused: tuple[str, frozenset[str]] | None = None
        finished: Finished | None = None
        try:
            finished = task.result()
        except AllowanceError as exc:
            refused = (exc.rule_id, frozenset(r.rule_id for r in exc.refusals))
            result.result, result.rule, result.rules = "refused", exc.rule_id, sorted(refused[1])
            result.problems += _sentence_problems(str(exc), exc.rule_id)
        except RelieveError as exc:
            result.problems.append(f"could not run: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug in relieve is a finding like the others
            result.problems.append(f"failed: {type(exc).__name__}: {exc}")
        if finished is not None:
            result.result = finished.outcome
            self._after_run(
                result,
                watch=watch,
                session=session,
                finished=finished,
                started=now,
                extended=attempt.extend,
            )
        if refused is not None or finished is not None:
            result.problems += judge(checks, refused)
        result.problems += _availability_problems(available.refusals, refused)
        if self.clock.next_deadline() is not None:
            result.problems.append("something still sleeps on the clock after the session")
        self.attempts.append(result)
        return result

    def _on_start(
        self, event: Event, watch: Watch, session: Session, roles: Mapping[str, str]
    ) -> None:
        """As the session starts (it was allowed), about one in ``fault_every`` with a device
        gets a fault, chosen from the plan compiled for its devices."""
        every = self.options.fault_every
        if not isinstance(event, SessionStarted) or every == 0 or not roles:
            return
        if self.rng.random() < 1.0 / every and session.plan is not None:
            chosen = choose_fault(self.rng, session.plan, roles, self.fault_turn)
            if chosen is not None:
                watch.fault, self.fault_turn = chosen

    def _after_run(
        self,
        result: AttemptResult,
        *,
        watch: Watch,
        session: Session,
        finished: Finished,
        started: datetime,
        extended: bool,
    ) -> None:
        fault = watch.fault
        expected = "completed"
        if fault is not None:
            result.fault = fault.text
            if watch.injected_at is None:
                result.fault += " (its phase never began: not injected)"
            else:
                expected = fault.kind.outcome
                result.fault_outcome = expected
        result.alarms = [f"{p} {limit or '-'} {reason}" for p, limit, reason in watch.alarms]
        if watch.world is None:
            result.problems.append("the simulated devices could not be seen at the end")
        if finished.outcome != expected:
            result.problems.append(
                f"ended {finished.outcome} ({finished.reason}), expected {expected}"
            )
        if watch.left_on:
            result.problems.append(f"left ON at the end: {', '.join(watch.left_on)}")
        if not finished.devices_off:
            result.problems.append("relieve did not claim every device OFF")
        if not finished.recorded:
            result.problems.append("the session was not recorded in full")
        self.delivered.append(watch.delivered(started, extended, self.wall))
        self._prune(started)
        if session.record_id is None:
            result.problems.append("the session has no record in the ledger")
        else:
            record = self.ledger.session(session.record_id)
            result.problems += record_problems(record, finished, watch.seconds(), started)

    def _prune(self, now: datetime) -> None:
        """The judge looks back two days at most (H6 keeps its own list of injuries)."""
        horizon = now - timedelta(days=2)
        self.delivered = [d for d in self.delivered if d.started >= horizon]

    def _count(self, figures: DayFigures, result: AttemptResult) -> None:
        figures.attempts += 1
        if result.result == "refused":
            rule = result.rule or "?"
            figures.refused[rule] = figures.refused.get(rule, 0) + 1
        elif result.result != "error":
            figures.ran += 1
            figures.completed += result.result == "completed"
            figures.aborted += result.result == "aborted"
        figures.faults += result.fault_outcome is not None
        figures.problems += bool(result.problems)

    def _measure(self, figures: DayFigures) -> None:
        gc.collect()
        figures.rss_bytes = rss_bytes()
        if tracemalloc.is_tracing():
            figures.traced_bytes = tracemalloc.get_traced_memory()[0]
        # the ledger first: SQLite may keep the file descriptor of the read-only connection
        # for reuse, which must count on every day alike
        figures.ledger_bytes, figures.sessions_in_ledger, figures.phases_in_ledger = ledger_pages(
            self.ledger.path
        )
        figures.fds = sum(1 for _ in Path("/proc/self/fd").iterdir())
        threads = threading.enumerate()
        figures.threads = len(threads)
        # the executor of asyncio.to_thread keeps up to min(32, cores + 4) idle workers, one
        # more whenever calls overlap: bounded, so not judged
        figures.own_threads = sum(1 for t in threads if not t.name.startswith("asyncio_"))
        figures.tasks = len(asyncio.all_tasks())
        figures.clock_sleepers = self.clock.next_deadline() is not None
        figures.ledger_files_bytes = sum(
            p.stat().st_size
            for p in self.ledger.path.parent.glob(f"{self.ledger.path.name}*")
            if p.is_file()
        )


async def _ledger_writers_done(limit_s: float = 2.0) -> None:
    """Give the sessions' ledger writer threads that are closing up to ``limit_s`` real seconds
    to end (each session's records are written on a thread of its own)."""
    step_s = 0.01
    for _ in range(round(limit_s / step_s)):
        if not any(t.name.startswith("relieve-ledger-") for t in threading.enumerate()):
            return
        await asyncio.sleep(step_s)


def _sentence_problems(message: str, rule: str) -> list[str]:
    problems = []
    if f"({rule}" not in message:
        problems.append(f"the refusal does not name {rule}: {message!r}")
    if "\n" in message.strip() or not message.strip():
        problems.append(f"the refusal is not one sentence: {message!r}")
    return problems


def _availability_problems(
    refusals: Sequence[Any], refused: tuple[str, frozenset[str]] | None
) -> list[str]:
    said = frozenset(r.rule_id for r in refusals)
    got = refused[1] if refused is not None else frozenset()
    if said == got:
        return []
    return [
        f"availability said {', '.join(sorted(said)) or 'allowed'} just before, the session "
        f"{', '.join(sorted(got)) or 'ran'}"
    ]


def record_problems(
    record: SessionRecord, finished: Finished, seen: Mapping[str, float], started: datetime
) -> list[str]:
    """Where the ledger's record of a session differs from what its events showed."""
    problems = []
    if record.outcome != finished.outcome:
        problems.append(f"the ledger says {record.outcome}, the session {finished.outcome}")
    if record.started_at != started:
        problems.append(f"the ledger starts it at {record.started_at}, it started at {started}")
    end = record.ended_at or record.started_at
    outside = [
        p
        for p in record.phases
        if p.started_at < record.started_at or (p.ended_at or p.started_at) > end
    ]
    if outside:
        first = outside[0]
        span = f"{record.started_at.astimezone(TZ):%d %b %H:%M}-{end.astimezone(TZ):%d %b %H:%M}"
        problems.append(
            f"{len(outside)} phase(s) recorded outside the session ({span}), e.g. {first.mode} "
            f"at {first.started_at.astimezone(TZ):%d %b %H:%M}"
        )
    recorded = delivered_seconds(record)
    for mode in MODALITIES:
        got, seconds = recorded[mode], seen.get(mode, 0.0)
        if abs(got - seconds) > RECORD_TOLERANCE_S:
            problems.append(f"the ledger records {got:.1f} s of {mode}, the events {seconds:.1f} s")
    return problems


# --- measurements -------------------------------------------------------------------------------


def rss_bytes() -> int:
    """The resident set size now (Linux /proc)."""
    with Path("/proc/self/statm").open(encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def ledger_pages(path: Path) -> tuple[int, int, int]:
    """The database's size in pages (WAL included), its sessions and phases, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        phases = conn.execute("SELECT count(*) FROM phases").fetchone()[0]
    finally:
        conn.close()
    return int(pages) * int(size), int(sessions), int(phases)


def filesystem_of(path: Path) -> str:
    """The file system type ``path`` is on (the longest mount point above it), or '?'."""
    best, kind = "", "?"
    with contextlib.suppress(OSError), Path("/proc/mounts").open(encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            where = str(path.resolve())
            if len(fields) > 2 and where.startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


def _timings(call: Callable[[], object]) -> dict[str, float]:
    samples = []
    for _ in range(QUERY_RUNS):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "max_ms": round(max(samples), 2),
        "runs": QUERY_RUNS,
    }


def history_queries(soak: Soak) -> dict[str, dict[str, Any]]:
    """Each history query on the full ledger, timed; with the size of what it returns."""
    ledger, now = soak.ledger, soak.now()
    last_day = local_day(now, TZ)
    contrast = compile_plan(LIBRARY.get("contrast-lower-back"), resolve=LIBRARY.get)

    def allowance_check() -> object:
        try:
            return ledger.check_allowances(contrast)
        except AllowanceError as exc:
            return exc

    def cli(*extra: str) -> Callable[[], str]:
        args = build_parser().parse_args(
            ["--data-dir", str(soak.data_dir), "history", "--simulated", *extra]
        )

        def call() -> str:
            out = io.StringIO()
            history_cmd.history(args, now=soak.now, tz=TZ, out=out)
            return out.getvalue()

        return call

    queries: dict[str, tuple[Callable[[], object], Callable[[Any], int]]] = {
        "Ledger.sessions()": (ledger.sessions, len),
        "Ledger.exposure(last day)": (lambda: ledger.exposure(last_day), lambda e: len(e.areas)),
        "Ledger.check_allowances(contrast)": (allowance_check, lambda _: 1),
        "relieve history": (cli(), len),
        "relieve history --json": (cli("--json"), len),
        "relieve history --csv": (cli("--csv"), len),
        "relieve history --today": (cli("--today"), len),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (call, size) in queries.items():
        out[name] = {**_timings(call), "size": size(call())}
    listed = len(json.loads(cli("--json")()))
    out["relieve history --json"]["sessions"] = listed
    return out


# --- the whole run, the report ------------------------------------------------------------------


# On disk on usual systems (unlike /dev/shm, and unlike /tmp on some): the ledger's parent.
VAR_TMP = Path("/var/tmp")  # noqa: S108 - only ever a parent for mkdtemp


def default_ledger_parent() -> Path:
    """:data:`VAR_TMP` when it is a writable directory, else the system's temp directory."""
    if VAR_TMP.is_dir() and os.access(VAR_TMP, os.W_OK):
        return VAR_TMP
    return Path(tempfile.gettempdir())


async def run_soak(options: Options, data_dir: Path) -> dict[str, Any]:
    """Run the soak on the data directory ``data_dir``; the results as a JSON-ready dict."""
    began = time.perf_counter()
    if options.trace:
        tracemalloc.start()
    soak = Soak(options, data_dir)
    try:
        await soak.run()
        traced_peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else None
        tracemalloc.stop()  # the queries are timed without its overhead
        queries = history_queries(soak)
    finally:
        soak.ledger.close()
        tracemalloc.stop()
    return summarise(soak, queries, traced_peak, time.perf_counter() - began)


def _growth(first: int | None, last: int | None) -> int | None:
    return None if first is None or last is None else last - first


def memory_summary(days: Sequence[DayFigures], traced_peak: int | None) -> dict[str, Any]:
    first, last = days[0], days[-1]
    judged = len(days) > 1
    growth = {
        "traced_bytes": _growth(first.traced_bytes, last.traced_bytes),
        "rss_bytes": last.rss_bytes - first.rss_bytes,
        "fds": last.fds - first.fds,
        "threads": last.own_threads - first.own_threads,
    }
    limits = {
        "traced_bytes": TRACED_GROWTH_MAX,
        "rss_bytes": RSS_GROWTH_MAX,
        "fds": FD_GROWTH_MAX,
        "threads": THREAD_GROWTH_MAX,
    }
    over = [
        f"{name} grew by {value} from day 1 to day {last.day} (noise threshold {limits[name]})"
        for name, value in growth.items()
        if judged and value is not None and value > limits[name]
    ]
    return {
        # the kernel updates its high-water mark lazily: never below what a day measured
        "peak_rss_bytes": max(peak_rss_bytes(), *(d.rss_bytes for d in days)),
        "traced_peak_bytes": traced_peak,
        "first_day": {"rss_bytes": first.rss_bytes, "traced_bytes": first.traced_bytes},
        "last_day": {"rss_bytes": last.rss_bytes, "traced_bytes": last.traced_bytes},
        "growth": growth,
        "thresholds": limits,
        "judged": judged,
        "problems": over,
    }


def summarise(
    soak: Soak, queries: dict[str, Any], traced_peak: int | None, wall_s: float
) -> dict[str, Any]:
    days, attempts = soak.days, soak.attempts
    memory = memory_summary(days, traced_peak)
    sizes = [d.ledger_bytes for d in days]
    growth = [b - a for a, b in zip([0, *sizes], sizes, strict=False)]
    refused = Counter(a.rule for a in attempts if a.result == "refused")
    faults = Counter(
        f"{(a.fault or '').split(' (')[0]}: {a.result}"
        for a in attempts
        if a.fault_outcome is not None
    )
    problems = [
        f"day {a.day} {a.at} {a.profile}{' --extend' if a.extend else ''}: {p}"
        for a in attempts
        for p in a.problems
    ] + memory["problems"]
    listed = queries["relieve history --json"]["sessions"]
    if listed != days[-1].sessions_in_ledger:
        problems.append(
            f"relieve history --json lists {listed} sessions, the ledger holds "
            f"{days[-1].sessions_in_ledger}"
        )
    return {
        "days": len(days),
        "seed": soak.options.seed,
        "fault_every": soak.options.fault_every,
        "until": soak.options.until,
        "start": START.isoformat(),
        "ledger": {
            "dir": str(soak.data_dir),
            "filesystem": filesystem_of(soak.data_dir),
            "bytes": sizes[-1],
            "files_bytes": days[-1].ledger_files_bytes,
            "sessions": days[-1].sessions_in_ledger,
            "phases": days[-1].phases_in_ledger,
            "growth_per_day_bytes": growth,
            "mean_growth_per_day_bytes": round(statistics.mean(growth)),
        },
        "per_day": [asdict(d) for d in days],
        "totals": {
            "attempts": len(attempts),
            "ran": sum(d.ran for d in days),
            "completed": sum(d.completed for d in days),
            "aborted": sum(d.aborted for d in days),
            "refused": sum(refused.values()),
            "refused_by_rule": dict(sorted(refused.items())),
            "faults": dict(sorted(faults.items())),
            "session_wall_s_p50": round(
                statistics.median([a.wall_s for a in attempts if a.result != "refused"] or [0]), 3
            ),
        },
        "memory": memory,
        "queries": queries,
        "notices": dict(soak.person.notices),
        "attempts": [asdict(a) for a in attempts],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wall_s": round(wall_s, 1),
        "problems": problems,
        "passed": not problems,
    }


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _kib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:.0f}"


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'day':<4}{'date':<11}{'tried':>6}{'ran':>5}{'done':>5}{'abort':>6}  "
        f"{'refused (main rule)':<30}{'faults':>6}{'wall s':>8}{'ledger KiB':>11}{'+KiB':>7}"
        f"{'RSS MiB':>9}{'traced MiB':>11}{'fds':>5}{'thr':>5}"
    ]
    growth = results["ledger"]["growth_per_day_bytes"]
    for d, grew in zip(results["per_day"], growth, strict=True):
        refused = ", ".join(f"{r} {n}" for r, n in sorted(d["refused"].items())) or "-"
        lines.append(
            f"{d['day']:<4}{d['date']:<11}{d['attempts']:>6}{d['ran']:>5}{d['completed']:>5}"
            f"{d['aborted']:>6}  {refused:<30}{d['faults']:>6}{d['wall_s']:>8.1f}"
            f"{_kib(d['ledger_bytes']):>11}{_kib(grew):>7}{_mib(d['rss_bytes']):>9}"
            f"{_mib(d['traced_bytes']):>11}{d['fds']:>5}{d['threads']:>5}"
        )
    t, m, ledger = results["totals"], results["memory"], results["ledger"]
    lines += [
        "",
        f"sessions: {t['attempts']} tried, {t['ran']} ran ({t['completed']} completed, "
        f"{t['aborted']} aborted), {t['refused']} refused "
        f"({', '.join(f'{r} {n}' for r, n in t['refused_by_rule'].items()) or 'none'}); "
        f"session wall p50 {t['session_wall_s_p50']:.2f} s",
        "faults: " + (", ".join(f"{k} x{n}" for k, n in t["faults"].items()) or "none injected"),
        f"ledger: {_kib(ledger['bytes'])} KiB in pages, {_kib(ledger['files_bytes'])} KiB of "
        f"files ({ledger['filesystem']}, {ledger['dir']}), {ledger['sessions']} sessions, "
        f"{ledger['phases']} phases; {_kib(ledger['mean_growth_per_day_bytes'])} KiB a day",
        f"memory: peak RSS {_mib(m['peak_rss_bytes'])} MiB, traced peak "
        f"{_mib(m['traced_peak_bytes'])} MiB; day 1 -> day {results['days']}: RSS "
        f"{_signed_mib(m['growth']['rss_bytes'])} MiB (noise {_mib(RSS_GROWTH_MAX)}), traced "
        f"{_signed_mib(m['growth']['traced_bytes'])} MiB (noise {_mib(TRACED_GROWTH_MAX)}), "
        f"fds {m['growth']['fds']:+d}, threads (executor aside) {m['growth']['threads']:+d}"
        + ("" if m["judged"] else " (one day: growth not judged)"),
        "",
        f"{'history query on the full ledger':<38}{'p50 ms':>9}{'max ms':>9}{'size':>10}",
    ]
    for name, q in results["queries"].items():
        lines.append(f"{name:<38}{q['p50_ms']:>9.2f}{q['max_ms']:>9.2f}{q['size']:>10}")
    lines.append("")
    every = results["fault_every"]
    faults = f"a fault in about 1 of {every} sessions" if every else "no faults"
    lines.append(
        f"{results['days']} day(s) from {results['start'][:10]}, seed {results['seed']}, "
        f"{faults}, {results['python']}, wall {results['wall_s']:.1f} s"
    )
    if results["problems"]:
        lines.append(f"PROBLEMS ({len(results['problems'])}):")
        lines += [f"  {p}" for p in results["problems"]]
    else:
        lines.append("every check passed")
    return "\n".join(lines)


def _signed_mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:+.1f}"


def _hhmm(text: str) -> str:
    try:
        _offset(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HH:MM") from None
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=DAYS, help=f"virtual days (default {DAYS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"(default {SEED})")
    parser.add_argument(
        "--fault-every",
        type=int,
        default=FAULT_EVERY,
        help=f"a fault in about 1 of N sessions (default {FAULT_EVERY}; 0: none)",
    )
    parser.add_argument("--until", type=_hhmm, help="stop each day's plan after this HH:MM")
    parser.add_argument("--quick", action="store_true", help=f"1 day until {QUICK_UNTIL}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--ledger-dir", type=Path, help="the data directory (default: a new one under /var/tmp)"
    )
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip tracemalloc")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.fault_every < 0:
        parser.error("--fault-every must be 0 or more")
    if args.quick:
        args.days, args.until = 1, args.until or QUICK_UNTIL
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        days=args.days,
        seed=args.seed,
        fault_every=args.fault_every,
        until=args.until,
        trace=not args.no_tracemalloc,
    )
    if args.ledger_dir is not None:
        results = asyncio.run(run_soak(options, args.ledger_dir))
    else:
        directory = Path(tempfile.mkdtemp(prefix="relieve-soak-", dir=default_ledger_parent()))
        try:
            results = asyncio.run(run_soak(options, directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    sys.stdout.write((json.dumps(results, indent=2) if args.json else table(results)) + "\n")
    if not results["passed"]:
        sys.stderr.write(f"soak: {len(results['problems'])} problem(s); see above\n")
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # the injected faults' alarms are expected
    raise SystemExit(main())
