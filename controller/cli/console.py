"""Session events for people (a live view) and for programs (``--json`` lines)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from controller.session.events import (
    Alarm,
    Event,
    Finished,
    Notice,
    PhaseChanged,
    Prompt,
    SessionStarted,
    StateChanged,
    Telemetry,
)

__all__ = ["JsonLines", "LiveView"]

BAR_WIDTH = 24

_MODE_TEXT = {
    "heat": "HEAT",
    "cold": "COLD",
    "massage": "MASSAGE",
    "stretch": "STRETCH",
    "off": "rest",
    "preheat": "pre-heat",
    "precool": "pre-cool",
}


class JsonLines:
    """One JSON object per event per line (docs/events.md)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        self._out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self._out.flush()


def clock_text(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{sign}{minutes}:{secs:02d}"


class LiveView:
    """What a person watches: phases, prompts, alarms as lines; a status line with the
    countdown, temperatures and a progress bar (redrawn in place on a terminal)."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self._out = out or sys.stdout
        self._tty = self._out.isatty() if tty is None else tty
        self._total = 0.0
        self._phase: PhaseChanged | None = None
        self._temps: dict[str, str] = {}
        self._status_shown = False

    def __call__(self, event: Event) -> None:
        match event:
            case SessionStarted():
                self._total = event.total_s
                devices = ", ".join(f"{role}: {name}" for role, name in event.devices.items())
                speed = f" at x{event.speed:g}" if event.simulated and event.speed > 1 else ""
                simulated = " (simulated devices)" if event.simulated else ""
                self._line(f"{event.title}{simulated}{speed}: {clock_text(event.total_s)}")
                if devices:
                    self._line(f"  devices: {devices}")
            case PhaseChanged():
                self._phase = event
                self._line(self._phase_text(event))
            case Prompt():
                self._line(f"{clock_text(event.t):>6}  » {event.text}")
            case Notice():
                self._line(f"{clock_text(event.t):>6}  ! {event.message}")
            case Alarm():
                self._line(f"{clock_text(event.t):>6}  ALARM ({event.priority}): {event.message}")
            case StateChanged() if event.state not in ("running", "preconditioning"):
                reason = f": {event.reason}" if event.reason else ""
                self._line(f"{clock_text(event.t):>6}  [{event.state}{reason}]")
            case Telemetry():
                self._telemetry(event)
            case Finished():
                self._finished(event)
            case _:
                pass

    def _phase_text(self, event: PhaseChanged) -> str:
        text = _MODE_TEXT.get(event.mode, event.mode)
        if event.mode == "off" and event.index is not None and event.index == event.count:
            return f"{clock_text(event.t):>6}  end of the plan: turning every device off"
        parts = [text]
        if event.celsius is not None:
            parts.append(f"{event.celsius:g} °C")
        if event.rpm is not None:
            parts.append(f"{event.rpm}/min")
        if event.label and event.label != text:
            parts.append(event.label)
        elif event.area and event.mode == "massage":
            parts.append(event.area)
        if event.duration_s:
            parts.append(f"for {clock_text(event.duration_s)}")
        if event.index is not None and event.count:
            parts.append(f"({event.index + 1}/{event.count})")
        return f"{clock_text(event.t):>6}  {' '.join(parts)}"

    def _telemetry(self, event: Telemetry) -> None:
        if event.plate_celsius is not None:
            self._temps[event.role] = f"{event.role} plate {event.plate_celsius:.1f} °C"
        if event.skin_celsius is not None:
            self._temps["skin"] = f"skin {event.skin_celsius:.1f} °C"
        if event.rpm:
            self._temps["gun"] = f"gun {event.rpm}/min"
        elif event.role == "gun":
            self._temps.pop("gun", None)
        if self._tty:
            self._status(event.t)

    def _status(self, t: float) -> None:
        done = min(max(t / self._total, 0.0), 1.0) if self._total else 0.0
        filled = round(done * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        left = ""
        if self._phase is not None and self._phase.duration_s:
            remaining = self._phase.t + self._phase.duration_s - t
            left = f"{clock_text(max(remaining, 0))} left in phase  "
        temps = "  ".join(self._temps.values())
        progress = f"{clock_text(t)}/{clock_text(self._total)}"
        self._out.write(f"\r\x1b[2K[{bar}] {progress}  {left}{temps}")
        self._out.flush()
        self._status_shown = True

    def _line(self, text: str) -> None:
        if self._status_shown:
            self._out.write("\r\x1b[2K")
            self._status_shown = False
        self._out.write(text + "\n")
        self._out.flush()

    def _finished(self, event: Finished) -> None:
        off = "every device is off" if event.devices_off else "COULD NOT CONFIRM every device off"
        reason = f" ({event.reason})" if event.reason else ""
        unrecorded = "" if event.recorded else " and NOT recorded in the history (note it down)"
        self._line(
            f"{clock_text(event.t):>6}  session {event.outcome}{reason}; "
            f"{clock_text(event.delivered_s)} of therapy delivered{unrecorded}; {off}."
        )
