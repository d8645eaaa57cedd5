"""benchmarks/timing_bench.py: its statistics on known inputs, and a small real-time run.

The run is the real thing, shortened: a `relieve sim serve` process, a contrast session of one
half-second heat phase and one half-second cold phase in this process, and one SIGINT to a
`relieve run` of four devices. It checks the figures are there and plausible, not the targets:
timing on a shared test machine is not something to assert.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from benchmarks import timing_bench as bench


def test_percentiles_are_nearest_rank_values_that_were_measured() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile(values, 100) == 100.0
    assert bench.percentile([7.0, 3.0], 99) == 7.0  # with few samples the p99 is the max
    assert bench.percentile([4.0], 50) == 4.0
    with pytest.raises(ValueError, match="no values"):
        bench.percentile([], 50)


def test_summary_of_milliseconds() -> None:
    assert bench.summary_ms([2.0, 1.0, 4.0, 3.0]) == {
        "n": 4,
        "p50": 2.0,
        "p99": 4.0,
        "max": 4.0,
        "min": 1.0,
        "mean": 2.5,
    }
    assert bench.summary_ms([])["n"] == 0
    assert bench.summary_ms([])["p99"] is None


def test_slope_and_drift_of_a_series_that_grows_steadily() -> None:
    at_s = [float(i) for i in range(9)]  # one planned instant a second
    errors_ms = [0.5 * i for i in range(9)]  # half a millisecond later at each
    assert bench.slope(at_s, errors_ms) == pytest.approx(0.5)
    figures = bench.drift(at_s, errors_ms)
    assert figures["drift_ms"] == pytest.approx(3.0 - 0.0)  # floor of last 3 - of first 3
    assert figures["last_minus_first_ms"] == pytest.approx(4.0)
    assert figures["slope_ms_per_min"] == pytest.approx(30.0)


def test_drift_ignores_late_switches_and_needs_two_points() -> None:
    # a steady 2 ms with late switches scattered over the session (slow disk writes)
    errors_ms = [2.0, 9.0, 2.0, 2.0, 40.0, 2.0, 15.0, 2.0, 12.0]
    figures = bench.drift([float(i) for i in range(9)], errors_ms)
    assert figures["drift_ms"] == 0.0
    assert figures["last_minus_first_ms"] == 10.0  # the last switch happened to be late
    assert bench.drift([0.0], [1.0])["drift_ms"] is None
    assert bench.slope([1.0, 1.0], [0.0, 5.0]) == 0.0  # no spread in x: no slope


def test_the_server_start_is_the_smallest_receipt_minus_t() -> None:
    pairs = [(10.5, 0.4), (12.0, 2.0), (13.0, 2.95)]  # (receipt, t): delays 0.1, 0, 0.05 s
    assert bench.align_start(pairs) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="no event lines"):
        bench.align_start([])


def test_switches_are_matched_in_order_by_the_mode_the_device_reports() -> None:
    report = bench.DeviceReport
    reports = [
        report(99.999, "heat", on=True),  # the pre-heat, already ON before time zero
        report(100.5, "heat", on=True),  # a temperature change: same mode
        report(101.004, "cold", on=True),
        report(101.5, "cold", on=True),
        report(102.002, "heat", on=True),
        report(103.003, "off", on=False),
    ]
    planned = [(101.0, "cold"), (102.0, "heat"), (103.0, "off")]
    errors = bench.match_switches(planned, reports)
    assert errors == pytest.approx([0.004, 0.002, 0.003])
    # a switch the device never reported is None, and the ones after it are still found
    missing = bench.match_switches([(101.0, "cold"), (104.0, "heat")], reports[:4])
    assert missing[0] == pytest.approx(0.004)
    assert missing[1] is None


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench.main([*args, "--json"])
    return status, json.loads(out.getvalue())


def test_a_short_run_reports_every_switch_and_a_stop_from_the_devices() -> None:
    status, results = _run(
        "--part",
        "switch",
        "--phase-seconds",
        "0.5",
        "--cycles",
        "1",
        "--part",
        "stop",
        "--reps",
        "1",
        "--stop-via",
        "run",
        "--devices",
        "4",
    )
    switch = results["switch"]
    assert switch["ok"], switch
    assert switch["outcome"] == "completed"
    assert switch["devices_off"] is True
    assert switch["planned_instants"] == 2  # heat -> cold, and the end
    for series in ("device", "runner", "chained_sleep"):
        samples = switch["samples_ms"][series]
        assert len(samples) == 2, (series, samples)
        # never early beyond the clock alignment's millisecond; late by less than a phase
        assert all(-2.0 < ms < 500.0 for ms in samples), (series, samples)
    assert switch["device"]["missing"] == 0

    stop = results["stop"]["variants"]["run 4"]
    assert stop["problems"] == []
    assert stop["on_at_stop"] == ["heat-pad, cold-pad"]  # the heat pad heats, the cold pre-cools
    assert stop["bound"] == ["heat-pad", "cold-pad", "massage-gun", "skin-probe"]
    assert len(stop["samples_ms"]) == 1
    assert 0.0 < stop["samples_ms"][0] < 1000.0

    latency = results["server_pipe_latency_ms"]
    assert set(latency) == {"pad", "all"}
    assert all(figures["n"] > 0 and figures["min"] == 0.0 for figures in latency.values())
    assert status == (1 if results["missed"] else 0)
    assert set(results["missed"]) == {name for name, met in results["targets"].items() if not met}
