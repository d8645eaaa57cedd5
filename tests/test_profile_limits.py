"""Profiles are checked against the safety limits: refused with the limit's ID, never clamped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.errors import LimitError, ProfileError
from profiles.limits import HARD, LIMIT_TABLE, Limits
from profiles.models import Profile
from profiles.parse import parse_profile
from tests.profile_texts import COLD, CONTRAST, HEAT, MASSAGE, with_value

SAFETY_IDS = {
    "H1", "H1L", "H2", "H3", "H4", "H5", "H6", "H7", "C1", "C2", "C3", "C4", "X1", "X3",
    "M1", "M2", "M3", "M4", "S1", "S2", "S3", "S4",
}  # fmt: skip


def refusal(text: str) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "mine.toml")
    return caught.value


def test_the_table_has_every_limit_of_safety_md() -> None:
    assert set(LIMIT_TABLE) == SAFETY_IDS
    assert all(row.hard for row in LIMIT_TABLE.values())


@pytest.mark.parametrize(
    ("base", "path", "value", "limit_id"),
    [
        (CONTRAST, "contrast.heat_minutes", 5.01, "X1"),
        (CONTRAST, "contrast.heat_minutes", 0.99, "X1"),
        (CONTRAST, "contrast.cold_minutes", 5.5, "X1"),
        (CONTRAST, "contrast.cycles", 4, "X1"),
        (CONTRAST, "contrast.cycles", 0, "X1"),
        (CONTRAST, "contrast.cold_celsius", 4.9, "C4"),
        (CONTRAST, "contrast.heat_celsius", 45.1, "H1"),
        (MASSAGE, "massage.minutes", 15.5, "M1"),
        (MASSAGE, "massage.minutes", 4.5, "M1"),
        (MASSAGE, "massage.areas.0.seconds", 121, "M2"),
        (COLD, "cold.minutes", 20.5, "C1"),
        (COLD, "cold.repeat_every_minutes", 59.5, "C2"),
        (COLD, "cold.for_hours", 72.5, "H6"),
        (COLD, "cold.celsius", 4.0, "C4"),
        (HEAT, "heat.minutes", 20.5, "H2"),
        (HEAT, "heat.celsius", 43.5, "H1"),
    ],
)
def test_a_value_outside_a_hard_limit_is_refused_naming_the_limit(
    base: str, path: str, value: float, limit_id: str
) -> None:
    error = refusal(with_value(base, path, value))
    assert [p.limit_id for p in error.problems] == [limit_id]
    message = str(error)
    assert message.startswith("mine.toml: ")
    assert f"({limit_id})" in message
    assert f"= {value:g}" in message


def test_the_message_names_file_field_value_limit_and_what_to_do() -> None:
    error = refusal(with_value(CONTRAST, "contrast.heat_minutes", 6))
    assert str(error) == (
        "mine.toml: contrast.heat_minutes = 6: a contrast phase must be 1-5 minutes; "
        "choose a value in that range (X1)"
    )


@pytest.mark.parametrize(("heat", "cold"), [(4, 4.5), (5, 1.2)])
def test_hot_to_cold_ratio_outside_1_to_4_is_refused(heat: float, cold: float) -> None:
    text = with_value(
        with_value(CONTRAST, "contrast.heat_minutes", heat), "contrast.cold_minutes", cold
    )
    error = refusal(text)
    assert [p.limit_id for p in error.problems] == ["X1"]
    assert f"hot:cold is {heat:g}:{cold:g}" in str(error)


def test_hot_short_steps_allowed_only_up_to_five_minutes() -> None:
    hot = with_value(with_value(HEAT, "heat.minutes", 5), "heat.celsius", 45)
    assert parse_profile(hot, "hot.toml").heat is not None
    longer = with_value(hot, "heat.minutes", 6)
    error = refusal(longer)
    assert error.problems[0].limit_id == "H1"
    assert "43 °C" in str(error)


def test_massage_on_the_spine_is_refused() -> None:
    error = refusal(with_value(MASSAGE, "massage.areas.0.name", "lumbar-spine"))
    assert "never work on the spine" in str(error)
    assert error.problems[0].field == "massage.areas[0].name"


def test_the_same_area_twice_in_a_row_breaks_m2() -> None:
    error = refusal(with_value(MASSAGE, "massage.areas.1.name", "left-glute"))
    assert error.problems[0].limit_id == "M2"


def test_lumbar_speed_above_2400_needs_an_explicit_choice() -> None:
    fast = with_value(with_value(MASSAGE, "massage.speed", None), "massage.rpm", 3000)
    assert refusal(fast).problems[0].limit_id == "M3"
    chosen = with_value(fast, "massage.explicit_top_speed", True)
    profile = parse_profile(chosen, "fast.toml")
    assert profile.massage is not None
    assert profile.massage.target_rpm == 3000


def test_no_speed_means_the_lowest_speed() -> None:
    text = with_value(MASSAGE, "massage.speed", None)
    profile = parse_profile(text, "x.toml")
    assert profile.massage is not None
    assert profile.massage.target_rpm == 1750


def test_unknown_keys_are_refused() -> None:
    error = refusal(CONTRAST.replace("cycles = 3", "cycles = 3\ncylces = 2"))
    assert str(error.problems[0]).startswith("mine.toml: contrast.cylces = 2: is not a setting")


def test_strings_are_not_numbers() -> None:
    error = refusal(with_value(CONTRAST, "contrast.cycles", "3"))
    assert str(error) == 'mine.toml: contrast.cycles = "3": must be a whole number'


def test_malformed_toml_reports_line_and_column() -> None:
    error = refusal('name = "x"\ntitle = "y"\nkind = contrast\n')
    problem = error.problems[0]
    assert (problem.line, problem.column) == (3, 8)
    assert str(error).startswith("mine.toml:3:8: this is not valid TOML")


def test_every_problem_is_reported_once() -> None:
    text = with_value(with_value(CONTRAST, "contrast.cycles", 9), "contrast.cold_celsius", 1)
    error = refusal(text)
    assert sorted(p.limit_id or "" for p in error.problems) == ["C4", "X1"]
    assert len(str(error).splitlines()) == 2


def test_kind_needs_its_table() -> None:
    error = refusal(CONTRAST.replace('kind = "contrast"', 'kind = "heat"'))
    assert "a heat profile needs a [heat] table" in str(error)


def test_config_may_tighten_but_never_loosen() -> None:
    tight = HARD.tightened(heat_max_celsius=41.0, cold_rest_min_s=3600.0)
    assert tight.heat_max_celsius == 41.0
    assert tight.check_heat_celsius(42, 900) is not None
    with pytest.raises(LimitError, match="never loosen"):
        HARD.tightened(heat_max_celsius=44.0)
    with pytest.raises(LimitError, match="never loosen"):
        HARD.tightened(cold_plate_min_celsius=4.0)
    with pytest.raises(LimitError, match="no safety limit"):
        HARD.tightened(sauna_celsius=90.0)


# --- properties: just outside every limit is refused with that limit's ID ------------------

_just_above = {
    "contrast.heat_minutes": (HARD.contrast_phase_max_s / 60, "X1"),
    "contrast.cycles": (HARD.contrast_cycles_max, "X1"),
    "massage.minutes": (HARD.massage_max_s / 60, "M1"),
    "massage.areas.0.seconds": (HARD.massage_area_max_s, "M2"),
    "cold.minutes": (HARD.cold_continuous_max_s / 60, "C1"),
    "cold.for_hours": (HARD.acute_window_max_s / 3600, "H6"),
    "heat.minutes": (HARD.heat_continuous_max_s / 60, "H2"),
}
_base_for = {"contrast": CONTRAST, "massage": MASSAGE, "cold": COLD, "heat": HEAT}


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(sorted(_just_above)),
    excess=st.floats(min_value=1e-6, max_value=5.0, allow_nan=False),
)
def test_just_above_an_upper_limit_is_refused(field: str, excess: float) -> None:
    limit, limit_id = _just_above[field]
    value: float = limit + excess
    if field == "contrast.cycles":
        value = int(limit) + max(1, round(excess))
    text = with_value(_base_for[field.split(".", maxsplit=1)[0]], field, value)
    ids = {p.limit_id for p in refusal(text).problems}
    assert limit_id in ids


@settings(max_examples=40, deadline=None)
@given(shortfall=st.floats(min_value=1e-6, max_value=4.0, allow_nan=False))
def test_just_below_a_floor_is_refused(shortfall: float) -> None:
    plate = with_value(CONTRAST, "contrast.cold_celsius", HARD.cold_plate_min_celsius - shortfall)
    assert refusal(plate).problems[0].limit_id == "C4"
    gap = with_value(COLD, "cold.repeat_every_minutes", 20 + HARD.cold_rest_min_s / 60 - shortfall)
    assert refusal(gap).problems[0].limit_id == "C2"


def test_the_hard_limits_are_the_defaults() -> None:
    assert Limits() == HARD
    assert Profile.model_config.get("extra") == "forbid"
