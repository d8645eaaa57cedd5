"""The one typed event stream every front end reads (CLI, ``--json`` lines, TUI, MQTT, history).

Every event has ``t`` (session seconds: negative during pre-conditioning, 0 when therapy
starts) and a ``type``. ``to_json()`` gives the documented JSON object (docs/events.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "Alarm",
    "Event",
    "Finished",
    "Notice",
    "Outcome",
    "PhaseChanged",
    "Prompt",
    "SessionStarted",
    "StateChanged",
    "Telemetry",
]

Outcome = Literal["completed", "stopped", "aborted", "interrupted"]


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"
    t: float

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key, value in asdict(self).items():
            if value is not None:
                out[key] = round(value, 3) if isinstance(value, float) else value
        return out


@dataclass(frozen=True)
class SessionStarted(Event):
    type: ClassVar[str] = "started"
    profile: str
    title: str
    total_s: float
    devices: dict[str, str] = field(default_factory=dict)  # role -> "name (address)"
    simulated: bool = False
    speed: float = 1.0


@dataclass(frozen=True)
class PhaseChanged(Event):
    """A new phase of the timeline (or ``off`` at the end and while pre-conditioning)."""

    type: ClassVar[str] = "phase"
    mode: Literal["heat", "cold", "massage", "stretch", "off", "preheat", "precool"]
    duration_s: float | None = None
    celsius: float | None = None
    rpm: int | None = None
    area: str | None = None
    label: str | None = None
    index: int | None = None  # position in the plan's phases
    count: int | None = None  # how many phases the plan has


@dataclass(frozen=True)
class Prompt(Event):
    """Something the person must do, shown ``heads_up_s`` before ``due``."""

    type: ClassVar[str] = "prompt"
    text: str
    due: float


@dataclass(frozen=True)
class Telemetry(Event):
    type: ClassVar[str] = "telemetry"
    role: str
    plate_celsius: float | None = None
    skin_celsius: float | None = None
    setpoint_celsius: float | None = None
    rpm: int | None = None
    battery: int | None = None


@dataclass(frozen=True)
class StateChanged(Event):
    """Paused, resumed, a link lost or back, the massage warning before the cap."""

    type: ClassVar[str] = "state"
    state: Literal["preconditioning", "running", "paused", "resumed", "link-lost", "link-restored"]
    reason: str | None = None


@dataclass(frozen=True)
class Notice(Event):
    """A warning that does not stop the session (e.g. one minute before the massage cap)."""

    type: ClassVar[str] = "notice"
    message: str
    level: Literal["info", "warning"] = "warning"


@dataclass(frozen=True)
class Alarm(Event):
    type: ClassVar[str] = "alarm"
    priority: Literal["high", "medium"]
    reason: str
    message: str
    role: str | None = None
    limit_id: str | None = None


@dataclass(frozen=True)
class Finished(Event):
    type: ClassVar[str] = "finished"
    outcome: Outcome
    reason: str | None = None
    delivered_s: float = 0.0
    devices_off: bool = True
    recorded: bool = True  # False: the history could not record this session (in full)
