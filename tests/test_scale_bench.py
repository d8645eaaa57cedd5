"""benchmarks/scale_bench.py: a small run (two sessions, therapy time x20), and its judges."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from benchmarks import scale_bench as scale
from profiles.compiler import compile_plan
from profiles.parse import parse_profile
from profiles.plan import Capabilities

# A heat pad and a cold pad, as every session of the benchmark has.
TWO_PADS = Capabilities(combined=False, gun="none")


def test_two_sessions_end_with_every_output_off_and_give_every_figure() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = scale.main(["--sessions", "2", "--speed", "20", "--cycles", "1", "--json"])
    report = json.loads(out.getvalue())
    assert status == 0
    assert report["ok"] is True
    assert report["safety_failures"] == []
    (run,) = report["results"]
    assert run["sessions"] == 2
    assert run["devices"] == 4
    # both sessions were stopped by the stop-all, each confirming its pads OFF
    assert run["outcomes"] == {"stopped": 2}
    assert run["devices_off"] is True
    # one cycle: the only switch before the stop-all is the cold pad going ON at time zero
    assert run["switches_planned"] == 2
    assert run["switches_missed"] == 0
    switch = run["switch_error_ms"]
    assert switch["count"] == 2
    assert run["switch_error_ms_by_kind"]["on"]["count"] == 2
    assert 0.0 <= switch["p50"] <= switch["p99"] <= switch["max"] < 1000.0
    # mid-heat both pads of both rooms were ON; each reported OFF within the runner's bound
    stop = run["stop_all_ms"]
    assert stop["already_off"] == 0
    assert stop["per_device"]["count"] == 4
    assert 0.0 <= stop["per_device"]["p50"] <= stop["per_device"]["max"] == stop["total"]
    assert stop["total"] <= stop["bound"] == 1000.0
    cpu = run["cpu"]
    assert cpu["seconds"] > 0
    assert cpu["per_session_per_therapy_minute_s"] > 0
    assert 0.0 < cpu["core_share"] <= report["cpus"]
    assert run["rss_mib"]["peak"] > 0
    assert run["loop_lag_ms"]["count"] > 10
    assert run["gc"]["tracked_objects"] > 0
    assert run["events"]["finished"] == 2
    assert run["events"]["phase"] >= 2


def test_percentiles_interpolate_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert scale.percentile(values, 0) == 1.0
    assert scale.percentile(values, 50) == 2.5
    assert scale.percentile(values, 99) == pytest.approx(3.97)
    assert scale.percentile(values, 100) == 4.0
    assert scale.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        scale.percentile([], 50)
    with pytest.raises(ValueError, match="0-100"):
        scale.percentile(values, 101)


def test_summary_is_in_milliseconds() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert scale.summary_ms(seconds) == {"count": 100, "p50": 50.5, "p99": 99.01, "max": 100.0}
    assert scale.summary_ms([]) == {"count": 0, "p50": None, "p99": None, "max": None}


def test_the_planned_switches_of_a_contrast_on_two_pads() -> None:
    profile = parse_profile(scale.contrast_profile(2), "scale-contrast.toml")
    plan = compile_plan(profile, TWO_PADS)
    # pre-heat runs into the first heat phase and the cold pad pre-cools during heat, so the
    # cold pad goes ON once and stays ON; the heat pad goes OFF and ON at the phase changes
    switches = scale.planned_switches(plan, until_s=150.0)
    assert [(s.role, s.at, s.mode) for s in switches] == [
        ("cold", 0.0, "cold"),
        ("heat", 60.0, "off"),
        ("heat", 120.0, "heat"),
    ]
    everything = scale.planned_switches(plan, until_s=plan.total_s + 1)
    assert [(s.role, s.at, s.mode) for s in everything][-2:] == [
        ("heat", 180.0, "off"),
        ("cold", 240.0, "off"),
    ]


def _room(index: int, **reports: list[tuple[float, str]]) -> Any:
    room = scale.Room(index, pads={})
    room.reports = {
        role: [scale.Report(t, mode) for t, mode in seen] for role, seen in reports.items()
    }
    return room


def test_the_stop_all_judge_flags_a_late_or_missing_off() -> None:
    # clock x2: 0.3 clock seconds after the stop are 150 real milliseconds
    rooms = [
        _room(0, heat=[(0.0, "heat"), (100.3, "off")], cold=[(0.0, "cold"), (100.1, "off")]),
        _room(1, heat=[(0.0, "heat"), (50.0, "off")], cold=[(0.0, "cold"), (104.0, "off")]),
        _room(2, heat=[(0.0, "heat")], cold=[(0.0, "cold"), (100.2, "driven")]),
    ]
    offs, already_off, failures = scale.stop_all_latencies(
        rooms, stop_clock=100.0, speed=2.0, bound_s=1.0
    )
    assert [round(s, 3) for s in offs] == [0.15, 0.05, 2.0]
    assert already_off == 1  # room 1's heat pad was OFF before the stop
    assert failures == [
        "room 1: the cold pad reported OFF 2000 ms after the stop-all (bound 1000 ms)",
        "room 2: the heat pad never reported OFF",
        "room 2: the cold pad never reported OFF",  # it claims OFF, but its output still drives
    ]


def test_the_switch_judge_measures_from_the_planned_instant() -> None:
    room = _room(0, heat=[(0.0, "heat"), (160.004, "off")], cold=[(99.0, "off")])
    room.t0 = 100.0
    switches = [scale.Switch("heat", 60.0, "off"), scale.Switch("cold", 0.0, "cold")]
    errors, missed = scale.switch_errors([room], switches, stop_clock=200.0, speed=1.0)
    assert [(s.role, round(e, 6)) for s, e in errors] == [("heat", 0.004)]
    assert missed == 1  # the cold pad never reported cold


def _result(sessions: int, p99: float, lag: float, share: float, **extra: Any) -> dict[str, Any]:
    return {
        "sessions": sessions,
        "switch_error_ms": {"p99": p99},
        "loop_lag_ms": {"p99": lag},
        "cpu": {"core_share": share},
        "switches_missed": extra.get("missed", 0),
        "outcomes": extra.get("outcomes", {"stopped": sessions}),
    }


def test_the_knee_is_the_first_session_count_that_misses_a_figure() -> None:
    results = [
        _result(32, 40.0, 9.0, 0.9),
        _result(1, 1.5, 0.4, 0.05),
        _result(8, 4.0, 1.0, 0.3, outcomes={"stopped": 7, "aborted": 1}),
    ]
    assert scale.knee(results) == {
        "sessions": 8,
        "why": ["1 session(s) ended before the stop-all"],
    }
    fine = [_result(1, 1.5, 0.4, 0.05), _result(8, 4.9, 4.0, 0.5)]
    assert scale.knee(fine) == {"sessions": None, "why": []}
    busy = scale.knee([_result(32, 40.0, 9.0, 0.9)])
    assert busy["why"] == [
        "switch error p99 40 ms > 5 ms",
        "event-loop lag p99 9 ms > 5 ms",
        "90% of one core busy (> 80%)",
    ]
