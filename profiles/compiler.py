"""Compile a profile into a :class:`~profiles.plan.Plan`, then re-check the plan against the limits.

Pure: a function of the profile, the devices' capabilities and the limits. The compiled plan is
checked again as a whole (:func:`check_plan`): every number finite and every step but a prompt
taking time, continuous heat per area across steps, totals per session, the contrast structure,
cold and massage caps, each ON step within its modality's cap. A plan that breaks a limit is never
returned: :class:`~profiles.errors.LimitError` names the limit instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from profiles.errors import LimitError, RelieveError
from profiles.limits import (
    HARD,
    SPEED_LEVEL_RPM,
    Limits,
    Violation,
    check_on_steps,
    check_plan_numbers,
    level_band,
    minutes_text,
)
from profiles.models import (
    ColdSection,
    ContrastSection,
    HeatSection,
    MassageSection,
    Profile,
    StretchSection,
)
from profiles.plan import CONTRAST_PAD, Action, Capabilities, Mode, Phase, Plan, Role, Step

__all__ = [
    "GUN_WARMUP_S",
    "MASSAGE_EXTENSION_S",
    "PRECOOL_S",
    "PREHEAT_MAX_S",
    "CapabilityError",
    "check_plan",
    "compile_plan",
]

PREHEAT_MAX_S = 120.0  # pre-heat before time zero, until within 1 °C of target, at most this long
PRECOOL_S = 90.0  # a separate cold pad pre-cools during the last 90 s before it goes on
GUN_WARMUP_S = 20.0  # M3: the gun starts at its lowest speed for the first seconds
MASSAGE_EXTENSION_S = 180.0  # M1: the confirmed "special occasion" extension adds 3 minutes
DEFAULT_COLD_PAD_CELSIUS = 12.0  # C4 default (10-12 °C) when a cold profile names no setpoint
_EPS = 1e-6

Resolver = Callable[[str], Profile]


class CapabilityError(RelieveError):
    """The devices at hand cannot run this profile (no cold device for contrast, ...)."""


@dataclass
class _Builder:
    """Collects phases and steps for one profile, at an offset within a routine."""

    profile: Profile
    caps: Capabilities
    limits: Limits
    offset: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def area(self) -> str | None:
        return self.profile.area

    def phase(
        self,
        mode: Mode,
        start: float,
        duration: float,
        *,
        area: str | None = None,
        celsius: float | None = None,
        rpm: int | None = None,
        label: str = "",
    ) -> None:
        self.phases.append(
            Phase(
                mode=mode,
                start_s=self.offset + start,
                duration_s=duration,
                profile=self.profile.name,
                area=area or self.area,
                celsius=celsius,
                rpm=rpm,
                label=label,
            )
        )

    def step(
        self,
        role: Role,
        action: Action,
        start: float,
        duration: float,
        *,
        area: str | None = None,
        celsius: float | None = None,
        level: int | None = None,
        rpm: int | None = None,
        manual: bool = False,
        text: str | None = None,
    ) -> None:
        self.steps.append(
            Step(
                role=role,
                action=action,
                start_s=self.offset + start,
                duration_s=duration,
                profile=self.profile.name,
                area=area or self.area,
                celsius=celsius,
                level=level,
                rpm=rpm,
                manual=manual,
                text=text,
            )
        )

    def prompt(self, at: float, text: str) -> None:
        self.step("user", "prompt", at, 0.0, text=text)

    # --- heat and cold ----------------------------------------------------------------------

    def heat(self, start: float, duration: float, celsius: float) -> None:
        caps = self.caps
        if caps.heat == "none":
            raise CapabilityError(
                f"'{self.profile.name}' needs a heat pad; bind one (or --heat manual for a "
                "passive heat pack)"
            )
        self.phase("heat", start, duration, celsius=celsius)
        if caps.heat == "manual":
            self.step("heat", "heat", start, duration, celsius=celsius, manual=True)
            return
        level = self._level_for(celsius) if caps.heat == "levels" else None
        self.step("heat", "heat", start, duration, celsius=celsius, level=level)

    def preheat(self, celsius: float) -> None:
        if self.caps.heat in ("setpoint", "levels"):
            level = self._level_for(celsius) if self.caps.heat == "levels" else None
            self.step(
                "heat", "preheat", -PREHEAT_MAX_S, PREHEAT_MAX_S, celsius=celsius, level=level
            )

    def cold(self, start: float, duration: float, celsius: float | None) -> None:
        caps = self.caps
        if caps.cold == "none":
            raise CapabilityError(
                f"'{self.profile.name}' needs a cold pad; bind one (or --cold manual for an "
                "ice pack)"
            )
        manual = caps.cold == "manual"
        if not manual and celsius is None:
            celsius = DEFAULT_COLD_PAD_CELSIUS
        self.phase("cold", start, duration, celsius=celsius)
        self.step("cold", "cold", start, duration, celsius=celsius, manual=manual)

    def precool(self, start: float, end: float, celsius: float | None) -> None:
        """Pre-cool a separate cold pad from ``start`` until it goes on at ``end``."""
        if self.caps.cold != "setpoint" or self.caps.combined or end - start <= 0:
            return
        self.step(
            "cold",
            "precool",
            start,
            end - start,
            celsius=DEFAULT_COLD_PAD_CELSIUS if celsius is None else celsius,
        )

    def _level_for(self, celsius: float) -> int:
        """The hottest level not hotter than ``celsius`` (never warmer than asked)."""
        levels = self.caps.heat_levels
        fitting = [i + 1 for i, c in enumerate(levels) if c <= celsius + _EPS]
        if not fitting:
            lowest = f"{levels[0]:g} °C" if levels else "unknown"
            raise CapabilityError(
                f"this heat pad has levels only, the lowest at {lowest}; {celsius:g} °C cannot "
                "be set on it, so choose a temperature at or above its lowest level"
            )
        return max(fitting)


def compile_plan(
    profile: Profile,
    caps: Capabilities = CONTRAST_PAD,
    *,
    resolve: Resolver | None = None,
    extended: bool = False,
    limits: Limits = HARD,
) -> Plan:
    """Compile ``profile`` for devices with ``caps``; raise if the plan would break a limit.

    ``resolve`` finds the profiles a routine names. ``extended`` applies the one-a-day massage
    extension (M1), which the caller must have confirmed with the user.
    """
    if extended and not _has_massage(profile, resolve):
        raise CapabilityError(
            f"'{profile.name}' has no massage to extend; the extension is for massage sessions"
        )
    builders = []
    offset = 0.0
    for part in _parts(profile, resolve):
        builder = _Builder(part, caps, limits, offset)
        duration = _compile_part(builder, extended=extended)
        builders.append(builder)
        offset += duration
    phases = tuple(p for b in builders for p in b.phases)
    steps = _fit_preconditioning([s for b in builders for s in b.steps], caps)
    plan = Plan(
        name=profile.name,
        title=profile.title,
        kind=profile.kind,
        total_s=offset,
        phases=phases,
        steps=tuple(sorted(steps, key=_step_order)),
        capabilities=caps,
        extended=extended,
        warnings=tuple(w for part in _parts(profile, resolve) for w in part.warnings()),
    )
    violations = check_plan(plan, limits)
    if violations:
        first = violations[0]
        raise LimitError(first.limit_id, f"'{profile.name}' cannot run: {first}.")
    return plan


def _has_massage(profile: Profile, resolve: Resolver | None) -> bool:
    return any(p.kind == "massage" for p in _parts(profile, resolve))


def _parts(profile: Profile, resolve: Resolver | None) -> list[Profile]:
    if profile.kind != "routine":
        return [profile]
    if resolve is None:
        raise CapabilityError(f"routine '{profile.name}' needs its step profiles to compile")
    parts = []
    for name in profile.steps or ():
        part = resolve(name)
        if part.kind == "routine":
            raise CapabilityError(
                f"routine '{profile.name}' names routine '{name}'; a routine's steps must be "
                "single sessions, so list that routine's steps instead"
            )
        parts.append(part)
    return parts


def _step_order(step: Step) -> tuple[float, int]:
    # prompts first at the same instant, so a person is told before a device changes
    return (step.start_s, 0 if step.role == "user" else 1)


def _compile_part(b: _Builder, *, extended: bool) -> float:
    p = b.profile
    if p.contrast is not None:
        return _contrast(b, p.contrast)
    if p.heat is not None:
        return _heat(b, p.heat)
    if p.cold is not None:
        return _cold(b, p.cold)
    if p.massage is not None:
        return _massage(b, p.massage, extended=extended)
    if p.stretch is not None:
        return _stretch(b, p.stretch)
    raise CapabilityError(f"'{p.name}' has nothing to run")  # pragma: no cover - model forbids


def _area_text(b: _Builder) -> str:
    return (b.area or "the area").replace("-", " ")


def _contrast(b: _Builder, c: ContrastSection) -> float:
    heat_s, cold_s = c.heat_minutes * 60, c.cold_minutes * 60
    separate = not b.caps.combined
    pad = "the heat pad" if separate else "the pad"
    b.preheat(c.heat_celsius)
    t = 0.0
    for cycle in range(c.cycles):
        if cycle == 0:
            b.prompt(
                t,
                f"Put {pad} on your {_area_text(b)} with a fabric layer between pad and skin. "
                "Stay awake and do not lie on the pad.",
            )
        elif separate:
            b.prompt(t, "Swap pads: cold pad off, heat pad on, with its fabric layer.")
        else:
            b.prompt(t, "Heat next: keep the fabric layer between the pad and your skin.")
        b.heat(t, heat_s, c.heat_celsius)
        t += heat_s
        b.precool(max(t - PRECOOL_S, t - heat_s), t, c.cold_celsius)
        if separate:
            b.prompt(t, "Swap pads: heat pad off, cold pad on, with a thin towel against the skin.")
        else:
            b.prompt(t, "Cold next: put a thin towel between the pad and your skin.")
        b.cold(t, cold_s, c.cold_celsius)
        t += cold_s
    b.prompt(t, "Contrast done: take the pad off and let the skin rest.")
    return t


def _heat(b: _Builder, h: HeatSection) -> float:
    duration = h.minutes * 60
    b.preheat(h.celsius)
    b.prompt(
        0.0,
        f"Put the heat pad on your {_area_text(b)} with a fabric layer between pad and skin. "
        "Stay awake and do not lie on the pad.",
    )
    b.heat(0.0, duration, h.celsius)
    b.prompt(duration, "Heat done: take the pad off.")
    return duration


def _cold(b: _Builder, c: ColdSection) -> float:
    duration = c.minutes * 60
    b.precool(-PRECOOL_S, 0.0, c.celsius)
    if b.caps.cold == "setpoint" and b.caps.combined:
        # a contrast pad pre-cools itself before it goes on
        celsius = DEFAULT_COLD_PAD_CELSIUS if c.celsius is None else c.celsius
        b.step("cold", "precool", -PRECOOL_S, PRECOOL_S, celsius=celsius)
    b.prompt(
        0.0,
        f"Put the cold pack on your {_area_text(b)} with a thin towel between it and your skin.",
    )
    b.cold(0.0, duration, c.celsius)
    b.prompt(duration, "Cold done: take the pack off and let the skin warm up.")
    return duration


def _massage(b: _Builder, m: MassageSection, *, extended: bool) -> float:
    total = m.minutes * 60 + (MASSAGE_EXTENSION_S if extended else 0.0)
    manual = b.caps.gun == "manual"
    if b.caps.gun == "none":
        raise CapabilityError(f"'{b.profile.name}' needs a massage gun; bind one")
    rpm = m.target_rpm
    low = SPEED_LEVEL_RPM["low"]
    t, visit = 0.0, 0
    while total - t > _EPS:
        area = m.areas[visit % len(m.areas)]
        duration = min(area.seconds, total - t)
        b.phase("massage", t, duration, area=area.name, rpm=rpm, label=area.display)
        b.prompt(t, f"Move the gun to the {area.display}.")
        warmup = min(GUN_WARMUP_S, duration) if visit == 0 and rpm > low else 0.0
        if warmup:
            b.step("gun", "run", t, warmup, area=area.name, rpm=low, manual=manual)
        if duration > warmup:  # a first visit no longer than the warm-up has nothing after it
            b.step(
                "gun", "run", t + warmup, duration - warmup, area=area.name, rpm=rpm, manual=manual
            )
        t += duration
        visit += 1
    b.prompt(t, "Massage done: switch the gun off and put it down.")
    return t


def _stretch(b: _Builder, s: StretchSection) -> float:
    t = 0.0
    holds = [hold for _ in range(s.rounds) for hold in s.holds]
    for index, hold in enumerate(holds):
        b.phase("stretch", t, hold.seconds, label=hold.name)
        b.prompt(t, f"Stretch: {hold.name}, hold {hold.seconds:g} s.")
        b.step("user", "hold", t, hold.seconds, text=hold.name)
        t += hold.seconds
        if s.rest_seconds and index < len(holds) - 1:
            b.phase("off", t, s.rest_seconds, label="rest")
            b.step("user", "rest", t, s.rest_seconds)
            t += s.rest_seconds
    b.prompt(t, "Stretching done.")
    return t


def _device_of(role: Role, caps: Capabilities) -> str:
    return "pad" if role in ("heat", "cold") and caps.combined else role


def _fit_preconditioning(steps: list[Step], caps: Capabilities) -> list[Step]:
    """Start pre-heat/pre-cool no earlier than the same device's previous step ends."""
    out = []
    for original in steps:
        step = original
        if step.action in ("preheat", "precool"):
            device = _device_of(step.role, caps)
            busy_until = max(
                (
                    s.end_s
                    for s in steps
                    if s is not original
                    and s.action not in ("preheat", "precool", "prompt")
                    and not s.manual
                    and _device_of(s.role, caps) == device
                    and s.start_s < step.end_s - _EPS
                ),
                default=None,
            )
            if busy_until is not None and busy_until > step.start_s:
                if busy_until >= step.end_s - _EPS:
                    continue  # the device is in use right up to the switch: nothing to prepare
                step = replace(step, start_s=busy_until, duration_s=step.end_s - busy_until)
        out.append(step)
    return out


# --- re-checking a compiled plan -----------------------------------------------------------


def check_plan(plan: Plan, limits: Limits = HARD) -> list[Violation]:
    """Every limit the plan breaks (empty when it is safe), in timeline order.

    A number that is not finite (NaN, infinity) is reported alone: every other check compares
    numbers, and a comparison with NaN is always false, so it would pass them all.
    """
    numbers = check_plan_numbers(plan)
    if numbers:
        return numbers
    out: list[Violation] = []
    out += _check_tiling(plan)
    out += _check_heat(plan, limits)
    out += _check_cold(plan, limits)
    out += _check_contrast_structure(plan)
    out += _check_massage(plan, limits)
    out += [v for v in check_on_steps(plan, limits) if v not in out]
    return out


def _check_tiling(plan: Plan) -> Iterable[Violation]:
    t = 0.0
    for phase in plan.phases:
        if abs(phase.start_s - t) > _EPS or phase.duration_s <= 0:
            yield Violation("S4", f"the timeline has a gap or overlap at {phase.start_s:g} s")
            return
        t = phase.end_s
    if abs(t - plan.total_s) > _EPS:
        yield Violation("S4", "the timeline does not reach the end of the session")


def _runs(steps: Iterable[Step]) -> list[list[Step]]:
    """Group steps into runs that follow each other without a break on the same area."""
    runs: list[list[Step]] = []
    for step in sorted(steps, key=lambda s: s.start_s):
        last = runs[-1][-1] if runs else None
        if last is not None and abs(last.end_s - step.start_s) < _EPS and last.area == step.area:
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs


def _check_heat(plan: Plan, limits: Limits) -> Iterable[Violation]:
    heat = [s for s in plan.steps if s.action == "heat"]
    for run in _runs(heat):
        duration = sum(s.duration_s for s in run)
        if duration > limits.heat_continuous_max_s + _EPS:
            yield Violation(
                "H2",
                f"heat stays on the {run[0].area} for {minutes_text(duration)} without a break, "
                f"over {minutes_text(limits.heat_continuous_max_s)}",
            )
        hottest = max((s.celsius for s in run if s.celsius is not None), default=None)
        if hottest is not None and (v := limits.check_heat_celsius(hottest, duration)):
            yield v
        for s in run:
            if s.level is not None and (
                v := limits.check_level_step(
                    level_band(s.level, len(plan.capabilities.heat_levels)), s.duration_s
                )
            ):
                yield v
    total = sum(s.duration_s for s in heat)
    if total > limits.heat_session_max_s + _EPS:
        yield Violation(
            "H3",
            f"the session heats for {minutes_text(total)}, over the "
            f"{minutes_text(limits.heat_session_max_s)} allowed in one session",
        )


def _check_cold(plan: Plan, limits: Limits) -> Iterable[Violation]:
    cold = [s for s in plan.steps if s.action in ("cold", "precool")]
    for run in _runs(s for s in cold if s.action == "cold"):
        duration = sum(s.duration_s for s in run)
        if duration > limits.cold_continuous_max_s + _EPS:
            yield Violation(
                "C1",
                f"cold stays on the {run[0].area} for {minutes_text(duration)} without a break, "
                f"over {minutes_text(limits.cold_continuous_max_s)}",
            )
    for s in cold:
        if s.celsius is not None and (v := limits.check_cold_plate(s.celsius)):
            yield v


def _check_contrast_structure(plan: Plan) -> Iterable[Violation]:
    by_profile: dict[str, list[Phase]] = {}
    for phase in plan.phases:
        by_profile.setdefault(phase.profile, []).append(phase)
    for name, phases in by_profile.items():
        modes = [p.mode for p in phases]
        is_contrast = "heat" in modes and "cold" in modes
        if is_contrast and (modes[0] != "heat" or modes[-1] != "cold"):
            yield Violation("X1", f"contrast '{name}' must begin with heat and end with cold")


def _check_massage(plan: Plan, limits: Limits) -> Iterable[Violation]:
    cap = limits.massage_extended_max_s if plan.extended else limits.massage_max_s
    runs = [s for s in plan.steps if s.action == "run"]
    per_profile: dict[str, float] = {}
    for s in runs:
        per_profile[s.profile] = per_profile.get(s.profile, 0.0) + s.duration_s
    for name, seconds in per_profile.items():
        if seconds > cap + _EPS:
            yield Violation(
                "M1",
                f"massage '{name}' runs {minutes_text(seconds)}, over {minutes_text(cap)}",
            )
    for run in _runs(runs):
        duration = sum(s.duration_s for s in run)
        if duration > limits.massage_area_max_s + _EPS:
            yield Violation(
                "M2",
                f"the gun stays on the {run[0].area} for {duration:g} s, over "
                f"{limits.massage_area_max_s:g} s",
            )
