"""Defence in depth: a plan's numbers are checked again by the compiler and by the runner.

The profile model refuses NaN and infinity, but a plan can come from elsewhere (built by hand, a
bug, a model bypassed). The compiler re-checks every number of the plan it made; the session
runner refuses, before any device is commanded, every ON step whose length is not finite or is
over its modality's hard cap -- whatever produced the plan.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from controller.session.events import Event
from controller.session.runner import SessionRunner
from profiles.compiler import check_plan, compile_plan
from profiles.errors import LimitError
from profiles.limits import HARD, check_on_steps, check_plan_numbers
from profiles.models import HeatSection, Profile
from profiles.parse import parse_profile
from profiles.plan import CONTRAST_PAD, Capabilities, Plan
from tests.profile_texts import CONTRAST, HEAT, MASSAGE, with_value
from tests.session_harness import assert_off, bench

SEPARATE = Capabilities(combined=False)


def compiled(text: str, caps: Capabilities = CONTRAST_PAD, *, extended: bool = False) -> Plan:
    return compile_plan(parse_profile(text, "test.toml"), caps, extended=extended)


def changed(plan: Plan, action: str, **changes: float) -> Plan:
    """``plan`` with its first ``action`` step changed (bypassing every check)."""
    steps = list(plan.steps)
    index = next(i for i, s in enumerate(steps) if s.action == action)
    fields: dict[str, Any] = dict(changes)
    steps[index] = dataclasses.replace(steps[index], **fields)
    return dataclasses.replace(plan, steps=tuple(steps))


HEAT_PLAN = compiled(HEAT)  # 10 minutes at 40 °C, with a pre-heat
CONTRAST_PLAN = compiled(CONTRAST, SEPARATE)  # pre-cools a separate cold pad
MASSAGE_PLAN = compiled(MASSAGE)
EXTENDED_PLAN = compiled(MASSAGE, extended=True)

# (plan, action, changes, limit ID the ON-step check names)
UNSAFE: list[tuple[Plan, str, dict[str, float], str]] = [
    (HEAT_PLAN, "heat", {"duration_s": math.nan}, "H2"),
    (HEAT_PLAN, "heat", {"duration_s": math.inf}, "H2"),
    (HEAT_PLAN, "heat", {"duration_s": -math.inf}, "H2"),
    (HEAT_PLAN, "heat", {"duration_s": 0.0}, "H2"),
    (HEAT_PLAN, "heat", {"duration_s": HARD.heat_continuous_max_s + 1}, "H2"),
    (HEAT_PLAN, "heat", {"start_s": math.nan}, "H2"),
    (HEAT_PLAN, "heat", {"celsius": math.nan}, "H1"),
    (HEAT_PLAN, "heat", {"celsius": 50.0}, "H1"),
    (HEAT_PLAN, "preheat", {"duration_s": math.nan}, "H2"),
    (HEAT_PLAN, "preheat", {"duration_s": 1e9}, "H2"),
    (CONTRAST_PLAN, "cold", {"duration_s": math.inf}, "C1"),
    (CONTRAST_PLAN, "cold", {"duration_s": HARD.cold_continuous_max_s + 1}, "C1"),
    (CONTRAST_PLAN, "cold", {"celsius": 2.0}, "C4"),
    (CONTRAST_PLAN, "precool", {"duration_s": math.nan}, "C1"),
    (CONTRAST_PLAN, "precool", {"celsius": -math.inf}, "C4"),
    (MASSAGE_PLAN, "run", {"duration_s": math.nan}, "M1"),
    (MASSAGE_PLAN, "run", {"duration_s": HARD.massage_max_s + 1}, "M1"),
    (EXTENDED_PLAN, "run", {"duration_s": HARD.massage_extended_max_s + 1}, "M1"),
]
UNSAFE_IDS = [
    f"{plan.kind}-{action}-" + "-".join(f"{k}={v:g}" for k, v in changes.items())
    for plan, action, changes, _ in UNSAFE
]


# --- the pure check --------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "action", "changes", "limit_id"), UNSAFE, ids=UNSAFE_IDS)
def test_the_on_step_check_names_the_limit(
    plan: Plan, action: str, changes: dict[str, float], limit_id: str
) -> None:
    assert check_on_steps(plan) == []
    unsafe = check_on_steps(changed(plan, action, **changes))
    assert [v.limit_id for v in unsafe] == [limit_id]
    assert "\n" not in str(unsafe[0])


def test_the_extension_cap_is_the_m1_cap_only_when_the_plan_has_it() -> None:
    long_run = {"duration_s": HARD.massage_max_s + 60}
    assert check_on_steps(changed(EXTENDED_PLAN, "run", **long_run)) == []
    assert [v.limit_id for v in check_on_steps(changed(MASSAGE_PLAN, "run", **long_run))] == ["M1"]


# --- the compiler ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "limit_id"),
    [
        (changed(HEAT_PLAN, "heat", duration_s=math.nan), "H2"),
        (changed(HEAT_PLAN, "heat", duration_s=0.0), "H2"),
        (changed(HEAT_PLAN, "prompt", start_s=math.inf), "S4"),
    ],
    ids=["heat-length-nan", "heat-length-zero", "prompt-start-inf"],
)
def test_check_plan_reports_a_number_that_is_not_finite(plan: Plan, limit_id: str) -> None:
    violations = check_plan(plan)
    assert [v.limit_id for v in violations] == [limit_id]


def test_check_plan_reports_a_phase_that_is_not_finite() -> None:
    phases = list(HEAT_PLAN.phases)
    phases[0] = dataclasses.replace(phases[0], duration_s=math.nan)
    plan = dataclasses.replace(HEAT_PLAN, phases=tuple(phases), total_s=math.nan)
    assert {v.limit_id for v in check_plan(plan)} == {"S4"}
    assert check_plan_numbers(plan)


def test_the_compiler_refuses_what_a_bypassed_model_let_through() -> None:
    # model_construct skips every validator: the compiler's own re-check still refuses
    for minutes in (math.nan, math.inf):
        section = HeatSection.model_construct(minutes=minutes, celsius=40.0)
        profile = Profile.model_construct(
            name="x", title="x", kind="heat", area="knee", heat=section
        )
        with pytest.raises(LimitError) as caught:
            compile_plan(profile)
        assert caught.value.limit_id == "H2"
        assert "cannot run" in str(caught.value)


def test_a_first_visit_no_longer_than_the_warm_up_leaves_no_empty_step() -> None:
    text = with_value(with_value(MASSAGE, "massage.speed", "medium"), "massage.areas.0.seconds", 10)
    plan = compiled(text)
    assert check_plan(plan) == []
    assert all(s.duration_s > 0 for s in plan.steps if s.action != "prompt")


# --- the runner ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "action", "changes", "limit_id"),
    [
        (HEAT_PLAN, "heat", {"duration_s": math.nan}, "H2"),
        (HEAT_PLAN, "heat", {"duration_s": HARD.heat_continuous_max_s * 3}, "H2"),
        (CONTRAST_PLAN, "cold", {"duration_s": math.inf}, "C1"),
        (MASSAGE_PLAN, "run", {"duration_s": HARD.massage_max_s * 2}, "M1"),
    ],
    ids=["heat-nan", "heat-over-h2", "cold-inf", "run-over-m1"],
)
async def test_the_runner_refuses_an_unsafe_plan_before_any_device_is_commanded(
    tmp_path: Path, plan: Plan, action: str, changes: dict[str, float], limit_id: str
) -> None:
    async with bench(tmp_path, devices=("contrast-pad", "massage-gun")) as b:
        await b.bind(heat="contrast-pad", cold="contrast-pad", gun="massage-gun")
        b.watch_world()
        events: list[Event] = []
        # the plan as compiled is accepted ...
        SessionRunner(plan, b.devices, b.clock, emit=events.append, simulated=True)
        # ... and with one ON step made unsafe by hand, it is refused on the spot
        with pytest.raises(LimitError) as caught:
            SessionRunner(changed(plan, action, **changes), b.devices, b.clock, emit=events.append)
        assert caught.value.limit_id == limit_id
        message = str(caught.value)
        assert "\n" not in message
        assert "nothing was switched on" in message
        assert events == []
        for key in ("contrast-pad", "massage-gun"):
            assert_off(b.world, key)
            assert not any(state.output_on for state in b.history(key))


async def test_the_runner_checks_against_its_own_tightened_limits(tmp_path: Path) -> None:
    tight = HARD.tightened(heat_continuous_max_s=300.0)
    async with bench(tmp_path, devices=("contrast-pad",)) as b:
        await b.bind(heat="contrast-pad", cold="contrast-pad")
        with pytest.raises(LimitError) as caught:
            SessionRunner(HEAT_PLAN, b.devices, b.clock, emit=lambda _: None, limits=tight)
        assert caught.value.limit_id == "H2"
        assert_off(b.world, "contrast-pad")
