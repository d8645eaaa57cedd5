"""The plan: an immutable, timed description of a session, compiled from a profile.

Time zero is when therapy starts (the first pad on the skin, the gun on the first area). Offsets
are absolute seconds from time zero; pre-conditioning (pre-heat, pre-cool) may start before it.

* :class:`Phase` -- the therapy timeline as a person lives it. Phases tile ``[0, total_s)``
  without gaps or overlaps: heat, cold, massage, stretch, off (a rest between holds).
* :class:`Step` -- what each role does when: ``heat`` / ``cold`` (a pad, or a passive pack
  when ``manual``), ``gun``, and ``user`` prompts. Steps of different roles may overlap
  (pre-cooling the cold pad while the heat pad is on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Action",
    "Capabilities",
    "Mode",
    "Phase",
    "Plan",
    "Role",
    "Step",
]

Role = Literal["heat", "cold", "gun", "user"]
Mode = Literal["heat", "cold", "massage", "stretch", "off"]
Action = Literal["preheat", "heat", "precool", "cold", "run", "prompt", "hold", "rest"]

# Therapy actions: the ones that fill the timeline (the rest prepare devices or talk to the user).
THERAPY_ACTIONS: frozenset[str] = frozenset({"heat", "cold", "run", "hold", "rest"})


@dataclass(frozen=True)
class Capabilities:
    """What the devices a plan will run on can do.

    ``heat`` / ``cold``: ``setpoint`` (a temperature), ``levels`` (heat only: discrete levels,
    with ``heat_levels`` the °C of level 1..n), ``manual`` (a passive pack: timer and prompts
    only), or ``none``. ``combined``: one pad both heats and cools (a contrast pad), so there is
    nothing to pre-cool and nothing to swap. ``probe``: a skin probe is bound, so H1/C3 are
    checked on measured skin temperature rather than on the plate.
    """

    heat: Literal["setpoint", "levels", "manual", "none"] = "setpoint"
    cold: Literal["setpoint", "manual", "none"] = "setpoint"
    combined: bool = True
    heat_levels: tuple[float, ...] = ()
    gun: Literal["rpm", "manual", "none"] = "rpm"
    probe: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "heat": self.heat,
            "cold": self.cold,
            "combined": self.combined,
            "heat_levels": list(self.heat_levels),
            "gun": self.gun,
            "probe": self.probe,
        }


CONTRAST_PAD = Capabilities()
"""The default: one contrast pad that heats and cools, a massage gun, no probe."""


@dataclass(frozen=True)
class Phase:
    """One stretch of the therapy timeline."""

    mode: Mode
    start_s: float
    duration_s: float
    profile: str
    area: str | None = None
    celsius: float | None = None
    rpm: int | None = None
    label: str = ""

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Step:
    """What one role does from ``start_s`` for ``duration_s`` (0 for a prompt)."""

    role: Role
    action: Action
    start_s: float
    duration_s: float
    profile: str
    area: str | None = None
    celsius: float | None = None
    level: int | None = None
    rpm: int | None = None
    manual: bool = False
    text: str | None = None

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "action": self.action,
            "start_s": _num(self.start_s),
            "duration_s": _num(self.duration_s),
            "profile": self.profile,
        }
        for key in ("area", "celsius", "level", "rpm", "text"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _num(value) if isinstance(value, float) else value
        if self.manual:
            out["manual"] = True
        return out


@dataclass(frozen=True)
class Plan:
    """A compiled session: the phases that tile its timeline and every role's steps."""

    name: str
    title: str
    kind: str
    total_s: float
    phases: tuple[Phase, ...]
    steps: tuple[Step, ...]
    capabilities: Capabilities
    extended: bool = False
    warnings: tuple[str, ...] = field(default=())

    @property
    def preroll_s(self) -> float:
        """How long before time zero the first step (pre-heat, pre-cool) starts."""
        return max(0.0, -min((s.start_s for s in self.steps), default=0.0))

    def steps_for(self, role: Role) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.role == role)

    def therapy_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action in THERAPY_ACTIONS)

    def seconds_of(self, action: Action) -> float:
        """Total seconds of one action (e.g. heat delivered to the skin)."""
        return sum(s.duration_s for s in self.steps if s.action == action)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "total_seconds": _num(self.total_s),
            "preroll_seconds": _num(self.preroll_s),
            "extended": self.extended,
            "capabilities": self.capabilities.to_json(),
            "warnings": list(self.warnings),
            "phases": [
                {
                    "mode": p.mode,
                    "start_s": _num(p.start_s),
                    "duration_s": _num(p.duration_s),
                    "profile": p.profile,
                    **({"area": p.area} if p.area else {}),
                    **({"celsius": _num(p.celsius)} if p.celsius is not None else {}),
                    **({"rpm": p.rpm} if p.rpm is not None else {}),
                    **({"label": p.label} if p.label else {}),
                }
                for p in self.phases
            ],
            "steps": [s.to_json() for s in self.steps],
        }


def _num(value: float) -> float | int:
    """Whole numbers as ints in JSON (300, not 300.0)."""
    return int(value) if float(value).is_integer() else round(value, 3)
