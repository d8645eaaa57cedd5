"""Daily allowances (H5, H6, C2, M1, M4): each refused with its ID and earliest time, allowed from
then on, and lifted only by an explicit override that the session records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.ledger import Ledger, Outcome
from controller.ledger.allowances import AllowanceError, OverrideError
from controller.library import ProfileLibrary
from profiles.compiler import compile_plan
from profiles.plan import Mode, Plan

CEST = timezone(timedelta(hours=2), "CEST")
# Tuesday 7 May 2024, 08:00 local.
T0 = datetime(2024, 5, 7, 8, 0, tzinfo=CEST)
MIDNIGHT = datetime(2024, 5, 8, 0, 0, tzinfo=CEST)
LEASE_S = 5.0


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "data", now=lambda: T0, tz=CEST) as opened:
        yield opened


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> ProfileLibrary:
    return ProfileLibrary(tmp_path_factory.mktemp("config"))


def plan(library: ProfileLibrary, name: str, *, extended: bool = False) -> Plan:
    return compile_plan(library.get(name), resolve=library.get, extended=extended)


def record(
    ledger: Ledger,
    start: datetime,
    phases: Sequence[tuple[Mode, str, float]],
    *,
    kind: str,
    extended: bool = False,
    outcome: Outcome = "completed",
) -> int:
    """A finished session as the runner records it: phases back to back from ``start``."""
    recorder = ledger.start_session(f"a-{kind}", kind, started_at=start, extended=extended)
    at = start
    for mode, area, length in phases:
        recorder.phase_started(mode, area, at, worst_case_s=LEASE_S)
        at += minutes(length)
    recorder.finish(outcome, at)
    return recorder.id


CONTRAST: list[tuple[Mode, str, float]] = [
    ("heat", "lower-back", 5),
    ("cold", "lower-back", 5),
] * 3


def refused(ledger: Ledger, the_plan: Plan, now: datetime) -> AllowanceError:
    with pytest.raises(AllowanceError) as caught:
        ledger.check_allowances(the_plan, now=now)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert message.endswith(".")
    assert f"({error.rule_id}" in message
    return error


# --- H5 -----------------------------------------------------------------------------------------


def test_h5_heat_sessions_must_start_two_hours_apart(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    record(ledger, T0, CONTRAST, kind="contrast")
    contrast = plan(library, "contrast-lower-back")
    error = refused(ledger, contrast, T0 + minutes(90))
    assert error.rule_id == "H5"
    assert error.earliest == T0 + hours(2)
    assert str(error) == (
        "Contrast is not allowed yet: heat and contrast sessions must start at least 2 hours "
        "apart (H5); the next one can start at 10:00."
    )
    assert ledger.check_allowances(contrast, now=T0 + hours(2)).lifted == ()


def test_h5_at_most_three_heat_sessions_a_day(ledger: Ledger, library: ProfileLibrary) -> None:
    for n in range(3):
        record(ledger, T0 + hours(2 * n), CONTRAST, kind="contrast")
    heat = plan(library, "heat-soak")
    error = refused(ledger, heat, T0 + hours(8))
    assert error.rule_id == "H5"
    assert error.earliest == MIDNIGHT
    assert "at most 3 heat or contrast sessions a day (H5)" in str(error)
    assert str(error).endswith("the next one can start tomorrow at 00:00.")
    ledger.check_allowances(heat, now=MIDNIGHT)


def test_h5_cold_massage_and_sessions_that_ended_before_heat_do_not_count(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    record(ledger, T0, [("cold", "lower-back", 20)], kind="cold")
    record(ledger, T0 + minutes(30), [("massage", "left-glute", 2)], kind="massage")
    record(ledger, T0 + minutes(40), [], kind="contrast", outcome="aborted")
    ledger.check_allowances(plan(library, "heat-soak"), now=T0 + minutes(45))


def test_h5_a_heat_session_running_elsewhere_counts(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    recorder = ledger.start_session("contrast-lower-back", "contrast", started_at=T0)
    error = refused(ledger, plan(library, "heat-soak"), T0 + minutes(1))
    assert (error.rule_id, error.earliest) == ("H5", T0 + hours(2))
    recorder.finish("stopped", T0 + minutes(1))


def test_h5_counts_local_days_not_utc_days(ledger: Ledger, library: ProfileLibrary) -> None:
    # 18:00, 20:00, 22:00 local on 6 May; 01:00 local on 7 May is still 6 May in UTC.
    for start in (T0 - hours(14), T0 - hours(12), T0 - hours(10)):
        record(ledger, start, CONTRAST, kind="contrast")
    ledger.check_allowances(plan(library, "heat-soak"), now=T0 - hours(7))


# --- H6 -----------------------------------------------------------------------------------------


def test_h6_no_heat_or_contrast_on_an_injured_area_for_48_hours(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    ledger.add_injury("lower-back", T0)
    for name in ("heat-soak", "contrast-lower-back"):
        error = refused(ledger, plan(library, name), T0 + hours(47))
        assert error.rule_id == "H6"
        assert error.earliest == T0 + hours(48)
        assert "no heat or contrast in the first 48 hours after an injury (H6" in str(error)
        assert str(error).endswith(
            "(H6, injury recorded on Tue 7 May at 08:00); it can start at 08:00."
        )
    decision = ledger.check_allowances(plan(library, "heat-soak"), now=T0 + hours(48))
    assert decision.warnings == (
        "The guidance for lower-back is cold only until tomorrow at 08:00 (72 hours after the "
        "injury, H6).",
    )
    assert ledger.check_allowances(plan(library, "heat-soak"), now=T0 + hours(72)).warnings == ()


def test_h6_cold_is_allowed_and_other_areas_are_not_blocked(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    ledger.add_injury("neck", T0)
    ledger.check_allowances(plan(library, "heat-soak"), now=T0 + hours(1))
    ledger.add_injury("lower-back", T0 + hours(2))
    ledger.check_allowances(plan(library, "cold-pack-acute"), now=T0 + hours(3))


def test_h6_a_routine_may_start_as_early_as_its_heat_allows(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    routine = plan(library, "routine-lower-back")
    heat_offset = min(p.start_s for p in routine.phases if p.mode == "heat")
    ledger.add_injury("lower-back", T0)
    earliest = T0 + hours(48) - timedelta(seconds=heat_offset)
    error = refused(ledger, routine, earliest - timedelta(seconds=1))
    assert (error.rule_id, error.earliest) == ("H6", earliest)
    assert str(error).startswith("The routine routine-lower-back on lower-back is not allowed")
    ledger.check_allowances(routine, now=earliest)


# --- C2 and X3 ----------------------------------------------------------------------------------


def test_c2_forty_minutes_off_after_cold(ledger: Ledger, library: ProfileLibrary) -> None:
    record(ledger, T0, [("cold", "lower-back", 20)], kind="cold")
    cold = plan(library, "cold-pack-acute")
    error = refused(ledger, cold, T0 + minutes(59))
    assert (error.rule_id, error.earliest) == ("C2", T0 + minutes(60))
    assert str(error) == (
        "Cold is not allowed yet: cold on lower-back needs at least 40 minutes off after the "
        "last cold ended (C2); it can start at 09:00."
    )
    ledger.check_allowances(cold, now=T0 + minutes(60))


def test_x3_contrast_final_cold_phase_starts_the_c2_clock(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    record(ledger, T0, CONTRAST, kind="contrast")  # its last cold ends at 08:30
    cold = plan(library, "cold-pack-acute")
    error = refused(ledger, cold, T0 + minutes(69))
    assert (error.rule_id, error.earliest) == ("C2", T0 + minutes(70))
    ledger.check_allowances(cold, now=T0 + minutes(70))


def test_c2_cold_on_another_area_does_not_count(ledger: Ledger, library: ProfileLibrary) -> None:
    record(ledger, T0, [("cold", "neck", 20)], kind="cold")
    ledger.check_allowances(plan(library, "cold-pack-acute"), now=T0 + minutes(21))


# --- M1 and M4 ----------------------------------------------------------------------------------


def test_m1_the_massage_extension_once_a_day(ledger: Ledger, library: ProfileLibrary) -> None:
    record(ledger, T0, [("massage", "left-glute", 18)], kind="massage", extended=True)
    extended = plan(library, "massage-extended", extended=True)
    error = refused(ledger, extended, T0 + hours(3))
    assert (error.rule_id, error.earliest) == ("M1", MIDNIGHT)
    assert "(M1)" in str(error)
    assert str(error).endswith("run the session without it, or with it tomorrow at 00:00.")
    ledger.check_allowances(plan(library, "massage-extended"), now=T0 + hours(3))
    ledger.check_allowances(extended, now=MIDNIGHT)


def test_m4_massage_daily_total_counts_the_planned_session(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    record(ledger, T0, [("massage", "left-glute", 18)], kind="massage", extended=True)
    record(ledger, T0 + hours(1), [("massage", "right-glute", 15)], kind="massage")
    fifteen = plan(library, "massage-extended")
    error = refused(ledger, fifteen, T0 + hours(2))
    assert (error.rule_id, error.earliest) == ("M4", MIDNIGHT)
    assert str(error) == (
        "Massage would bring today's massage to 48 minutes, more than the 45 minutes allowed "
        "in a day (M4: 33 done, 15 planned); it can start tomorrow at 00:00."
    )
    ledger.check_allowances(plan(library, "massage-lower-back"), now=T0 + hours(2))  # 43 min
    ledger.check_allowances(fifteen, now=MIDNIGHT)


def test_m4_exactly_the_daily_total_is_allowed(ledger: Ledger, library: ProfileLibrary) -> None:
    record(ledger, T0, [("massage", "left-glute", 15)] * 2, kind="massage")
    ledger.check_allowances(plan(library, "massage-extended"), now=T0 + hours(1))


# --- overrides ----------------------------------------------------------------------------------


def test_an_override_lifts_the_rule_and_is_recorded_on_the_session(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    record(ledger, T0, CONTRAST, kind="contrast")
    heat = plan(library, "heat-soak")
    decision = ledger.check_allowances(heat, lift={"H5"}, now=T0 + hours(1))
    assert decision.overrides == ("H5",)
    assert [r.rule_id for r in decision.lifted] == ["H5"]
    recorder = ledger.start_session(
        heat.name, heat.kind, started_at=T0 + hours(1), overrides=decision.overrides
    )
    recorder.finish("completed", T0 + hours(1) + minutes(10))
    assert ledger.session(recorder.id).overrides == ("H5",)


def test_an_override_lifts_only_the_rules_it_names(ledger: Ledger, library: ProfileLibrary) -> None:
    record(ledger, T0, CONTRAST, kind="contrast")
    contrast = plan(library, "contrast-lower-back")
    with pytest.raises(AllowanceError) as caught:
        ledger.check_allowances(contrast, lift={"H5"}, now=T0 + minutes(40))
    assert caught.value.rule_id == "C2"
    decision = ledger.check_allowances(contrast, lift={"H5", "C2"}, now=T0 + minutes(40))
    assert decision.overrides == ("C2", "H5")


def test_when_several_rules_refuse_the_latest_one_is_named(
    ledger: Ledger, library: ProfileLibrary
) -> None:
    record(ledger, T0, CONTRAST, kind="contrast")
    error = refused(ledger, plan(library, "contrast-lower-back"), T0 + minutes(40))
    assert (error.rule_id, error.earliest) == ("H5", T0 + hours(2))
    assert sorted(r.rule_id for r in error.refusals) == ["C2", "H5"]
    assert str(error).endswith("at 10:00 (C2 also refuse it now).")


def test_only_allowance_rules_can_be_overridden(ledger: Ledger, library: ProfileLibrary) -> None:
    with pytest.raises(OverrideError, match=r"^H1 cannot be overridden; only .*H5"):
        ledger.check_allowances(plan(library, "heat-soak"), lift={"H1"}, now=T0)
