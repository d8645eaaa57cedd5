"""``relieve history`` and ``relieve injury add``: the exposure ledger, for people and scripts."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime, time, timedelta, tzinfo
from typing import IO

from controller.ledger import Ledger, SessionRecord, allowances, default_data_dir
from controller.ledger.export import (
    CSV_COLUMNS,
    injury_line,
    length_text,
    session_flags,
    session_json,
    today_summary,
    write_csv,
    write_json,
)
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
    if getattr(args, "commands", False):
        return _commands(args, now=now, tz=tz, out=out)
    with open_ledger(args, simulated=args.simulated, now=now, tz=tz) as ledger:
        current = ledger.now()
        today = allowances.local_day(current, tz)
        since = allowances.day_start(today, tz) if args.today else None
        sessions = ledger.sessions(since)
        if args.json:
            write_json(sessions, out, tz)
            return 0
        if args.csv:
            write_csv(sessions, out, tz)
            return 0
        exposure = ledger.exposure(today)
        injuries = ledger.injuries(current - timedelta(seconds=HARD.acute_window_max_s))
        out.write(today_summary(exposure, current, tz))
        for injury in injuries:
            out.write(injury_line(injury.area, injury.at, current, tz) + "\n")
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


def _commands(args: argparse.Namespace, *, now: Now | None, tz: tzinfo | None, out: IO[str]) -> int:
    """``--commands``: the remote commands the node was given (MQTT), newest first."""
    with open_ledger(args, simulated=args.simulated, now=now, tz=tz) as ledger:
        since = None
        if args.today:
            since = allowances.day_start(allowances.local_day(ledger.now(), tz), tz)
        records = ledger.commands(since)
    if args.json:
        rows = [
            {
                "at": record.at.astimezone(tz).isoformat(timespec="seconds"),
                "source": record.source,
                "command": record.command,
                "detail": record.detail,
                "accepted": record.accepted,
                "reason": record.reason,
                "session": record.session_id,
            }
            for record in records
        ]
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return 0
    if args.csv:
        raise RelieveError("--commands prints a table or --json, not CSV.")
    if not records:
        out.write("No remote commands recorded.\n")
        return 0
    out.write(f"{'when':<20}  {'source':<8}  {'command':<24}  {'result':<8}  session  why\n")
    for record in records:
        when = record.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        what = record.command + (f" {record.detail}" if record.detail else "")
        result = "accepted" if record.accepted else "refused"
        session = str(record.session_id) if record.session_id is not None else "-"
        out.write(
            f"{when:<20}  {record.source:<8}  {what:<24}  {result:<8}  {session:>7}  "
            f"{record.reason or ''}".rstrip()
            + "\n"
        )
    return 0


def _session_line(session: SessionRecord, tz: tzinfo | None) -> str:
    start = session.started_at.astimezone(tz)
    length = "running" if session.duration_s is None else length_text(session.duration_s)
    flags = session_flags(session)
    extra = f"  ({'; '.join(flags)})" if flags else ""
    lines = [
        f"{session.id:>4}  {start:%a %Y-%m-%d %H:%M}  {length:>7}  {session.outcome:<11}  "
        f"{session.profile}{extra}"
    ]
    for alarm in session.alarms:
        at = alarm.at.astimezone(tz)
        lines.append(f"{'':>6}! {alarm.limit_id} {alarm.priority} {at:%H:%M}: {alarm.message}")
    return "\n".join(lines) + "\n"


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
            f"{moment.astimezone(tz):%Y-%m-%d %H:%M} is in the future; give the time the injury "
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
