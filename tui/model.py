"""What the session screen shows, kept from the session's events (no textual here).

:class:`SessionModel` takes every event of one session (``apply``) and answers what the screen
draws: the devices and their links, the phase timeline, the countdown, the temperatures, the
gun, the next prompt, the alarm banner and the finish summary. The screen only renders it.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

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
from profiles.plan import Plan

__all__ = ["MODE_TEXT", "SessionModel", "Thermal", "clock_text", "device_name"]

HISTORY_POINTS = 180  # telemetry samples a sparkline keeps (three minutes at one a second)
PROMPT_HEADS_UP_S = 10.0

MODE_TEXT = {
    "heat": "HEAT",
    "cold": "COLD",
    "massage": "MASSAGE",
    "stretch": "STRETCH",
    "off": "rest",
    "preheat": "PRE-HEAT",
    "precool": "PRE-COOL",
}
_ADDRESS = re.compile(r"\s*\([0-9A-Fa-f:]{17}\)$")


def clock_text(seconds: float) -> str:
    """``m:ss`` (``-m:ss`` before time zero)."""
    sign = "-" if seconds < 0 else ""
    minutes, secs = divmod(round(abs(seconds)), 60)
    return f"{sign}{minutes}:{secs:02d}"


def device_name(described: str) -> str:
    """A device's short name: "relieve Contrast Pad (C0:DE:...)" -> "Contrast Pad"."""
    name = _ADDRESS.sub("", described)
    return name.removeprefix("relieve ")


@dataclass
class Thermal:
    """One thermal output as telemetry reports it (``heat``, ``cold`` or ``pad`` for both)."""

    role: str
    plate: float | None = None
    setpoint: float | None = None
    history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))


@dataclass
class SessionModel:
    """Everything the session screen shows, from the events seen so far."""

    title: str = ""
    simulated: bool = False
    speed: float = 1.0
    total_s: float = 0.0
    devices: dict[str, str] = field(default_factory=dict)  # role -> "name (address)"
    link_lost: set[str] = field(default_factory=set)  # device names whose link is lost
    plan: Plan | None = None
    phase: PhaseChanged | None = None
    state: str = "starting"
    t: float = 0.0  # the latest session time an event gave
    thermals: dict[str, Thermal] = field(default_factory=dict)
    skin: float | None = None
    skin_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))
    rpm: int | None = None
    prompt: Prompt | None = None
    notice: str | None = None
    alarm: Alarm | None = None  # a high alarm until acknowledged
    off_advice: list[str] = field(default_factory=list)  # what to do about an output still on
    finished: Finished | None = None
    refusal: str | None = None  # why the session did not start, one sentence

    # --- events ------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        self.t = event.t
        match event:
            case SessionStarted():
                self.title, self.simulated, self.speed = event.title, event.simulated, event.speed
                self.total_s, self.devices = event.total_s, dict(event.devices)
                self._thermal_roles()
            case PhaseChanged():
                self.phase = event
            case StateChanged():
                self._state(event)
            case Telemetry():
                self._telemetry(event)
            case Prompt():
                self.prompt = event
            case Notice():
                self.notice = event.message
                if "did not turn OFF" in event.message or "did not stop" in event.message:
                    self.off_advice.append(event.message)
            case Alarm():
                if event.priority == "high":
                    self.alarm = event
                else:
                    self.notice = f"{event.message}"
            case Finished():
                self.finished = event
                self.state = event.outcome
            case _:
                pass

    def _state(self, event: StateChanged) -> None:
        if event.state == "link-lost" and event.reason:
            self.link_lost.add(event.reason)
        elif event.state == "link-restored" and event.reason:
            self.link_lost.discard(event.reason)
        if event.state in ("paused", "link-lost"):
            self.state = "paused"
        elif event.state in ("running", "resumed", "link-restored"):
            self.state = "running"
        elif event.state == "preconditioning":
            self.state = "preconditioning"
        if event.state == "paused":
            why = f" ({event.reason})" if event.reason else ""
            self.notice = f"Paused{why}: every output is switched OFF; space resumes."
        elif event.state == "resumed" and self.notice and self.notice.startswith("Paused"):
            self.notice = None

    def _thermal_roles(self) -> None:
        heat, cold = self.devices.get("heat"), self.devices.get("cold")
        if heat is not None and heat == cold and heat != "manual":
            self.thermals = {"pad": Thermal("pad")}
            return
        self.thermals = {
            role: Thermal(role)
            for role, name in (("heat", heat), ("cold", cold))
            if name is not None and name != "manual"
        }

    def _telemetry(self, event: Telemetry) -> None:
        if event.skin_celsius is not None:
            self.skin = event.skin_celsius
            self.skin_history.append(event.skin_celsius)
        if event.role == "gun":
            self.rpm = event.rpm
            return
        thermal = self.thermals.get(event.role)
        if thermal is None and event.plate_celsius is not None:
            thermal = self.thermals.setdefault(event.role, Thermal(event.role))
        if thermal is not None and event.plate_celsius is not None:
            thermal.plate = event.plate_celsius
            thermal.setpoint = event.setpoint_celsius
            thermal.history.append(event.plate_celsius)

    def acknowledge(self) -> bool:
        """The person saw the high alarm; whether there was one."""
        had = self.alarm is not None
        self.alarm = None
        return had

    # --- what the screen shows ---------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.finished is None and self.refusal is None

    def badge(self) -> str:
        if not self.simulated:
            return ""
        # the started event's speed is 0 for virtual time (tests): JSON has no infinity
        virtual_time = self.speed == 0 or self.speed == float("inf")
        speed = "" if self.speed == 1.0 or virtual_time else f" x{self.speed:g}"
        virtual = " (virtual time)" if virtual_time else ""
        return f"SIMULATED{speed}{virtual}"

    def device_lines(self) -> list[str]:
        """Each device with the roles it plays and its link: "heat+cold Contrast Pad: linked"."""
        by_device: dict[str, list[str]] = {}
        for role, described in self.devices.items():
            by_device.setdefault(described, []).append(role)
        out = []
        for described, roles in by_device.items():
            if described == "manual":
                out.append(f"{'+'.join(roles)}: manual (timer and prompts)")
                continue
            name = device_name(described)
            link = "LINK LOST" if _lost(described, self.link_lost) else "linked"
            out.append(f"{'+'.join(roles)} {name}: {link}")
        return out

    def timeline(self) -> list[tuple[str, str]]:
        """(label, "done" | "now" | "next") for each phase of the plan."""
        if self.plan is None:
            return []
        current = self.phase.index if self.phase is not None else None
        preconditioning = self.phase is not None and self.phase.mode in ("preheat", "precool")
        out = []
        for i, phase in enumerate(self.plan.phases):
            label = f"{MODE_TEXT.get(phase.mode, phase.mode)} {clock_text(phase.duration_s)}"
            if current is None or preconditioning:
                where = "next"
            elif i < current:
                where = "done"
            elif i == current:
                where = "now"
            else:
                where = "next"
            out.append((label, where))
        return out

    def timeline_window(self, width: int) -> tuple[int, list[tuple[str, str]], int]:
        """The phases that fit in ``width`` characters around the current one: how many
        before it are left out, the phases shown, how many after it are left out."""
        phases = self.timeline()
        now = next((i for i, (_, where) in enumerate(phases) if where == "now"), None)
        start = 0 if now is None else max(0, now - 1)
        shown: list[tuple[str, str]] = []
        used = len(_more(start, "done"))
        for label, where in phases[start:]:
            cost = len(label) + 4  # a mark and the gap
            rest = len(phases) - start - len(shown) - 1
            if shown and used + cost + (len(_more(rest, "more")) if rest else 0) > width:
                break
            shown.append((label, where))
            used += cost
        return start, shown, len(phases) - start - len(shown)

    def phase_text(self) -> str:
        phase = self.phase
        if phase is None:
            return "Getting ready" if self.refusal is None else "Not started"
        if phase.mode == "off" and phase.index is not None and phase.index == phase.count:
            return "End of the plan: every device off"
        parts = [MODE_TEXT.get(phase.mode, phase.mode)]
        if phase.celsius is not None:
            parts.append(f"{phase.celsius:g} °C")
        if phase.rpm is not None:
            parts.append(f"{phase.rpm}/min")
        if phase.area:
            parts.append(phase.area)
        if phase.index is not None and phase.count:
            parts.append(f"({phase.index + 1}/{phase.count})")
        return " ".join(parts)

    def remaining(self, now: float) -> float | None:
        """Seconds left in the current phase (None: it has no set length)."""
        phase = self.phase
        if phase is None or not phase.duration_s:
            return None
        return max(0.0, phase.t + phase.duration_s - now)

    def progress(self, now: float) -> float:
        """Seconds of the plan done, 0 to total."""
        return min(max(now, 0.0), self.total_s)

    def thermal_line(self, thermal: Thermal) -> str:
        role = "heat+cold" if thermal.role == "pad" else thermal.role
        plate = "--" if thermal.plate is None else f"{thermal.plate:.1f}"
        target = "off" if thermal.setpoint is None else f"{thermal.setpoint:g} °C"
        return f"{role} plate: {plate} °C (setpoint {target})"

    def skin_line(self) -> str | None:
        """The skin under the pad, when a probe is bound."""
        if "probe" not in self.devices:
            return None
        skin = "--" if self.skin is None else f"{self.skin:.1f}"
        return f"skin (probe): {skin} °C"

    def gun_line(self, now: float) -> str | None:
        if "gun" not in self.devices:
            return None
        speed = "stopped" if not self.rpm else f"{self.rpm}/min"
        left = self.gun_left(now)
        cap = "" if left is None else f"  {clock_text(left)} left to its cap"
        return f"gun: {speed}{cap}"

    def gun_left(self, now: float) -> float | None:
        """Seconds of massage the plan has left for the gun (what its cap allows)."""
        if self.plan is None:
            return None
        runs = [s for s in self.plan.steps if s.role == "gun" and s.action == "run"]
        if not runs:
            return None
        return sum(max(0.0, s.start_s + s.duration_s - max(now, s.start_s)) for s in runs)

    def prompt_line(self, now: float) -> str | None:
        prompt = self.prompt
        if prompt is None or not self.active:
            return None
        due_in = prompt.due - now
        if due_in > 0:
            return f"NEXT in {clock_text(due_in)}: {prompt.text}"
        if due_in > -PROMPT_HEADS_UP_S * 3:
            return f"NOW: {prompt.text}"
        return None

    def banner(self) -> str | None:
        """The high alarm: what happened, and that every output is OFF (or what to do)."""
        alarm = self.alarm
        if alarm is None:
            return None
        if self.finished is None:
            off = "Every output is being switched OFF."
        elif self.finished.devices_off:
            off = "Every output is OFF."
        else:
            off = " ".join(self.off_advice) or "An output may still be ON: unplug it now."
        return f"ALARM: {alarm.message} {off} Press a to acknowledge."

    def summary(self) -> str | None:
        done = self.finished
        if done is None:
            return self.refusal
        reason = f" ({done.reason.rstrip('.')})" if done.reason else ""
        if done.devices_off:
            off = "Every device is OFF."
        else:
            advice = " ".join(self.off_advice) or "Unplug the devices (or switch them off) now."
            off = f"NOT every device is confirmed OFF: {advice}"
        recorded = (
            "Recorded in the history."
            if done.recorded
            else "NOT recorded in the history in full: note it down."
        )
        return (
            f"Session {done.outcome}{reason}. {clock_text(done.delivered_s)} of therapy "
            f"delivered. {off} {recorded}"
        )


def _more(count: int, what: str) -> str:
    """ "(3 done)  " before the window, "  +5 more" after it ("" for none)."""
    if not count:
        return ""
    return f"({count} {what})  " if what == "done" else f"  +{count} more"


def _lost(described: str, lost: set[str]) -> bool:
    name = _ADDRESS.sub("", described)
    return name in lost or described in lost
