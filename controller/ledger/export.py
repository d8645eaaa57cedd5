"""The history as people and programs read it, shared by every front end.

The JSON objects and CSV rows of ``relieve history --json`` / ``--csv`` (:func:`write_json`,
:func:`write_csv`), and the short texts the history shows: today's minutes per modality and
area, an injury's acute window, a session's length and notes. Pure: nothing here opens the
ledger or a file; times are shown in ``tz`` (None: the system's local time).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import IO, Any

from controller.ledger import allowances
from controller.ledger.records import SessionRecord
from profiles.limits import HARD

__all__ = [
    "CSV_COLUMNS",
    "injury_line",
    "iso_time",
    "length_text",
    "session_flags",
    "session_json",
    "short_minutes",
    "today_summary",
    "write_csv",
    "write_json",
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


# --- short texts ------------------------------------------------------------------------------


def short_minutes(seconds: float) -> str:
    """Minutes to one decimal, without a trailing ``.0``: ``7 min``, ``1.5 min``."""
    return f"{seconds / 60:.1f}".removesuffix(".0") + " min"


def length_text(seconds: float) -> str:
    """A session's length as a clock: ``3:00``, ``1:02:05``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def iso_time(moment: datetime | None, tz: tzinfo | None) -> str | None:
    """``moment`` in local time with its offset, to the second (None stays None)."""
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def session_flags(session: SessionRecord) -> list[str]:
    """What set a session apart: ``extended`` (the massage extension), ``overrode H5, M1``."""
    flags = []
    if session.extended:
        flags.append("extended")
    if session.overrides:
        flags.append("overrode " + ", ".join(session.overrides))
    return flags


def today_summary(exposure: allowances.Exposure, now: datetime, tz: tzinfo | None) -> str:
    """``Today, Tue 7 May: heat 7 min, cold 5 min, massage 3 min`` and a line per area, each
    line ending in a newline."""
    day = now.astimezone(tz)
    totals = ", ".join(f"{m} {short_minutes(exposure.of(m))}" for m in allowances.MODALITIES)
    lines = [f"Today, {day:%a} {day.day} {day:%b}: {totals}"]
    width = max((len(a) for a in exposure.areas), default=0)
    for area in exposure.areas:
        parts = [
            f"{m} {short_minutes(exposure.of(m, area))}"
            for m in allowances.MODALITIES
            if exposure.of(m, area) > 0
        ]
        lines.append(f"  {area:<{width}}  " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def injury_line(area: str, at: datetime, now: datetime, tz: tzinfo | None) -> str:
    """What an injury recorded on ``area`` at ``at`` still rules out (H6), one sentence."""
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


# --- JSON and CSV -------------------------------------------------------------------------------


def session_json(session: SessionRecord, tz: tzinfo | None = None) -> dict[str, Any]:
    """One session as a JSON object (times in local time with their offset)."""
    seconds = allowances.delivered_seconds(session)
    return {
        "id": session.id,
        "profile": session.profile,
        "kind": session.kind,
        "started_at": iso_time(session.started_at, tz),
        "ended_at": iso_time(session.ended_at, tz),
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
                "at": iso_time(a.at, tz),
            }
            for a in session.alarms
        ],
        "phases": [
            {
                "mode": p.mode,
                "area": p.area,
                "celsius": p.celsius,
                "rpm": p.rpm,
                "started_at": iso_time(p.started_at, tz),
                "ended_at": iso_time(allowances.phase_end(p, session), tz),
                "estimated": p.estimated or p.ended_at is None,
            }
            for p in session.phases
        ],
    }


def write_json(sessions: Iterable[SessionRecord], out: IO[str], tz: tzinfo | None) -> None:
    """The sessions as an indented JSON list of :func:`session_json` objects, then a newline."""
    json.dump([session_json(s, tz) for s in sessions], out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_csv(sessions: Iterable[SessionRecord], out: IO[str], tz: tzinfo | None) -> None:
    """A header of :data:`CSV_COLUMNS`, then one row a session (seconds delivered per
    modality, alarms and overrides separated by spaces, flags as 0 or 1)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for session in sessions:
        seconds = allowances.delivered_seconds(session)
        writer.writerow(
            (
                session.id,
                session.profile,
                session.kind,
                iso_time(session.started_at, tz),
                iso_time(session.ended_at, tz) or "",
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
