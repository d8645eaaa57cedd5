"""``relieve history`` and ``relieve injury add``: the exposure ledger, for people and scripts."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime, time, timedelta, tzinfo
from typing import IO, Any

from controller.ledger import Ledger, SessionRecord, allowances, default_data_dir
from profiles.errors import RelieveError
from profiles.limits import HARD

__all__ = [
    "CSV_COLUMNS",
    "TimeError",
    "history",
    "injury_add",
    "open_ledger",
    "parse_time",
    "session_json",
]

CSV_COLUMNS = (
    "id",
    "profile",
    "kind",
    "started_at",
    "ended_at",
    "duration_seconds",
    "outcome",
    "heat_seconds",
    "cold_seconds",
    "massage_seconds",
    "alarms",
    "overrides",
    "extended",
    "simulated",
)

_AREA = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # the profiles' area names (lower-back)
_CLOCK_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")

Now = Callable[[], datetime]


def open_ledger(
    args: argparse.Namespace, *, simulated: bool, now: Now | None = None, tz: tzinfo | None = None
) -> Ledger:
    """The ledger of ``--data-dir`` (or the default), reporting recovered sessions on stderr."""
    data_dir = getattr(args, "data_dir", None) or default_data_dir()
    if now is None:
        ledger = Ledger.open(data_dir, simulated=simulated, tz=tz)
    else:
        ledger = Ledger.open(data_dir, simulated=simulated, now=now, tz=tz)
    for session in ledger.recovered:
        print(
            f"relieve: session {session.id} ({session.profile}) was interrupted; it is closed at "
            "its last heartbeat and its exposure counted until the devices' own time-outs (S3).",
            file=sys.stderr,
        )
    return ledger


# --- relieve history ----------------------------------------------------------------------------


def history(
    args: argparse.Namespace,
    *,
    now: Now | None = None,
    tz: tzinfo | None = None,
    out: IO[str] | None = None,
) -> int:
    """Sessions newest first, today's minutes per modality and area; or JSON / CSV."""
    out = out or sys.stdout
    with open_ledger(args, simulated=args.simulated, now=now, tz=tz) as ledger:
        current = ledger.now()
        today = allowances.local_day(current, tz)
        since = allowances.day_start(today, tz) if args.today else None
        sessions = ledger.sessions(since)
        if args.json:
            json.dump([session_json(s, tz) for s in sessions], out, indent=2, ensure_ascii=False)
            out.write("\n")
            return 0
        if args.csv:
            _write_csv(sessions, out, tz)
            return 0
        exposure = ledger.exposure(today)
        injuries = ledger.injuries(current - timedelta(seconds=HARD.acute_window_max_s))
        out.write(_summary(exposure, current, tz))
        for injury in injuries:
            out.write(_acute_line(injury.area, injury.at, current, tz) + "\n")
        out.write("\n")
        if args.simulated:
            out.write("Simulated devices: these minutes never count against real exposure.\n")
        if not sessions:
            out.write("No sessions today.\n" if args.today else "No sessions recorded yet.\n")
            return 0
        out.write(f"{'#':>4}  {'start':<20}  {'length':>7}  {'outcome':<11}  profile\n")
        for session in sessions:
            out.write(_session_line(session, tz))
    return 0


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}".removesuffix(".0") + " min"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _local(moment: datetime, tz: tzinfo | None) -> datetime:
    return moment.astimezone(tz)


def _summary(exposure: allowances.Exposure, now: datetime, tz: tzinfo | None) -> str:
    day = _local(now, tz)
    totals = ", ".join(f"{m} {_minutes(exposure.of(m))}" for m in allowances.MODALITIES)
    lines = [f"Today, {day:%a} {day.day} {day:%b}: {totals}"]
    width = max((len(a) for a in exposure.areas), default=0)
    for area in exposure.areas:
        parts = [
            f"{m} {_minutes(exposure.of(m, area))}"
            for m in allowances.MODALITIES
            if exposure.of(m, area) > 0
        ]
        lines.append(f"  {area:<{width}}  " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def _acute_line(area: str, at: datetime, now: datetime, tz: tzinfo | None) -> str:
    no_heat = at + timedelta(seconds=HARD.acute_no_heat_s)
    cold_only = at + timedelta(seconds=HARD.acute_window_max_s)
    if no_heat > now:
        return (
            f"Injury on {area} {allowances.when_text(at, now, tz)}: no heat or contrast on "
            f"{area} until {allowances.moment_text(no_heat, now, tz)}; cold only until "
            f"{allowances.moment_text(cold_only, now, tz)}."
        )
    return (
        f"Injury on {area} {allowances.when_text(at, now, tz)}: heat is allowed again; the "
        f"guidance is cold only until {allowances.moment_text(cold_only, now, tz)}."
    )


def _session_line(session: SessionRecord, tz: tzinfo | None) -> str:
    start = _local(session.started_at, tz)
    length = "running" if session.duration_s is None else _clock(session.duration_s)
    flags = []
    if session.extended:
        flags.append("extended")
    if session.overrides:
        flags.append("overrode " + ", ".join(session.overrides))
    extra = f"  ({'; '.join(flags)})" if flags else ""
    lines = [
        f"{session.id:>4}  {start:%a %Y-%m-%d %H:%M}  {length:>7}  {session.outcome:<11}  "
        f"{session.profile}{extra}"
    ]
    for alarm in session.alarms:
        at = _local(alarm.at, tz)
        lines.append(f"{'':>6}! {alarm.limit_id} {alarm.priority} {at:%H:%M}: {alarm.message}")
    return "\n".join(lines) + "\n"


def _iso(moment: datetime | None, tz: tzinfo | None) -> str | None:
    return None if moment is None else _local(moment, tz).isoformat(timespec="seconds")


def session_json(session: SessionRecord, tz: tzinfo | None = None) -> dict[str, Any]:
    """One session as a JSON object (times in local time with their offset)."""
    seconds = allowances.delivered_seconds(session)
    return {
        "id": session.id,
        "profile": session.profile,
        "kind": session.kind,
        "started_at": _iso(session.started_at, tz),
        "ended_at": _iso(session.ended_at, tz),
        "duration_seconds": session.duration_s,
        "outcome": session.outcome,
        "simulated": session.simulated,
        "extended": session.extended,
        "overrides": list(session.overrides),
        "exposure_seconds": {m: round(s, 3) for m, s in seconds.items()},
        "devices": {
            role: {"address": d.address, "name": d.name, "driver": d.driver}
            for role, d in session.devices.items()
        },
        "alarms": [
            {
                "limit": a.limit_id,
                "priority": a.priority,
                "message": a.message,
                "at": _iso(a.at, tz),
            }
            for a in session.alarms
        ],
        "phases": [
            {
                "mode": p.mode,
                "area": p.area,
                "celsius": p.celsius,
                "rpm": p.rpm,
                "started_at": _iso(p.started_at, tz),
                "ended_at": _iso(allowances.phase_end(p, session), tz),
                "estimated": p.estimated or p.ended_at is None,
            }
            for p in session.phases
        ],
    }


def _write_csv(sessions: list[SessionRecord], out: IO[str], tz: tzinfo | None) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for session in sessions:
        seconds = allowances.delivered_seconds(session)
        writer.writerow(
            (
                session.id,
                session.profile,
                session.kind,
                _iso(session.started_at, tz),
                _iso(session.ended_at, tz) or "",
                "" if session.duration_s is None else f"{session.duration_s:g}",
                session.outcome,
                f"{seconds['heat']:g}",
                f"{seconds['cold']:g}",
                f"{seconds['massage']:g}",
                " ".join(a.limit_id for a in session.alarms),
                " ".join(session.overrides),
                int(session.extended),
                int(session.simulated),
            )
        )


# --- relieve injury add -------------------------------------------------------------------------


class TimeError(RelieveError):
    """A time given on the command line is malformed or in the future."""


def parse_time(text: str, now: datetime, tz: tzinfo | None = None) -> datetime:
    """``HH:MM`` (today, local) or ISO-8601 (local unless it carries an offset), not future."""
    text = text.strip()
    clock = _CLOCK_TIME.match(text)
    try:
        if clock:
            hour, minute = int(clock[1]), int(clock[2])
            today = allowances.local_day(now, tz)
            wall = datetime.combine(today, time(hour, minute))
            moment = wall.replace(tzinfo=tz) if tz is not None else wall.astimezone()
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz) if tz is not None else moment.astimezone()
    except ValueError:
        raise TimeError(
            f"'{text}' is not a time; give HH:MM for today or an ISO-8601 date and time such "
            "as 2024-05-06T21:30."
        ) from None
    if moment > now:
        raise TimeError(
            f"{_local(moment, tz):%Y-%m-%d %H:%M} is in the future; give the time the injury "
            "happened."
        )
    return moment


def injury_add(
    args: argparse.Namespace,
    *,
    now: Now | None = None,
    tz: tzinfo | None = None,
    out: IO[str] | None = None,
) -> int:
    """Record an injury and say what it means for heat, contrast and cold."""
    out = out or sys.stdout
    area = args.area.strip()
    if not _AREA.match(area):
        raise RelieveError(
            f"'{args.area}' is not an area name; use lowercase words joined by dashes, as the "
            "profiles do (for example lower-back)."
        )
    with open_ledger(args, simulated=args.simulated, now=now, tz=tz) as ledger:
        current = ledger.now()
        at = parse_time(args.at, current, tz) if args.at else current
        ledger.add_injury(area, at)
    when = allowances.when_text(at, current, tz)
    no_heat = at + timedelta(seconds=HARD.acute_no_heat_s)
    cold_only = at + timedelta(seconds=HARD.acute_window_max_s)
    out.write(f"Recorded an injury on {area} {when}.\n")
    if cold_only <= current:
        out.write(
            f"That was more than {HARD.acute_window_max_s / 3600:g} hours ago, so it no longer "
            "limits anything.\n"
        )
    elif no_heat <= current:
        out.write(
            f"Heat and contrast on {area} are allowed again; the guidance is cold only until "
            f"{allowances.moment_text(cold_only, current, tz)}.\n"
        )
    else:
        out.write(
            f"No heat or contrast on {area} until "
            f"{allowances.moment_text(no_heat, current, tz)}; cold only until "
            f"{allowances.moment_text(cold_only, current, tz)}.\n"
        )
    return 0
