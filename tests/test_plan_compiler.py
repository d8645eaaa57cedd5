"""Profiles compile into timed plans that tile their timeline and never break a limit."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.library import ProfileLibrary
from profiles.compiler import (
    GUN_WARMUP_S,
    PRECOOL_S,
    PREHEAT_MAX_S,
    CapabilityError,
    check_plan,
    compile_plan,
)
from profiles.errors import LimitError
from profiles.limits import HARD
from profiles.models import Profile
from profiles.parse import parse_profile
from profiles.plan import CONTRAST_PAD, Capabilities, Plan
from tests.profile_texts import CONTRAST, HEAT, MASSAGE, with_value

SEPARATE_PADS = Capabilities(combined=False)
LEVEL_MAT = Capabilities(
    heat="levels", cold="manual", combined=False, heat_levels=tuple(35.0 + n for n in range(1, 8))
)
ICE_PACK = Capabilities(heat="none", cold="manual", combined=False)

LIBRARY = ProfileLibrary()


def builtin(name: str, caps: Capabilities = CONTRAST_PAD, *, extended: bool = False) -> Plan:
    return compile_plan(LIBRARY.get(name), caps, resolve=LIBRARY.get, extended=extended)


def assert_tiles(plan: Plan) -> None:
    t = 0.0
    for phase in plan.phases:
        assert math.isclose(phase.start_s, t, abs_tol=1e-6), (phase, t)
        assert phase.duration_s > 0
        t = phase.end_s
    assert math.isclose(t, plan.total_s, abs_tol=1e-6)
    therapy = [s for s in plan.therapy_steps() if s.role != "user" or s.action in ("hold", "rest")]
    assert math.isclose(sum(s.duration_s for s in therapy), plan.total_s, abs_tol=1e-6)


def test_contrast_lower_back_is_5_plus_5_three_times() -> None:
    plan = builtin("contrast-lower-back")
    assert plan.total_s == 30 * 60
    assert [(p.mode, p.start_s, p.duration_s, p.celsius) for p in plan.phases] == [
        ("heat", 0, 300, 42),
        ("cold", 300, 300, 12),
        ("heat", 600, 300, 42),
        ("cold", 900, 300, 12),
        ("heat", 1200, 300, 42),
        ("cold", 1500, 300, 12),
    ]
    preheat = plan.steps[0]
    assert (preheat.role, preheat.action, preheat.start_s) == ("heat", "preheat", -PREHEAT_MAX_S)
    assert plan.preroll_s == PREHEAT_MAX_S
    assert_tiles(plan)


def test_contrast_quick_is_the_hyperice_protocol() -> None:
    plan = builtin("contrast-quick")
    assert plan.total_s == 18 * 60
    assert [p.duration_s for p in plan.phases] == [180] * 6


def test_every_builtin_compiles_and_tiles() -> None:
    names = sorted(LIBRARY.all())
    assert names == [
        "cold-pack-acute",
        "contrast-lower-back",
        "contrast-quick",
        "heat-soak",
        "massage-extended",
        "massage-lower-back",
        "routine-lower-back",
        "stretch-lower-back",
    ]
    for name in names:
        plan = builtin(name)
        assert_tiles(plan)
        assert check_plan(plan) == []


def test_first_heat_is_preceded_by_the_fabric_layer_prompt_and_cold_by_a_towel() -> None:
    plan = builtin("contrast-lower-back")
    prompts = {s.start_s: s.text or "" for s in plan.steps_for("user")}
    assert "fabric layer" in prompts[0]
    assert "awake" in prompts[0]
    for cold in (p for p in plan.phases if p.mode == "cold"):
        assert "thin towel" in prompts[cold.start_s]


def test_separate_cold_pad_precools_in_the_last_90_s_of_each_heat_phase() -> None:
    plan = builtin("contrast-lower-back", SEPARATE_PADS)
    precools = [s for s in plan.steps if s.action == "precool"]
    colds = [p for p in plan.phases if p.mode == "cold"]
    assert [(s.start_s, s.end_s) for s in precools] == [
        (c.start_s - PRECOOL_S, c.start_s) for c in colds
    ]
    assert all("Swap pads" in (s.text or "") for s in plan.steps_for("user")[1:-1])


def test_a_combined_pad_does_not_precool_during_heat() -> None:
    plan = builtin("contrast-lower-back")
    assert [s for s in plan.steps if s.action == "precool"] == []


def test_level_only_mat_uses_the_level_not_hotter_than_asked() -> None:
    plan = builtin("heat-soak", LEVEL_MAT)
    heat = next(s for s in plan.steps if s.action == "heat")
    assert (heat.level, heat.celsius) == (5, 40)


def test_level_only_mat_refuses_long_high_level_steps() -> None:
    profile = parse_profile(with_value(HEAT, "heat.celsius", 42), "hot.toml")
    with pytest.raises(LimitError) as caught:
        compile_plan(profile, LEVEL_MAT)
    assert caught.value.limit_id == "H1L"
    assert "high level for at most 5 minutes" in str(caught.value)


def test_manual_cold_pack_keeps_the_timer_and_prompts() -> None:
    plan = builtin("cold-pack-acute", ICE_PACK)
    cold = [s for s in plan.steps if s.action == "cold"]
    assert len(cold) == 1
    assert cold[0].manual
    assert cold[0].duration_s == 20 * 60
    assert not [s for s in plan.steps if s.action == "precool"]


def test_contrast_without_a_cold_device_is_refused_clearly() -> None:
    with pytest.raises(CapabilityError, match="needs a cold pad"):
        builtin("contrast-lower-back", Capabilities(cold="none", combined=False))


def test_massage_visits_areas_in_order_and_repeats_until_the_time_is_used() -> None:
    plan = builtin("massage-lower-back")
    areas = [p.area for p in plan.phases]
    assert len(areas) == 10
    assert areas[:7] == [
        "left-paraspinal",
        "right-paraspinal",
        "left-glute",
        "right-glute",
        "left-hamstring",
        "right-hamstring",
        "left-paraspinal",
    ]
    moves = [s.text for s in plan.steps_for("user")]
    assert moves[0] == "Move the gun to the left lower-back muscles, beside the spine."


def test_massage_starts_at_the_lowest_speed() -> None:
    text = with_value(MASSAGE, "massage.speed", "medium")
    plan = compile_plan(parse_profile(text, "m.toml"))
    runs = plan.steps_for("gun")
    assert (runs[0].rpm, runs[0].duration_s) == (1750, GUN_WARMUP_S)
    assert runs[1].rpm == 2100


def test_the_extension_adds_three_minutes_up_to_18() -> None:
    plan = builtin("massage-extended", extended=True)
    assert plan.total_s == 18 * 60
    assert plan.extended
    assert check_plan(plan) == []
    with pytest.raises(CapabilityError, match="no massage to extend"):
        builtin("heat-soak", extended=True)


def test_routine_chains_massage_stretch_contrast() -> None:
    plan = builtin("routine-lower-back")
    profiles: list[str] = []
    for phase in plan.phases:
        if not profiles or profiles[-1] != phase.profile:
            profiles.append(phase.profile)
    assert profiles == ["massage-lower-back", "stretch-lower-back", "contrast-lower-back"]
    contrast_start = next(p.start_s for p in plan.phases if p.profile == "contrast-lower-back")
    preheat = next(s for s in plan.steps if s.action == "preheat")
    assert preheat.end_s == contrast_start  # pre-heats during the stretches
    assert plan.seconds_of("heat") == 15 * 60
    assert_tiles(plan)


def test_a_routine_over_the_session_heat_budget_is_refused() -> None:
    twice = Profile.model_validate(
        {
            "name": "too-much",
            "title": "Too much heat",
            "kind": "routine",
            "steps": ["contrast-lower-back", "heat-soak", "contrast-lower-back"],
        }
    )
    with pytest.raises(LimitError) as caught:
        compile_plan(twice, resolve=LIBRARY.get)
    assert caught.value.limit_id == "H3"


def test_check_plan_finds_continuous_heat_over_h2_across_steps() -> None:
    soak = parse_profile(with_value(HEAT, "heat.minutes", 18), "soak.toml")
    routine = Profile.model_validate(
        {"name": "r", "title": "r", "kind": "routine", "steps": ["soak", "contrast"]}
    )
    contrast = parse_profile(CONTRAST, "c.toml")
    parts = {"soak": soak, "contrast": contrast}
    with pytest.raises(LimitError) as caught:
        compile_plan(routine, resolve=parts.__getitem__)
    # 18 minutes of soak run straight into 4 minutes of contrast heat on the same area
    assert caught.value.limit_id == "H2"
    assert "22 minutes without a break" in str(caught.value)


# --- properties ------------------------------------------------------------------------------

minutes = st.floats(min_value=0.5, max_value=6.0, allow_nan=False).map(lambda m: round(m, 2))
caps_strategy = st.sampled_from([CONTRAST_PAD, SEPARATE_PADS, LEVEL_MAT])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    heat=minutes,
    cold=minutes,
    cycles=st.integers(min_value=0, max_value=4),
    heat_c=st.floats(min_value=34, max_value=46).map(lambda c: round(c, 1)),
    cold_c=st.floats(min_value=3, max_value=26).map(lambda c: round(c, 1)),
    caps=caps_strategy,
)
def test_every_accepted_contrast_compiles_to_a_safe_plan(
    heat: float, cold: float, cycles: int, heat_c: float, cold_c: float, caps: Capabilities
) -> None:
    data = {
        "name": "p",
        "title": "p",
        "kind": "contrast",
        "area": "lower-back",
        "contrast": {
            "heat_minutes": heat,
            "cold_minutes": cold,
            "cycles": cycles,
            "heat_celsius": heat_c,
            "cold_celsius": cold_c,
        },
    }
    try:
        profile = Profile.model_validate(data)
    except ValidationError:
        assume(False)
        return
    if caps is LEVEL_MAT and heat_c < 36:
        # the mat's lowest level is 36 °C: it cannot be set cooler, and says so
        with pytest.raises(CapabilityError, match="lowest at 36 °C"):
            compile_plan(profile, caps)
        return
    if caps is LEVEL_MAT and heat * 60 > HARD.level_high_max_s and heat_c >= 41:
        # a level-only mat may refuse what the model accepts: long steps at a high level (H1L)
        with pytest.raises(LimitError) as caught:
            compile_plan(profile, caps)
        assert caught.value.limit_id == "H1L"
        return
    plan = compile_plan(profile, caps)
    modes = [p.mode for p in plan.phases]
    assert modes[0] == "heat"
    assert modes[-1] == "cold"
    assert modes == ["heat", "cold"] * cycles
    assert_tiles(plan)
    assert check_plan(plan) == []
    assert plan.total_s <= HARD.contrast_total_max_s
    assert all(s.celsius is None or s.celsius >= HARD.cold_plate_min_celsius for s in plan.steps)


@settings(max_examples=100, deadline=None)
@given(
    total=st.floats(min_value=4, max_value=16).map(lambda m: round(m, 1)),
    seconds=st.lists(st.floats(min_value=10, max_value=130).map(round), min_size=1, max_size=6),
    extended=st.booleans(),
)
def test_every_accepted_massage_compiles_within_m1_and_m2(
    total: float, seconds: list[int], extended: bool
) -> None:
    data = {
        "name": "m",
        "title": "m",
        "kind": "massage",
        "area": "lower-back",
        "massage": {
            "minutes": total,
            "areas": [{"name": f"area-{i}", "seconds": s} for i, s in enumerate(seconds)],
        },
    }
    try:
        profile = Profile.model_validate(data)
    except ValidationError:
        assume(False)
        return
    plan = compile_plan(profile, extended=extended)
    assert_tiles(plan)
    assert check_plan(plan) == []
    expected = total * 60 + (180 if extended else 0)
    assert math.isclose(plan.total_s, expected, abs_tol=1e-6)
    assert max(p.duration_s for p in plan.phases) <= HARD.massage_area_max_s
