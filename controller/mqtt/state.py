"""The retained ``relieve/<node>/state`` document, built from the daemon's status (pure).

Times are wall-clock ISO 8601 with offset, so Home Assistant counts a phase down by itself:
``phase_ends`` and ``session_ends`` are now plus what is left, in real seconds (session seconds
divided by the node's speed). Unknown values are null.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["STATES", "node_state"]

STATES = ("idle", "starting", "preconditioning", "running", "paused", "link-lost")


def _at(now: datetime, session_seconds: Any, speed: float) -> str | None:
    if not isinstance(session_seconds, int | float) or isinstance(session_seconds, bool):
        return None
    real = float(session_seconds) / (speed if speed > 0 else 1.0)
    return (now + timedelta(seconds=real)).isoformat(timespec="seconds")


def node_state(
    status: Mapping[str, Any],
    *,
    now: datetime,
    exposure_today: Mapping[str, float] | None = None,
    selected_profile: str | None = None,
    remote_start: bool = False,
    armed_until: datetime | None = None,
) -> dict[str, Any]:
    """The state document from a daemon ``status`` (``NodeDaemon.status()``)."""
    node = status.get("node") or {}
    session = status.get("session")
    last = status.get("last") or {}
    finished = last.get("finished") or {}
    speed = float(node.get("speed") or 1.0)
    out: dict[str, Any] = {
        "state": "idle",
        "profile": None,
        "title": None,
        "phase": None,
        "phase_label": None,
        "phase_ends": None,
        "session_ends": None,
        "devices": {},
        "links_ok": None,
        "problem": False,
        "alarm": None,
        "exposure_today": dict(exposure_today) if exposure_today is not None else None,
        "last_outcome": finished.get("outcome"),
        "selected_profile": selected_profile,
        "remote_start": remote_start,
        "armed_until": armed_until.isoformat(timespec="seconds") if armed_until else None,
        "updated": now.isoformat(timespec="seconds"),
    }
    if finished:
        # a session that ended badly stays a problem until the next one begins
        out["problem"] = finished.get("outcome") == "aborted" or not finished.get(
            "devices_off", True
        )
    if not isinstance(session, Mapping):
        return out
    state = str(session.get("state") or "running")
    out["state"] = state if state in STATES else "running"
    out["profile"] = session.get("profile")
    out["title"] = session.get("title")
    phase = session.get("phase") or {}
    if phase:
        out["phase"] = phase.get("mode")
        out["phase_label"] = phase.get("label")
    if out["state"] not in ("paused", "link-lost"):  # a held clock ends nothing
        out["phase_ends"] = _at(now, session.get("phase_left_s"), speed)
        out["session_ends"] = _at(now, session.get("time_left_s"), speed)
    links = session.get("links") or {}
    devices = session.get("devices") or {}
    out["devices"] = {
        role: {"name": name, "link": "linked" if links.get(role, True) else "lost"}
        for role, name in devices.items()
    }
    out["links_ok"] = all(links.values()) if links else None
    alarms = session.get("alarms") or []
    if alarms:
        latest = alarms[-1]
        out["alarm"] = latest.get("reason")
        out["problem"] = latest.get("priority") == "high" or out["state"] == "link-lost"
    else:
        out["problem"] = out["state"] == "link-lost"
    return out
