"""Daily allowances (H5, H6, C2, M1, M4) and exposure arithmetic over what the ledger recorded.

Pure: functions of a compiled :class:`~profiles.plan.Plan`, a "now", the sessions and injuries the
ledger read (:mod:`controller.ledger`) and the :class:`~profiles.limits.Limits`. Nothing here reads
a clock or a file. Days are the person's local calendar days: ``tz`` is a ``tzinfo``, or ``None``
for the system's local time (with its daylight-saving rules).

Rules checked before a session starts (all lifted, one by one, by ``--override-allowance``; never a
temperature or duration limit):

* H5 -- heat and contrast sessions: at most 3 a day, starts at least 2 hours apart.
* H6 -- no heat (so no contrast) on an area in the first 48 hours after an injury recorded on it.
* C2 -- cold on an area again only after 40 minutes off (contrast's last cold phase counts, X3).
* M1 -- the massage extension at most once a day.
* M4 -- at most 45 minutes of massage a day, the planned session included.

Rule-relative offsets come from the plan: a routine whose contrast begins 20 minutes in may start
20 minutes before its cold would be allowed, since its cold only begins then.
"""

from __future__ import annotations

import math
import time as _time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from profiles.errors import RelieveError
from profiles.limits import HARD, Limits, minutes_text

if TYPE_CHECKING:
    from controller.ledger.records import InjuryRecord, PhaseRecord, SessionRecord
    from profiles.plan import Mode, Plan

__all__ = [
    "ALLOWANCE_RULES",
    "MODALITIES",
    "AllowanceDecision",
    "AllowanceError",
    "Exposure",
    "Modality",
    "OverrideError",
    "Refusal",
    "check",
    "day_end",
    "day_start",
    "delivered_seconds",
    "exposure_on",
    "find_refusals",
    "is_heat_session",
    "local_day",
    "moment_text",
    "phase_end",
    "still_planned_s",
    "when_text",
]

Modality = Literal["heat", "cold", "massage"]
MODALITIES: tuple[Modality, ...] = ("heat", "cold", "massage")

ALLOWANCE_RULES: frozenset[str] = frozenset({"H5", "H6", "C2", "M1", "M4"})
"""The rules ``--override-allowance`` may lift. Nothing else can be overridden."""

# Totals are sums of float seconds; a plan that lands exactly on a limit must not be refused for
# rounding noise.
_EPS_S = 1e-6

_SUBJECT = {
    "heat": "Heat",
    "contrast": "Contrast",
    "cold": "Cold",
    "massage": "Massage",
    "stretch": "Stretching",
}


# --- local days ---------------------------------------------------------------------------------


def local_day(moment: datetime, tz: tzinfo | None = None) -> date:
    """The local calendar day ``moment`` falls on (``tz=None``: the system's local time)."""
    return moment.astimezone(tz).date()


def day_start(day: date, tz: tzinfo | None = None) -> datetime:
    """Local midnight at the start of ``day``, as an aware datetime."""
    if tz is not None:
        return datetime.combine(day, time(0), tzinfo=tz)
    # The system's local rules: mktime resolves daylight saving time for that very day.
    seconds = _time.mktime((day.year, day.month, day.day, 0, 0, 0, 0, 0, -1))
    return datetime.fromtimestamp(seconds, tz=UTC).astimezone()


def day_end(day: date, tz: tzinfo | None = None) -> datetime:
    """Local midnight at the end of ``day`` (the start of the next one)."""
    return day_start(day + timedelta(days=1), tz)


def moment_text(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """'14:35', 'tomorrow at 08:10' or 'Thu 9 May at 09:10', rounded up to the minute.

    Rounded *up*, so the time a message names is always allowed.
    """
    local = moment.astimezone(tz)
    if local.second or local.microsecond:
        local = (local + timedelta(minutes=1)).replace(second=0, microsecond=0)
    today = local_day(now, tz)
    if local.date() == today:
        return f"{local:%H:%M}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {local:%H:%M}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday at {local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b} at {local:%H:%M}"


def when_text(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """'at 14:35', 'tomorrow at 08:10' or 'on Thu 9 May at 09:10' (see :func:`moment_text`)."""
    text = moment_text(moment, now, tz)
    if text[0].isdigit():
        return f"at {text}"
    if text.startswith(("tomorrow", "yesterday")):
        return text
    return f"on {text}"


def _duration_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour" + ("" if hours == 1 else "s")
    return minutes_text(seconds)


# --- exposure -----------------------------------------------------------------------------------


def phase_end(phase: PhaseRecord, session: SessionRecord) -> datetime:
    """When a phase ended, or for one still open the latest it can end (S3).

    An open phase (its session running, or left running by a process that is gone) can last at
    most until the session's last heartbeat plus the device's own bound (lease or timer).
    """
    if phase.ended_at is not None:
        return phase.ended_at
    bound = session.heartbeat_at + timedelta(seconds=phase.worst_case_s)
    return max(phase.started_at, bound)


def _overlap_s(start: datetime, end: datetime, lo: datetime, hi: datetime) -> float:
    return max(0.0, (min(end, hi) - max(start, lo)).total_seconds())


def _area(area: str | None) -> str:
    return area if area is not None else "unspecified"


@dataclass(frozen=True)
class Exposure:
    """Seconds of heat, cold and massage per body area on one local day."""

    day: date
    seconds: Mapping[str, Mapping[Modality, float]]

    def of(self, modality: Modality, area: str | None = None) -> float:
        """Seconds of one modality on one area, or on all areas when ``area`` is None."""
        if area is not None:
            return self.seconds.get(area, {}).get(modality, 0.0)
        return sum(by_mode.get(modality, 0.0) for by_mode in self.seconds.values())

    @property
    def areas(self) -> tuple[str, ...]:
        return tuple(sorted(self.seconds))


def exposure_on(day: date, sessions: Iterable[SessionRecord], tz: tzinfo | None = None) -> Exposure:
    """Heat, cold and massage seconds per area delivered on ``day`` (local), clipped to the day.

    Contrast needs no special case: its heat phases count as heat and its cold phases as cold
    (X3).
    """
    lo, hi = day_start(day, tz), day_end(day, tz)
    totals: dict[str, dict[Modality, float]] = defaultdict(dict)
    for session in sessions:
        for phase in session.phases:
            modality = _modality(phase.mode)
            if modality is None:
                continue
            seconds = _overlap_s(phase.started_at, phase_end(phase, session), lo, hi)
            if seconds > 0:
                by_mode = totals[_area(phase.area)]
                by_mode[modality] = by_mode.get(modality, 0.0) + seconds
    frozen = {area: MappingProxyType(dict(by_mode)) for area, by_mode in totals.items()}
    return Exposure(day, MappingProxyType(frozen))


def delivered_seconds(session: SessionRecord) -> dict[Modality, float]:
    """Seconds of heat, cold and massage one session delivered (worst case for an open phase)."""
    out: dict[Modality, float] = dict.fromkeys(MODALITIES, 0.0)
    for phase in session.phases:
        modality = _modality(phase.mode)
        if modality is not None:
            out[modality] += (phase_end(phase, session) - phase.started_at).total_seconds()
    return out


def _modality(mode: Mode) -> Modality | None:
    if mode == "heat":
        return "heat"
    if mode == "cold":
        return "cold"
    if mode == "massage":
        return "massage"
    return None


def is_heat_session(session: SessionRecord) -> bool:
    """Whether a recorded session counts as a heat/contrast session for H5.

    It counts once it delivered any heat; a session still running counts from its start when it
    plans heat (it may be pre-heating, or still binding its devices in another process). A
    session that ended before any heat does not count.
    """
    if any(p.mode == "heat" for p in session.phases):
        return True
    if session.outcome != "running":
        return False
    return session.kind in ("heat", "contrast") or any(p.mode == "heat" for p in session.planned)


def still_planned_s(session: SessionRecord, modality: Modality) -> float:
    """Seconds of ``modality`` a running session plans beyond what it has recorded so far.

    Another process's allowance check counts them as if delivered: the session is going to
    deliver them (0 for a session that ended).
    """
    if session.outcome != "running":
        return 0.0
    planned = sum(p.duration_s for p in session.planned if _modality(p.mode) == modality)
    return max(0.0, planned - delivered_seconds(session)[modality])


# --- refusals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One allowance rule that refuses the planned session now.

    ``earliest`` is the first moment the rule allows it (None: not on any day, as planned).
    """

    rule_id: str
    message: str
    earliest: datetime | None


class AllowanceError(RelieveError):
    """The planned session breaks a daily allowance; the message names the rule and a time.

    ``rule_id`` and ``earliest`` are those of the rule that allows it last; ``refusals`` holds
    every rule that refuses it.
    """

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        if not refusals:
            raise ValueError("AllowanceError needs at least one refusal")
        self.refusals = tuple(refusals)
        main = max(self.refusals, key=_lateness)
        self.rule_id = main.rule_id
        self.earliest = main.earliest
        others = sorted({r.rule_id for r in self.refusals} - {main.rule_id})
        message = main.message
        if others:
            message = f"{message.rstrip('.')} ({', '.join(others)} also refuse it now)."
        super().__init__(message)


def _lateness(refusal: Refusal) -> tuple[int, datetime]:
    if refusal.earliest is None:
        return (1, datetime.max.replace(tzinfo=UTC))
    return (0, refusal.earliest)


class OverrideError(RelieveError):
    """An override named something that is not an allowance rule."""


@dataclass(frozen=True)
class AllowanceDecision:
    """The planned session may start. ``lifted``: refusals an override lifted (record them)."""

    lifted: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def overrides(self) -> tuple[str, ...]:
        """The rule IDs the override actually lifted, for the session record."""
        return tuple(sorted({r.rule_id for r in self.lifted}))


def _subject(plan: Plan) -> str:
    if plan.kind == "routine":
        return f"The routine {plan.name}"
    return _SUBJECT.get(plan.kind, f"The session {plan.name}")


def _first_offsets(plan: Plan, mode: Mode) -> dict[str, float]:
    """Per area, the offset of the plan's first phase of ``mode`` there."""
    first: dict[str, float] = {}
    for phase in plan.phases:
        if phase.mode == mode:
            area = _area(phase.area)
            first[area] = min(first.get(area, math.inf), phase.start_s)
    return first


def _h6(
    plan: Plan,
    now: datetime,
    injuries: Sequence[InjuryRecord],
    limits: Limits,
    tz: tzinfo | None,
) -> list[Refusal]:
    out = []
    no_heat = timedelta(seconds=limits.acute_no_heat_s)
    for area, offset in sorted(_first_offsets(plan, "heat").items()):
        latest = max((i.at for i in injuries if i.area == area and i.at <= now), default=None)
        if latest is None:
            continue
        earliest = latest + no_heat - timedelta(seconds=offset)
        if earliest > now:
            out.append(
                Refusal(
                    "H6",
                    f"{_subject(plan)} on {area} is not allowed yet: no heat or contrast in the "
                    f"first {_duration_text(limits.acute_no_heat_s)} after an injury (H6, "
                    f"injury recorded {when_text(latest, now, tz)}); it can start "
                    f"{when_text(earliest, now, tz)}.",
                    earliest,
                )
            )
    return out


def _h5(
    plan: Plan,
    now: datetime,
    sessions: Sequence[SessionRecord],
    limits: Limits,
    tz: tzinfo | None,
) -> list[Refusal]:
    if not any(p.mode == "heat" for p in plan.phases):
        return []
    heat = [s for s in sessions if is_heat_session(s)]
    gap = timedelta(seconds=limits.heat_session_gap_s)
    last = max((s.started_at for s in heat), default=None)
    after_gap = last + gap if last is not None else None
    today = local_day(now, tz)
    today_count = sum(1 for s in heat if local_day(s.started_at, tz) == today)
    if today_count >= limits.heat_sessions_per_day:
        earliest = day_end(today, tz)
        if after_gap is not None:
            earliest = max(earliest, after_gap)
        return [
            Refusal(
                "H5",
                f"{_subject(plan)} is not allowed again today: at most "
                f"{limits.heat_sessions_per_day} heat or contrast sessions a day (H5); the next "
                f"one can start {when_text(earliest, now, tz)}.",
                earliest,
            )
        ]
    if after_gap is not None and after_gap > now:
        return [
            Refusal(
                "H5",
                f"{_subject(plan)} is not allowed yet: heat and contrast sessions must start at "
                f"least {_duration_text(limits.heat_session_gap_s)} apart (H5); the next one "
                f"can start {when_text(after_gap, now, tz)}.",
                after_gap,
            )
        ]
    return []


def _c2(
    plan: Plan,
    now: datetime,
    sessions: Sequence[SessionRecord],
    limits: Limits,
    tz: tzinfo | None,
) -> list[Refusal]:
    out = []
    rest = timedelta(seconds=limits.cold_rest_min_s)
    for area, offset in sorted(_first_offsets(plan, "cold").items()):
        ends = [
            phase_end(p, s)
            for s in sessions
            for p in s.phases
            if p.mode == "cold" and _area(p.area) == area
        ]
        # a running session's cold still to come ends no earlier than its plan says
        ends += [
            s.started_at + timedelta(seconds=p.end_s)
            for s in sessions
            if s.outcome == "running"
            for p in s.planned
            if p.mode == "cold" and _area(p.area) == area
        ]
        if not ends:
            continue
        earliest = max(ends) + rest - timedelta(seconds=offset)
        if earliest > now:
            out.append(
                Refusal(
                    "C2",
                    f"{_subject(plan)} is not allowed yet: cold on {area} needs at least "
                    f"{_duration_text(limits.cold_rest_min_s)} off after the last cold ended "
                    f"(C2); it can start {when_text(earliest, now, tz)}.",
                    earliest,
                )
            )
    return out


def _m1(
    plan: Plan, now: datetime, sessions: Sequence[SessionRecord], tz: tzinfo | None
) -> list[Refusal]:
    if not plan.extended:
        return []
    today = local_day(now, tz)
    if not any(s.extended and local_day(s.started_at, tz) == today for s in sessions):
        return []
    earliest = day_end(today, tz)
    return [
        Refusal(
            "M1",
            "The massage extension was already used today and is allowed once a day (M1); run "
            f"the session without it, or with it {when_text(earliest, now, tz)}.",
            earliest,
        )
    ]


def _m4(
    plan: Plan,
    now: datetime,
    sessions: Sequence[SessionRecord],
    limits: Limits,
    tz: tzinfo | None,
) -> list[Refusal]:
    planned = sum(p.duration_s for p in plan.phases if p.mode == "massage")
    if planned <= 0:
        return []
    today = local_day(now, tz)
    done = exposure_on(today, sessions, tz).of("massage")
    done += sum(
        still_planned_s(s, "massage") for s in sessions if local_day(s.started_at, tz) == today
    )
    daily = limits.massage_daily_max_s
    if done + planned <= daily + _EPS_S:
        return []
    if planned > daily + _EPS_S:
        return [
            Refusal(
                "M4",
                f"{_subject(plan)} plans {minutes_text(planned)} of massage, more than the "
                f"{minutes_text(daily)} allowed in a day (M4); choose a shorter session.",
                None,
            )
        ]
    earliest = day_end(today, tz)
    return [
        Refusal(
            "M4",
            f"{_subject(plan)} would bring today's massage to {_round_minutes(done + planned)} "
            f"minutes, more than the {minutes_text(daily)} allowed in a day (M4: "
            f"{_round_minutes(done)} done, {_round_minutes(planned)} planned); it can start "
            f"{when_text(earliest, now, tz)}.",
            earliest,
        )
    ]


def _round_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}".removesuffix(".0")


def find_refusals(
    plan: Plan,
    now: datetime,
    sessions: Sequence[SessionRecord],
    injuries: Sequence[InjuryRecord],
    *,
    limits: Limits = HARD,
    tz: tzinfo | None = None,
) -> list[Refusal]:
    """Every allowance rule that refuses ``plan`` starting at ``now``, in rule order."""
    return [
        *_h6(plan, now, injuries, limits, tz),
        *_h5(plan, now, sessions, limits, tz),
        *_c2(plan, now, sessions, limits, tz),
        *_m1(plan, now, sessions, tz),
        *_m4(plan, now, sessions, limits, tz),
    ]


def _advice(
    plan: Plan,
    now: datetime,
    injuries: Sequence[InjuryRecord],
    limits: Limits,
    tz: tzinfo | None,
) -> list[str]:
    """H6's default: cold only for the whole acute window (heat is allowed after 48 hours)."""
    out = []
    window = timedelta(seconds=limits.acute_window_max_s)
    for area, offset in sorted(_first_offsets(plan, "heat").items()):
        starts = now + timedelta(seconds=offset)
        latest = max((i.at for i in injuries if i.area == area and i.at <= now), default=None)
        if latest is not None and starts < latest + window:
            out.append(
                f"The guidance for {area} is cold only until "
                f"{moment_text(latest + window, now, tz)} "
                f"({_duration_text(limits.acute_window_max_s)} after the injury, H6)."
            )
    return out


def check(
    plan: Plan,
    now: datetime,
    sessions: Sequence[SessionRecord],
    injuries: Sequence[InjuryRecord],
    *,
    limits: Limits = HARD,
    lift: Collection[str] = (),
    tz: tzinfo | None = None,
) -> AllowanceDecision:
    """Allow ``plan`` to start at ``now``, or raise :class:`AllowanceError`.

    ``lift``: allowance rule IDs the person overrode (``--override-allowance``); a refusal by one
    of them is returned in :attr:`AllowanceDecision.lifted` instead of raised. Naming anything
    but an allowance rule raises :class:`OverrideError`.
    """
    unknown = sorted(set(lift) - ALLOWANCE_RULES)
    if unknown:
        raise OverrideError(
            f"{', '.join(unknown)} cannot be overridden; only the daily allowance rules "
            f"{', '.join(sorted(ALLOWANCE_RULES))} can."
        )
    found = find_refusals(plan, now, sessions, injuries, limits=limits, tz=tz)
    blocking = [r for r in found if r.rule_id not in lift]
    if blocking:
        raise AllowanceError(blocking)
    lifted = tuple(r for r in found if r.rule_id in lift)
    return AllowanceDecision(lifted, tuple(_advice(plan, now, injuries, limits, tz)))
