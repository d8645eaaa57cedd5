"""Session profiles: the user-facing TOML format, validated against the safety limits.

A profile says *what* a session does (contrast 5+5 x 3 at 42/12 °C; massage 10 min, low speed,
these areas in order). Unknown keys are refused, values are strictly typed (``"5"`` is not a
number), every number is finite (:data:`Finite`: no NaN, no infinity, checked before any other
check sees it), and every value outside a hard limit is refused with the limit's ID. Nothing is
clamped.

Errors raised from validators carry ``limit_id`` in their context; :mod:`profiles.parse` turns them
into :class:`profiles.errors.ProfileProblem` sentences.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from profiles.limits import (
    HARD,
    MASSAGE_RPM_MAX,
    MASSAGE_RPM_MIN,
    SPEED_LEVEL_RPM,
    Violation,
    minutes_text,
)

__all__ = [
    "KINDS",
    "ColdSection",
    "ContrastSection",
    "Finite",
    "HeatSection",
    "MassageArea",
    "MassageSection",
    "Profile",
    "StretchHold",
    "StretchSection",
]

Kind = Literal["contrast", "massage", "cold", "heat", "stretch", "routine"]
KINDS: tuple[Kind, ...] = ("contrast", "massage", "cold", "heat", "stretch", "routine")
SpeedLevel = Literal["low", "medium", "high"]

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# Words that name the spine itself: a massage gun works the muscles beside it, never on it.
_SPINE_WORDS = frozenset(
    {"spine", "spinal", "vertebra", "vertebrae", "backbone", "coccyx", "tailbone", "sacrum"}
)

# Sanity ranges (not safety limits): values outside them are not what anyone means.
HEAT_CELSIUS_MIN = 34.0  # below skin temperature a "heat" setpoint does not warm
COLD_CELSIUS_MAX = 25.0  # above room temperature a "cold" setpoint does not cool
CONTRAST_GUIDANCE_MIN_MINUTES = 3.0  # X1 guidance: phases of 3-5 minutes
MASSAGE_AREA_MIN_S = 5.0  # a shorter visit is not massage (and thousands of them are no plan)
# MASSAGE_RPM_MIN / MASSAGE_RPM_MAX (1000-3616 per minute) come from profiles.limits.


def limit_error(violation: Violation, **ctx: Any) -> PydanticCustomError:
    """A pydantic error that carries the broken limit's ID."""
    return PydanticCustomError(
        "safety_limit",
        "{message}",
        {"message": violation.message, "limit_id": violation.limit_id, **ctx},
    )


def value_error(message: str, **ctx: Any) -> PydanticCustomError:
    """A pydantic error for a value that is wrong but breaks no safety limit."""
    return PydanticCustomError("bad_value", "{message}", {"message": message, **ctx})


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise value_error(
            "use lowercase letters, digits and single dashes (for example 'lower-back')"
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]


def _finite(value: Any) -> Any:
    """Refuse NaN and infinity (TOML's ``nan``, ``inf``, ``-inf``, and literals such as ``1e400``
    that only fit as infinity), and integers too large for a float, before any other check.

    Every comparison with NaN is false, so ``nan <= 0`` and ``nan > limit`` would both let it
    through a range check; this runs first, so no later check or arithmetic ever sees one.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise value_error("must be a finite number, not nan or infinity; write an ordinary number")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise value_error(
                "is too large to be a number relieve can use; write an ordinary number"
            ) from None
    return value


Finite = Annotated[float, BeforeValidator(_finite)]
"""A float that is finite: every number of a profile is one (integers are finite already)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _minutes_in(value: float, low: float, high: float, limit_id: str, what: str) -> float:
    if not low <= value <= high:
        raise limit_error(
            Violation(
                limit_id,
                f"{what} must be {low:g}-{high:g} minutes; choose a value in that range",
            )
        )
    return value


class ContrastSection(_Section):
    """Contrast therapy: heat and cold alternating, beginning with heat and ending with cold."""

    heat_minutes: Finite
    cold_minutes: Finite
    cycles: int
    heat_celsius: Finite
    cold_celsius: Finite

    @field_validator("heat_minutes", "cold_minutes")
    @classmethod
    def _phase_length(cls, value: float) -> float:
        return _minutes_in(
            value,
            HARD.contrast_phase_min_s / 60,
            HARD.contrast_phase_max_s / 60,
            "X1",
            "a contrast phase",
        )

    @field_validator("cycles")
    @classmethod
    def _cycles(cls, value: int) -> int:
        if not 1 <= value <= HARD.contrast_cycles_max:
            raise limit_error(
                Violation("X1", f"contrast runs 1-{HARD.contrast_cycles_max} cycles; use 2 or 3")
            )
        return value

    @field_validator("heat_celsius")
    @classmethod
    def _heat_floor(cls, value: float) -> float:
        if value < HEAT_CELSIUS_MIN:
            raise value_error(
                f"a heat setpoint below {HEAT_CELSIUS_MIN:g} °C does not warm; "
                "use 40-42 °C (the default range)"
            )
        return value

    @field_validator("cold_celsius")
    @classmethod
    def _cold_range(cls, value: float) -> float:
        return check_cold_celsius(value)

    @model_validator(mode="after")
    def _structure(self) -> Self:
        ratio = self.heat_minutes / self.cold_minutes
        if not 1.0 <= ratio <= HARD.contrast_ratio_max:
            raise limit_error(
                Violation(
                    "X1",
                    f"hot:cold is {self.heat_minutes:g}:{self.cold_minutes:g}, outside 1:1 to "
                    f"{HARD.contrast_ratio_max:g}:1; make heat_minutes at least cold_minutes "
                    f"and at most {HARD.contrast_ratio_max:g} times it",
                ),
                field="heat_minutes",
                value=self.heat_minutes,
            )
        total_s = self.cycles * (self.heat_minutes + self.cold_minutes) * 60
        if total_s > HARD.contrast_total_max_s:
            raise limit_error(
                Violation(
                    "X1",
                    f"{self.cycles} cycles of {self.heat_minutes:g}+{self.cold_minutes:g} minutes "
                    f"make {minutes_text(total_s)}, over the "
                    f"{minutes_text(HARD.contrast_total_max_s)} maximum; "
                    "use fewer cycles or shorter phases",
                ),
                field="cycles",
                value=self.cycles,
            )
        violation = HARD.check_heat_celsius(self.heat_celsius, self.heat_minutes * 60)
        if violation:
            raise limit_error(violation, field="heat_celsius", value=self.heat_celsius)
        return self

    def warnings(self) -> list[str]:
        out = []
        for key in ("heat_minutes", "cold_minutes"):
            value = getattr(self, key)
            if value < CONTRAST_GUIDANCE_MIN_MINUTES:
                out.append(
                    f"contrast.{key} = {value:g}: shorter than the 3-5 minute phases the "
                    "guidance recommends (X1)"
                )
        return out


def check_cold_celsius(value: float) -> float:
    if value > COLD_CELSIUS_MAX:
        raise value_error(
            f"a cold setpoint above {COLD_CELSIUS_MAX:g} °C does not cool; "
            "use 10-15 °C (the default range)"
        )
    violation = HARD.check_cold_plate(value)
    if violation:
        raise limit_error(violation)
    return value


class MassageArea(_Section):
    """One area the gun visits, for at most two minutes at a time (M2)."""

    name: Slug
    seconds: Finite
    label: str | None = None

    @field_validator("name")
    @classmethod
    def _not_spine(cls, value: str) -> str:
        if _SPINE_WORDS.intersection(value.split("-")):
            raise value_error(
                "a massage gun must never work on the spine itself; name the muscles beside "
                "it instead (for example 'left-paraspinal')"
            )
        return value

    @field_validator("seconds")
    @classmethod
    def _seconds(cls, value: float) -> float:
        if value < MASSAGE_AREA_MIN_S:
            raise value_error(
                f"a visit to an area lasts at least {MASSAGE_AREA_MIN_S:g} s; "
                "use 60-90 s (the default range)"
            )
        if value > HARD.massage_area_max_s:
            raise limit_error(
                Violation(
                    "M2",
                    f"at most {HARD.massage_area_max_s:g} s on one area at a time; "
                    "use 60-90 s (the default range)",
                )
            )
        return value

    @property
    def display(self) -> str:
        return self.label or self.name.replace("-", " ")


class MassageSection(_Section):
    """A massage-gun session: minutes, speed and the areas visited in order."""

    minutes: Finite
    speed: SpeedLevel | None = None
    rpm: int | None = None
    explicit_top_speed: bool = False
    areas: list[MassageArea] = Field(min_length=1)

    @field_validator("minutes")
    @classmethod
    def _minutes(cls, value: float) -> float:
        low, high = HARD.massage_min_s / 60, HARD.massage_max_s / 60
        if not low <= value <= high:
            raise limit_error(
                Violation(
                    "M1",
                    f"a massage session is {low:g}-{high:g} minutes (the one-a-day extension to "
                    f"{HARD.massage_extended_max_s / 60:g} minutes is confirmed when you run it, "
                    "not set in a profile); choose a value in that range",
                )
            )
        return value

    @field_validator("rpm")
    @classmethod
    def _rpm(cls, value: int | None) -> int | None:
        if value is not None and not MASSAGE_RPM_MIN <= value <= MASSAGE_RPM_MAX:
            raise value_error(
                f"percussion guns run {MASSAGE_RPM_MIN}-{MASSAGE_RPM_MAX} per minute; "
                'choose a speed in that range or use speed = "low"'
            )
        return value

    @model_validator(mode="after")
    def _speed_choice(self) -> Self:
        if self.speed is not None and self.rpm is not None:
            raise value_error("give either speed or rpm, not both", field="rpm", value=self.rpm)
        return self

    @model_validator(mode="after")
    def _moves_on(self) -> Self:
        """M2: visiting the same area twice in a row is one long visit."""
        names = [a.name for a in self.areas]
        repeats = sum(a.seconds for a in self.areas) < self.minutes * 60
        pairs = list(itertools.pairwise(names))
        if repeats:
            pairs.append((names[-1], names[0]))
        for first, second in pairs:
            if first == second:
                raise limit_error(
                    Violation(
                        "M2",
                        f"the gun would stay on '{first}' for two visits in a row, over "
                        f"{HARD.massage_area_max_s:g} s on one area; list another area between "
                        "them",
                    ),
                    field="areas",
                )
        return self

    @property
    def target_rpm(self) -> int:
        """Percussions per minute of the chosen speed (lowest when none is given, M3)."""
        if self.rpm is not None:
            return self.rpm
        return SPEED_LEVEL_RPM[self.speed or "low"]


class ColdSection(_Section):
    """A cold application (ice pack or cold pad), optionally repeated during the acute window."""

    minutes: Finite
    celsius: Finite | None = None
    repeat_every_minutes: Finite | None = None
    for_hours: Finite | None = None

    @field_validator("minutes")
    @classmethod
    def _minutes(cls, value: float) -> float:
        if value <= 0:
            raise value_error("must be a positive number of minutes")
        if value * 60 > HARD.cold_continuous_max_s:
            raise limit_error(
                Violation(
                    "C1",
                    f"cold may stay on for at most {minutes_text(HARD.cold_continuous_max_s)} "
                    "in one go; use 15-20 minutes",
                )
            )
        return value

    @field_validator("celsius")
    @classmethod
    def _celsius(cls, value: float | None) -> float | None:
        return None if value is None else check_cold_celsius(value)

    @field_validator("for_hours")
    @classmethod
    def _for_hours(cls, value: float | None) -> float | None:
        if value is None:
            return None
        limit_h = HARD.acute_window_max_s / 3600
        if not 0 < value <= limit_h:
            raise limit_error(
                Violation(
                    "H6",
                    f"the acute cold-pack window lasts at most {limit_h:g} hours after an "
                    "injury; use 48-72",
                )
            )
        return value

    @model_validator(mode="after")
    def _repeat(self) -> Self:
        if self.repeat_every_minutes is None:
            return self
        rest_s = (self.repeat_every_minutes - self.minutes) * 60
        if rest_s < HARD.cold_rest_min_s:
            earliest = self.minutes + HARD.cold_rest_min_s / 60
            raise limit_error(
                Violation(
                    "C2",
                    f"cold needs at least {minutes_text(HARD.cold_rest_min_s)} off between "
                    f"applications, so a {self.minutes:g}-minute application can repeat every "
                    f"{earliest:g} minutes at the soonest (start to start); 60-120 is usual",
                ),
                field="repeat_every_minutes",
                value=self.repeat_every_minutes,
            )
        return self


class HeatSection(_Section):
    """A heat soak on one area."""

    minutes: Finite
    celsius: Finite

    @field_validator("minutes")
    @classmethod
    def _minutes(cls, value: float) -> float:
        if value <= 0:
            raise value_error("must be a positive number of minutes")
        if value * 60 > HARD.heat_continuous_max_s:
            raise limit_error(
                Violation(
                    "H2",
                    f"heat may stay on one area for at most "
                    f"{minutes_text(HARD.heat_continuous_max_s)}; use 10-15 minutes",
                )
            )
        return value

    @field_validator("celsius")
    @classmethod
    def _celsius_floor(cls, value: float) -> float:
        if value < HEAT_CELSIUS_MIN:
            raise value_error(
                f"a heat setpoint below {HEAT_CELSIUS_MIN:g} °C does not warm; "
                "use 40-42 °C (the default range)"
            )
        return value

    @model_validator(mode="after")
    def _hot_enough_for_long(self) -> Self:
        violation = HARD.check_heat_celsius(self.celsius, self.minutes * 60)
        if violation:
            raise limit_error(violation, field="celsius", value=self.celsius)
        return self


STRETCH_HOLD_MIN_S = 5.0  # shorter than this is not a hold
STRETCH_HOLD_MAX_S = 120.0  # longer than this, people lose form; split into two holds


class StretchHold(_Section):
    name: str = Field(min_length=1)
    seconds: Finite = 30.0

    @field_validator("seconds")
    @classmethod
    def _seconds(cls, value: float) -> float:
        if not STRETCH_HOLD_MIN_S <= value <= STRETCH_HOLD_MAX_S:
            raise value_error(
                f"a hold lasts {STRETCH_HOLD_MIN_S:g}-{STRETCH_HOLD_MAX_S:g} s; 30 s is usual"
            )
        return value


class StretchSection(_Section):
    """A guided, device-free stretching routine: holds in order, repeated ``rounds`` times."""

    holds: list[StretchHold] = Field(min_length=1)
    rounds: int = Field(default=1, ge=1, le=5)
    rest_seconds: Finite = Field(default=10.0, ge=0, le=60)


class Profile(BaseModel):
    """One therapy session profile, as written in TOML."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: Slug
    title: str = Field(min_length=1)
    kind: Kind
    area: Slug | None = None
    description: str | None = None
    contrast: ContrastSection | None = None
    massage: MassageSection | None = None
    cold: ColdSection | None = None
    heat: HeatSection | None = None
    stretch: StretchSection | None = None
    steps: list[Slug] | None = None

    @model_validator(mode="after")
    def _sections_match_kind(self) -> Self:
        sections = ("contrast", "massage", "cold", "heat", "stretch")
        if self.kind == "routine":
            if not self.steps:
                raise value_error(
                    'a routine needs steps = ["profile-name", ...] naming the profiles to run '
                    "in order",
                    field="steps",
                )
        else:
            if getattr(self, self.kind) is None:
                raise value_error(
                    f"a {self.kind} profile needs a [{self.kind}] table", field=self.kind
                )
            if self.steps is not None:
                raise value_error("only a routine has steps", field="steps")
            if self.area is None and self.kind != "stretch":
                raise value_error(
                    'say which body area this is for (for example area = "lower-back")',
                    field="area",
                )
        for other in sections:
            if other != self.kind and getattr(self, other) is not None:
                raise value_error(
                    f"a {self.kind} profile has no [{other}] table; remove it or change kind",
                    field=other,
                )
        if self.massage is not None:
            self._check_lumbar_speed(self.massage)
        return self

    def _check_lumbar_speed(self, massage: MassageSection) -> None:
        lumbar = self.area is not None and ("lower-back" in self.area or "lumbar" in self.area)
        if (
            lumbar
            and massage.target_rpm > HARD.massage_lumbar_max_rpm
            and not (massage.explicit_top_speed)
        ):
            raise limit_error(
                Violation(
                    "M3",
                    f"{massage.target_rpm} per minute is above the "
                    f"{HARD.massage_lumbar_max_rpm} default ceiling for the lower back; "
                    "use a lower speed, or set explicit_top_speed = true to choose it on purpose",
                ),
                field="massage.rpm",
                value=massage.target_rpm,
            )

    def warnings(self) -> list[str]:
        """Advice that does not stop the profile (outside guidance, inside the hard limits)."""
        return self.contrast.warnings() if self.contrast else []
