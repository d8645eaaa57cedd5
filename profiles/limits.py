"""The safety limits relieve enforces: one table, one place (docs/safety.md).

Every limit carries its ID (H1, C2, X1, ...) so a refusal can name it and a reviewer can trace it to
its source. :class:`Limits` holds the numbers. Configuration may *tighten* a hard limit
(:meth:`Limits.tightened`), never loosen it. Nothing here clamps: a check either passes or returns
a :class:`Violation` that says which limit, what value, and what to do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from profiles.errors import LimitError

if TYPE_CHECKING:
    from profiles.plan import Plan, Step

__all__ = [
    "HARD",
    "LIMIT_TABLE",
    "MASSAGE_RPM_MAX",
    "MASSAGE_RPM_MIN",
    "ON_ACTIONS",
    "LimitInfo",
    "Limits",
    "Violation",
    "check_on_steps",
    "check_plan_numbers",
    "level_band",
    "refuse_unsafe_on_steps",
]


@dataclass(frozen=True)
class LimitInfo:
    """One row of the safety table: ID, what it limits, the hard rule, the default, the basis."""

    id: str
    limit: str
    hard: str
    default: str
    basis: str


def _table(*rows: LimitInfo) -> Mapping[str, LimitInfo]:
    return MappingProxyType({row.id: row for row in rows})


LIMIT_TABLE: Mapping[str, LimitInfo] = _table(
    LimitInfo(
        "H1",
        "heat, skin-side temperature",
        "<= 43 °C for steps >= 10 min; <= 45 °C only for steps <= 5 min",
        "40-42 °C",
        "IEC 60601-1 ed.3 Table 24; Moritz & Henriques 1947",
    ),
    LimitInfo(
        "H1L",
        "level-only heat pads (no temperature)",
        "high <= 5 min, medium <= 20 min, longer only at low",
        "low/medium",
        "derived from H1",
    ),
    LimitInfo(
        "H2",
        "continuous heat on one area",
        "20 min",
        "15 min",
        "clinical heat-pad guidance (15-20 min per area)",
    ),
    LimitInfo("H3", "heat-on minutes in one session", "30 min", "-", "contrast <= 30 min; H2"),
    LimitInfo(
        "H4",
        "every ON is time-bounded on the device",
        "lease <= 5 s (open profile) or the device's shortest timer",
        "-",
        "S1",
    ),
    LimitInfo(
        "H5",
        "heat/contrast sessions per day",
        "3, starts >= 2 h apart",
        "2-3",
        "seed guidance ('2 or 3 times per day, spread out')",
    ),
    LimitInfo(
        "H6",
        "acute window",
        "no heat, no contrast in the first 48 h after a recorded injury",
        "cold only for 72 h",
        "NHS / BMJ Best Practice cold phase 48-72 h",
    ),
    LimitInfo(
        "H7",
        "before heat",
        "confirm fabric layer, awake, not lying on the pad",
        "-",
        "FDA MAUDE heat-wrap burn reports",
    ),
    LimitInfo("C1", "continuous cold", "20 min", "15-20 min", "NHS; Bleakley 2006 RCT"),
    LimitInfo(
        "C2",
        "cold re-application",
        ">= 40 min off after 20 min on",
        "next start >= 60 min (seed: every 1-2 h)",
        "Bleakley 2006; Khoshnevis 2015",
    ),
    LimitInfo(
        "C3",
        "cold, skin-side temperature",
        "floor 10 °C",
        "target 10-15 °C",
        "Bugaj 1975; Algafly 2007",
    ),
    LimitInfo(
        "C4",
        "active cold plate (Peltier)",
        "floor 5 °C, always through a towel",
        "10-12 °C",
        "skin-ice interface ~5 °C (engineering judgement)",
    ),
    LimitInfo(
        "X1",
        "contrast structure",
        "start heat, end cold; phases 1-5 min (guidance 3-5); hot:cold 1:1 to 4:1; "
        "<= 3 cycles; <= 30 min",
        "5+5 x 3 (seed), 3+3 x 3 (Wilk 2022)",
        "seed; Wilk et al. 2022 IJSPT 17(5)",
    ),
    LimitInfo(
        "X3",
        "contrast counts into heat and cold budgets",
        "final cold phase starts the C2 clock",
        "-",
        "H3, C2",
    ),
    LimitInfo(
        "M1",
        "massage session",
        "15 min; one 'special occasion' extension to 18 min per day, explicitly confirmed",
        "10 min; allowed 5-15",
        "seed; clinical guidance 10-15 min",
    ),
    LimitInfo(
        "M2", "time on one area", "2 min", "60-90 s", "physio guidance (2 min max on one area)"
    ),
    LimitInfo(
        "M3",
        "intensity",
        "start at lowest speed; lumbar default <= 2400 ppm; top speed only by explicit choice",
        "lowest",
        "seed; Therabody precautions",
    ),
    LimitInfo("M4", "massage daily total", "45 min", "-", "seed ('not hours a day')"),
    LimitInfo(
        "S1",
        "safe state",
        "OFF; the host is never the only thing that turns a heater off",
        "-",
        "IEC 60730-1 Annex H; IEC 62304",
    ),
    LimitInfo(
        "S2",
        "link",
        "heartbeat <= 1 s; watchdog <= 5 s; on reconnect read state and send OFF first; "
        "never auto-resume after more than a 10 s blip",
        "-",
        "Apple accessory guidelines; watchdog precedents",
    ),
    LimitInfo(
        "S3",
        "exposure ledger",
        "cumulative minutes on disk; after a crash assume the device ran until its lease expired",
        "-",
        "-",
    ),
    LimitInfo(
        "S4",
        "alarms",
        "high: over-temperature, missing temperature, unacknowledged command -> all OFF; "
        "medium: link loss, step overrun",
        "-",
        "IEC 60601-1-8",
    ),
)


@dataclass(frozen=True)
class Violation:
    """A broken limit: which one, and the sentence a person reads."""

    limit_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} ({self.limit_id})"


Direction = Literal["max", "min"]

# Speeds a massage gun runs at, by level, in percussions per minute. Theragun's published
# speeds are 1750-2400 ppm; "high" is the lumbar default ceiling (M3), faster only by rpm.
SPEED_LEVEL_RPM: Mapping[str, int] = MappingProxyType({"low": 1750, "medium": 2100, "high": 2400})

# The speeds any percussion gun runs at (a sanity range, not a safety limit): a profile's or a
# command's rpm outside it is not what anyone means.
MASSAGE_RPM_MIN = 1000  # slower than any percussion gun runs
MASSAGE_RPM_MAX = 3616  # fastest Gen-4 gun (Theragun PRO/Elite)


@dataclass(frozen=True)
class Limits:
    """The numbers behind the table. The defaults are the hard limits (:data:`HARD`).

    Field metadata says which direction is tighter, so :meth:`tightened` can refuse loosening.
    """

    # H1: hottest skin-side setpoint for short steps (<= 5 min) and for all longer steps.
    heat_max_celsius_short: float = dataclasses.field(default=45.0, metadata={"dir": "max"})
    heat_max_celsius: float = dataclasses.field(default=43.0, metadata={"dir": "max"})
    heat_short_step_s: float = dataclasses.field(default=300.0, metadata={"dir": "max"})
    # H1L: level-only pads: longest step at "high" and at "medium".
    level_high_max_s: float = dataclasses.field(default=300.0, metadata={"dir": "max"})
    level_medium_max_s: float = dataclasses.field(default=1200.0, metadata={"dir": "max"})
    # H2 / H3
    heat_continuous_max_s: float = dataclasses.field(default=1200.0, metadata={"dir": "max"})
    heat_session_max_s: float = dataclasses.field(default=1800.0, metadata={"dir": "max"})
    # H4: longest lease an ON may carry.
    lease_max_s: float = dataclasses.field(default=5.0, metadata={"dir": "max"})
    # H5
    heat_sessions_per_day: int = dataclasses.field(default=3, metadata={"dir": "max"})
    heat_session_gap_s: float = dataclasses.field(default=7200.0, metadata={"dir": "min"})
    # H6: hours after an injury with no heat; the cold-only window.
    acute_no_heat_s: float = dataclasses.field(default=48 * 3600.0, metadata={"dir": "min"})
    acute_window_max_s: float = dataclasses.field(default=72 * 3600.0, metadata={"dir": "max"})
    # C1 / C2
    cold_continuous_max_s: float = dataclasses.field(default=1200.0, metadata={"dir": "max"})
    cold_rest_min_s: float = dataclasses.field(default=2400.0, metadata={"dir": "min"})
    # C3 / C4
    cold_skin_min_celsius: float = dataclasses.field(default=10.0, metadata={"dir": "min"})
    cold_plate_min_celsius: float = dataclasses.field(default=5.0, metadata={"dir": "min"})
    # X1
    contrast_phase_min_s: float = dataclasses.field(default=60.0, metadata={"dir": "min"})
    contrast_phase_max_s: float = dataclasses.field(default=300.0, metadata={"dir": "max"})
    contrast_ratio_max: float = dataclasses.field(default=4.0, metadata={"dir": "max"})
    contrast_cycles_max: int = dataclasses.field(default=3, metadata={"dir": "max"})
    contrast_total_max_s: float = dataclasses.field(default=1800.0, metadata={"dir": "max"})
    # M1 / M2 / M3 / M4
    massage_min_s: float = dataclasses.field(default=300.0, metadata={"dir": "min"})
    massage_max_s: float = dataclasses.field(default=900.0, metadata={"dir": "max"})
    massage_extended_max_s: float = dataclasses.field(default=1080.0, metadata={"dir": "max"})
    massage_area_max_s: float = dataclasses.field(default=120.0, metadata={"dir": "max"})
    massage_lumbar_max_rpm: int = dataclasses.field(default=2400, metadata={"dir": "max"})
    massage_daily_max_s: float = dataclasses.field(default=2700.0, metadata={"dir": "max"})

    def tightened(self, **changes: float) -> Limits:
        """A copy with some limits made stricter; loosening any of them is refused."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in fields:
                raise LimitError("S1", f"There is no safety limit called {name!r}.")
            current = getattr(self, name)
            direction: Direction = fields[name].metadata["dir"]
            looser = value > current if direction == "max" else value < current
            if looser:
                raise LimitError(
                    "S1",
                    f"Configuration may tighten {name} (now {current}) but never loosen it; "
                    f"{value} is refused.",
                )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # --- checks: each returns None when fine, or the Violation ---------------------------------

    def heat_max_for(self, step_s: float) -> float:
        """H1: the hottest setpoint allowed for a heat step of ``step_s`` seconds."""
        if step_s <= self.heat_short_step_s:
            return self.heat_max_celsius_short
        return self.heat_max_celsius

    def check_heat_celsius(self, celsius: float, step_s: float) -> Violation | None:
        ceiling = self.heat_max_for(step_s)
        if celsius <= ceiling:
            return None
        if ceiling == self.heat_max_celsius_short:
            return Violation(
                "H1",
                f"{celsius:g} °C is hotter than the {ceiling:g} °C skin-contact ceiling; "
                f"use {ceiling:g} °C or less",
            )
        return Violation(
            "H1",
            f"{celsius:g} °C for {_minutes(step_s)} is hotter than the {ceiling:g} °C allowed "
            f"for heat steps longer than {_minutes(self.heat_short_step_s)}; "
            f"use {ceiling:g} °C or less, or steps of {_minutes(self.heat_short_step_s)} or less",
        )

    def check_cold_plate(self, celsius: float) -> Violation | None:
        if celsius >= self.cold_plate_min_celsius:
            return None
        return Violation(
            "C4",
            f"{celsius:g} °C is colder than the {self.cold_plate_min_celsius:g} °C floor for a "
            f"cold plate; use {self.cold_plate_min_celsius:g} °C or warmer "
            f"(the skin itself must stay at or above {self.cold_skin_min_celsius:g} °C, C3)",
        )

    def check_level_step(self, band: str, step_s: float) -> Violation | None:
        """H1L: how long a level-only heat pad may stay at a band."""
        if band == "high" and step_s > self.level_high_max_s:
            return Violation(
                "H1L",
                f"a level-only heat pad may stay at a high level for at most "
                f"{_minutes(self.level_high_max_s)}, not {_minutes(step_s)}; "
                "choose a lower temperature or shorter steps",
            )
        if band == "medium" and step_s > self.level_medium_max_s:
            return Violation(
                "H1L",
                f"a level-only heat pad may stay at a medium level for at most "
                f"{_minutes(self.level_medium_max_s)}, not {_minutes(step_s)}; "
                "choose a lower temperature or shorter steps",
            )
        return None

    def on_step_max_s(self, action: str, *, extended: bool = False) -> float:
        """The longest one ON step of ``action`` may last: H2 for heat and pre-heat, C1 for
        cold and pre-cool, M1 for the gun (the confirmed extension's cap when ``extended``)."""
        if action in ("heat", "preheat"):
            return self.heat_continuous_max_s
        if action in ("cold", "precool"):
            return self.cold_continuous_max_s
        if action == "run":
            return self.massage_extended_max_s if extended else self.massage_max_s
        raise ValueError(f"{action!r} switches nothing on")


HARD = Limits()
"""The hard limits (docs/safety.md). Anything configured must be at least this strict."""


def level_band(level: int, levels: int) -> str:
    """H1L band of a discrete heat level: 'off', 'low', 'medium' or 'high'.

    For the common 7-level mat (36-42 °C): 1-2 low, 3-5 medium, 6-7 high.
    """
    if level <= 0:
        return "off"
    fraction = level / levels
    if fraction <= 2 / 7:
        return "low"
    if fraction <= 5 / 7:
        return "medium"
    return "high"


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return f"{seconds:g} s"  # never an error while saying what is wrong
    minutes = seconds / 60
    if minutes == int(minutes):
        n = int(minutes)
        return f"{n} minute" + ("" if n == 1 else "s")
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{minutes:.1f} minutes"


def minutes_text(seconds: float) -> str:
    """'5 minutes', '1 minute', '4.5 minutes', '30 s': durations as people say them."""
    return _minutes(seconds)


# --- numbers in a plan ------------------------------------------------------------------------

# The actions that switch an output on (or time a passive pack in its place), each with the hard
# limit that caps how long one step of it may last: H2 for heat, C1 for cold, M1 for the gun.
ON_ACTIONS: Mapping[str, str] = MappingProxyType(
    {"preheat": "H2", "heat": "H2", "precool": "C1", "cold": "C1", "run": "M1"}
)
_SAME_S = 1e-6  # durations this close to a cap are at the cap


def _step_number_problem(step: Step, limit_id: str) -> Violation | None:
    """A step whose start, length, setpoint or speed is not a finite number (NaN, infinity), or
    that lasts no time though it is more than a prompt."""
    what = f"the {step.action} step"
    if not math.isfinite(step.start_s):
        return Violation(limit_id, f"{what} starts at {step.start_s:g} s, not at a finite time")
    what += f" at {step.start_s:g} s"
    if not math.isfinite(step.duration_s) or step.duration_s < 0:
        return Violation(limit_id, f"{what} lasts {step.duration_s:g} s, not a finite time")
    if step.duration_s == 0 and step.action != "prompt":
        return Violation(limit_id, f"{what} lasts no time at all")
    if step.celsius is not None and not math.isfinite(step.celsius):
        setpoint_id = {"heat": "H1", "cold": "C4"}.get(step.role, limit_id)
        return Violation(setpoint_id, f"{what} has a setpoint of {step.celsius:g} °C, not a number")
    if step.rpm is not None and not math.isfinite(step.rpm):
        return Violation(limit_id, f"{what} has a speed of {step.rpm:g} per minute, not a number")
    return None


def check_plan_numbers(plan: Plan) -> list[Violation]:
    """Every number of the plan that is not finite (NaN, infinity): its length, each phase's
    start, length and setpoint, each step's start, length, setpoint and speed; and steps other
    than prompts that last no time. Pure; empty when every number is usable.

    The other checks of a plan compare numbers, and a comparison with NaN is always false: they
    are meaningful only once this one has passed.
    """
    out: list[Violation] = []
    for step in plan.steps:  # first: a step names the limit of what it switches on
        problem = _step_number_problem(step, ON_ACTIONS.get(step.action, "S4"))
        if problem is not None:
            out.append(problem)
    for phase in plan.phases:
        numbers = (phase.start_s, phase.duration_s, 0.0 if phase.celsius is None else phase.celsius)
        if not all(math.isfinite(n) for n in numbers):
            out.append(
                Violation(
                    "S4",
                    f"the {phase.mode} phase at {phase.start_s:g} s for {phase.duration_s:g} s "
                    "has a number that is not finite",
                )
            )
    if not math.isfinite(plan.total_s):
        out.append(Violation("S4", f"the plan lasts {plan.total_s:g} s, not a finite time"))
    return out


def check_on_steps(plan: Plan, limits: Limits = HARD) -> list[Violation]:
    """Every step that switches an output on (pre-heat, heat, pre-cool, cold, run) and must not
    start: a start, length, setpoint or speed that is not a finite number, no length at all, a
    length over its modality's hard cap (H2 heat, C1 cold, M1 massage, with the confirmed
    extension when the plan has it), or a setpoint beyond H1 or C4. Pure; empty when all is well.

    A compiled plan always passes; this is the check the session runner makes again before it
    switches anything on, whatever produced the plan.
    """
    out: list[Violation] = []
    for step in plan.steps:
        limit_id = ON_ACTIONS.get(step.action)
        if limit_id is None:
            continue
        problem = _step_number_problem(step, limit_id)
        if problem is not None:
            out.append(problem)
            continue
        cap = limits.on_step_max_s(step.action, extended=plan.extended)
        if step.duration_s > cap + _SAME_S:
            out.append(
                Violation(
                    limit_id,
                    f"the {step.action} step at {step.start_s:g} s lasts "
                    f"{_minutes(step.duration_s)}, over the {_minutes(cap)} it may last",
                )
            )
        if step.celsius is not None:
            setpoint = (
                limits.check_heat_celsius(step.celsius, step.duration_s)
                if step.role == "heat"
                else limits.check_cold_plate(step.celsius)
            )
            if setpoint is not None:
                out.append(setpoint)
    return out


def refuse_unsafe_on_steps(plan: Plan, limits: Limits = HARD) -> None:
    """Raise :class:`LimitError` for the first ON step :func:`check_on_steps` refuses."""
    unsafe = check_on_steps(plan, limits)
    if unsafe:
        first = unsafe[0]
        raise LimitError(
            first.limit_id,
            f"'{plan.name}' cannot run: {first}; nothing was switched on, and as a plan "
            "compiled from a profile never has such a step, please report it.",
        )
