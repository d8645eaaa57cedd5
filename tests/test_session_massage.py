"""Massage sessions on the open-profile gun: the M1 cap, its one-minute warning, the extension.

The gun keeps running from area to area (one run), is warned about 60 s before the cap, and is
stopped at the cap; the confirmed extension (massage-extended, 15 -> 18 minutes) runs the full
18 minutes without the gun's own run cap cutting it short.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.session.events import Notice, PhaseChanged, StateChanged
from controller.session.runner import OFF_TIMEOUT_S
from controller.session.schedule import RUN_CAP_MARGIN_S, gun_run_caps
from profiles.compiler import compile_plan
from profiles.limits import HARD
from tests.session_harness import (
    LIBRARY,
    Bench,
    assert_off,
    assert_same_phases,
    bench,
    planned_phases,
    recorded_phases,
)

GUN = "massage-gun"
WARNING_S = 60.0  # controller.session.schedule.MASSAGE_WARNING_S, as a user sees it

# 15 minutes in 120-s visits: the cap (900 s) falls in the middle of a visit, not on a switch.
MASSAGE_120S_VISITS = """
name = "massage-long-visits"
title = "Massage, two-minute visits"
kind = "massage"
area = "lower-back"

[massage]
minutes = 15
speed = "low"

[[massage.areas]]
name = "left-glute"
seconds = 120

[[massage.areas]]
name = "right-glute"
seconds = 120
"""


def _t0(b: Bench) -> float:
    return b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == "running").clock


def _gun_on_between(b: Bench, start_s: float, end_s: float) -> list[bool]:
    """What the gun said of its motor, every snapshot from ``start_s`` to ``end_s`` (session
    seconds)."""
    t0 = _t0(b)
    return [s.output_on for s in b.history(GUN) if start_s <= s.time - t0 <= end_s]


async def test_massage_warns_a_minute_before_the_cap_and_stops_the_gun_at_it(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        plan = b.plan("massage-lower-back")
        b.watch_world()
        finished = await b.run(b.runner(plan))
        assert finished.outcome == "completed", finished
        notices = [e for e in b.of_type(Notice) if isinstance(e, Notice)]
        assert [(n.t, n.level) for n in notices] == [(plan.total_s - WARNING_S, "warning")]
        assert "M1" in notices[0].message
        # the gun runs the whole session as one run, at the profile's low speed ...
        running = _gun_on_between(b, 1.0, plan.total_s - 1.0)
        assert running
        assert all(running)
        speeds = {s.target_speed_ppm for s in b.history(GUN) if s.output_on}
        assert speeds == {1750}
        # ... and is stopped at the cap
        end = b.stamp_of(
            lambda e: isinstance(e, PhaseChanged) and e.index is not None and e.index == e.count
        )
        assert end.clock - _t0(b) == pytest.approx(plan.total_s)
        b.assert_off_within(GUN, end, OFF_TIMEOUT_S)
        assert_off(b.world, GUN)
        session = b.ledger.sessions()[0]
        assert session.outcome == "completed"
        assert_same_phases(recorded_phases(session), planned_phases(plan))


async def test_massage_extended_with_the_extension_runs_eighteen_minutes(tmp_path: Path) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        plan = b.plan("massage-extended", extended=True)
        assert plan.total_s == 18 * 60
        b.watch_world()
        finished = await b.run(b.runner(plan))
        # the gun ran without a break through the 15-minute mark to the end
        running = _gun_on_between(b, 1.0, plan.total_s - 1.0)
        assert running
        assert all(running)
        assert finished.outcome == "completed", finished
        notices = [e for e in b.of_type(Notice) if isinstance(e, Notice)]
        assert [n.t for n in notices] == [plan.total_s - WARNING_S]
        assert finished.delivered_s == pytest.approx(plan.total_s, abs=1.0)
        assert_off(b.world, GUN)
        session = b.ledger.sessions()[0]
        assert session.outcome == "completed"
        assert session.extended
        assert_same_phases(recorded_phases(session), planned_phases(plan))


async def test_massage_extended_without_the_extension_stops_at_fifteen_minutes(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        plan = b.plan("massage-extended")
        assert plan.total_s == 15 * 60
        b.watch_world()
        finished = await b.run(b.runner(plan))
        assert finished.outcome == "completed", finished
        assert finished.delivered_s == pytest.approx(15 * 60, abs=1.0)
        assert_off(b.world, GUN)
        session = b.ledger.sessions()[0]
        assert not session.extended
        assert_same_phases(recorded_phases(session), planned_phases(plan))


async def test_extension_is_not_cut_short_by_the_guns_own_cap_mid_visit(tmp_path: Path) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        plan = b.plan_from(MASSAGE_120S_VISITS, extended=True)
        assert plan.total_s == 18 * 60
        b.watch_world()
        finished = await b.run(b.runner(plan))
        running = _gun_on_between(b, 1.0, plan.total_s - 1.0)
        assert running
        assert all(running), "the gun stopped before the end of the extended session"
        assert finished.outcome == "completed", finished
        assert finished.delivered_s == pytest.approx(plan.total_s, abs=1.0)
        assert_off(b.world, GUN)


@pytest.mark.parametrize(
    ("name", "extended", "block_s"),
    [
        pytest.param("massage-lower-back", False, 10 * 60.0, id="ten-minutes"),
        pytest.param("massage-extended", False, 15 * 60.0, id="fifteen-minutes"),
        pytest.param("massage-extended", True, 18 * 60.0, id="extension-eighteen-minutes"),
        pytest.param("routine-lower-back", False, 10 * 60.0, id="routine"),
    ],
)
def test_the_guns_own_cap_is_its_run_and_a_margin_never_racing_the_hosts_stop(
    name: str, extended: bool, block_s: float
) -> None:
    plan = compile_plan(LIBRARY.get(name), resolve=LIBRARY.get, extended=extended)
    caps = gun_run_caps(plan, RUN_CAP_MARGIN_S, HARD)
    gun_steps = [s for s in plan.steps if s.role == "gun"]
    assert gun_steps
    # a margin past the host's stop, but never a run longer than M1 allows
    expected = min(block_s + RUN_CAP_MARGIN_S, HARD.massage_extended_max_s)
    assert {caps.get(id(s)) for s in gun_steps} == {expected}
    assert RUN_CAP_MARGIN_S > 0
