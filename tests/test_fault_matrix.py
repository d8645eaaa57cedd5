"""The fault matrix (benchmarks/fault_matrix.py): a few real cells, and proof its judge fails.

A handful of in-process cells run here as they do in the matrix (a real session on simulated
devices, on the virtual clock) and pass; the judge (``Cell.verdict``) is shown to fail a cell
that leaves an output ON past its bound, records less than was delivered, tells the person
several lines, or does not apply without saying why -- so the script cannot pass by
construction -- and the script's exit status follows the judge.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import fault_matrix as matrix
from benchmarks.fault_cells import COVER_TOLERANCE_S, Cell, Column, render_markdown, summary
from benchmarks.fault_inprocess import BLIP_S, LEASE_BOUND_S, run_inprocess_cell

# --- real cells ------------------------------------------------------------------------------


async def test_a_link_blip_in_heat_pauses_with_the_pad_off_and_resumes(tmp_path: Path) -> None:
    cell = await run_inprocess_cell("link-disconnect", "heat", workdir=tmp_path)
    assert cell.verdict() == []
    assert cell.outcome == "completed"
    assert cell.off_after_s == 0.0  # the pad drops its output with the link
    assert cell.resumed_after_s == pytest.approx(BLIP_S, abs=1.0)
    assert cell.claimed_off
    assert not cell.left_on
    # the whole planned therapy was delivered once, and recorded once
    assert cell.delivered_s == pytest.approx(135.0, abs=1.0)
    assert cell.recorded_s == pytest.approx(cell.delivered_s, abs=COVER_TOLERANCE_S)


@pytest.mark.parametrize(
    ("row", "column", "told"),
    [
        pytest.param("att-error", "massage", "lease expired", id="att-error-massage"),
        pytest.param("sensor-nan", "cold", "no valid temperature", id="nan-probe-cold"),
        pytest.param("battery-death", "between", "lost for more than 10 s", id="battery-between"),
        pytest.param("ledger-write-failure", "heat", "cannot be written", id="full-disk-heat"),
    ],
)
async def test_a_fault_that_ends_the_session_leaves_every_output_off_in_time(
    tmp_path: Path, row: str, column: Column, told: str
) -> None:
    cell = await run_inprocess_cell(row, column, workdir=tmp_path)
    assert cell.verdict() == []
    assert cell.outcome == "aborted"
    assert cell.off_after_s is not None
    assert 0.0 <= cell.off_after_s <= cell.bound_s
    assert not cell.left_on
    assert cell.claimed_off
    assert cell.recorded_s + COVER_TOLERANCE_S >= cell.delivered_s > 0
    assert told in cell.sentence
    assert "\n" not in cell.sentence


async def test_a_welded_heater_is_not_claimed_off_and_the_person_is_told(tmp_path: Path) -> None:
    cell = await run_inprocess_cell("stuck-heater-loud", "heat", workdir=tmp_path)
    assert cell.verdict() == []
    assert cell.host_cannot_switch
    assert cell.outcome == "aborted"
    assert cell.left_on  # the pad still heats: relieve cannot switch it ...
    assert cell.claimed_off is False  # ... and does not say it did
    assert "take the pad off now and unplug it" in cell.notes


async def test_a_cell_that_does_not_apply_says_why(tmp_path: Path) -> None:
    cell = await run_inprocess_cell("sensor-nan", "massage", workdir=tmp_path)
    assert not cell.applies
    assert "no temperature sensor" in cell.why_not
    assert cell.passed


# --- the judge cannot be passed by construction ------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column"),
    [
        # a device that stops reporting during pre-heat: its output OFF until it is back
        pytest.param("notification-loss", "preheat", id="stall-in-preheat"),
        pytest.param("notification-delay", "preheat", id="late-telemetry-in-preheat"),
    ],
)
async def test_a_pad_that_goes_quiet_in_preheat_is_switched_off_in_time(
    tmp_path: Path, row: str, column: Column
) -> None:
    cell = await run_inprocess_cell(row, column, workdir=tmp_path)
    assert cell.verdict() == []
    assert cell.off_after_s is not None
    assert cell.off_after_s <= cell.bound_s


@pytest.mark.parametrize("column", ["cold", "between"])
async def test_a_silently_welded_output_in_cold_is_never_claimed_off(
    tmp_path: Path, column: Column
) -> None:
    # cold: a Peltier welded on; between: a heater welded on at the switch to cold
    cell = await run_inprocess_cell("stuck-heater-silent", column, workdir=tmp_path)
    assert cell.verdict() == []
    assert cell.claimed_off is False


def _cell(**fields: Any) -> Cell:
    sound = Cell(
        "link-disconnect",
        "heat",
        outcome="aborted",
        off_after_s=2.0,
        bound_s=LEASE_BOUND_S,
        delivered_s=30.0,
        recorded_s=30.0,
        sentence="The link to the pad was lost for more than 10 s. Session ended.",
        claimed_off=True,
    )
    return dataclasses.replace(sound, **fields)


def test_a_sound_cell_passes() -> None:
    assert _cell().verdict() == []


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        pytest.param({"off_after_s": LEASE_BOUND_S + 0.001}, "after the fault", id="late-off"),
        pytest.param({"off_after_s": math.inf}, "after the fault", id="never-off"),
        pytest.param({"left_on": True}, "left ON", id="left-on"),
        pytest.param(
            {"delivered_s": 30.0, "recorded_s": 30.0 - COVER_TOLERANCE_S - 0.1},
            "the ledger records",
            id="records-less",
        ),
        pytest.param({"sentence": "Link lost.\nSession ended."}, "one clear", id="two-lines"),
        pytest.param({"sentence": "  "}, "one clear", id="nothing-said"),
        pytest.param({"sentence": "Traceback (most recent call last)"}, "one clear", id="trace"),
        pytest.param(
            {"host_cannot_switch": True, "left_on": True, "claimed_off": True},
            "claimed every device OFF",
            id="stuck-claimed-off",
        ),
        pytest.param({"problems": ["expected aborted"]}, "expected aborted", id="measured"),
    ],
)
def test_the_judge_fails_a_cell_that(fields: dict[str, object], why: str) -> None:
    failures = _cell(**fields).verdict()
    assert failures
    assert any(why in failure for failure in failures), failures


def test_the_judge_keeps_to_the_bound_and_the_tolerance_exactly() -> None:
    assert _cell(off_after_s=LEASE_BOUND_S).verdict() == []
    assert _cell(delivered_s=30.0, recorded_s=30.0 - COVER_TOLERANCE_S).verdict() == []
    # a welded output left ON is the device's fault when relieve said it is not OFF
    assert _cell(host_cannot_switch=True, left_on=True, claimed_off=False).verdict() == []


def test_a_cell_that_does_not_apply_fails_without_a_reason() -> None:
    assert Cell("sensor-nan", "massage", applies=False).verdict()
    assert Cell("sensor-nan", "massage", applies=False, why_not="No sensor.").verdict() == []


# --- the script ----------------------------------------------------------------------------------


def test_the_script_runs_a_selection_and_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "matrix.md"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = matrix.main(
            [
                "--row",
                "att-error",
                "--column",
                "heat",
                "--column",
                "massage",
                "--json",
                "--report",
                str(report),
                "--workdir",
                str(tmp_path / "work"),
            ]
        )
    result = json.loads(out.getvalue())
    assert status == 0
    assert [(c["row"], c["column"], c["passed"]) for c in result["cells"]] == [
        ("att-error", "heat", True),
        ("att-error", "massage", True),
    ]
    assert result["summary"]["failed"] == 0
    text = report.read_text(encoding="utf-8")
    assert "| ATT error on writes | not run | ok · aborted · OFF" in text
    assert "## Every cell" in text


def test_the_script_exits_non_zero_and_names_the_cell_when_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = _cell(off_after_s=LEASE_BOUND_S + 1.0)

    def run_cells(cells: object, **_: object) -> list[Cell]:
        return [late, Cell("sensor-nan", "massage", applies=False, why_not="No sensor.")]

    monkeypatch.setattr(matrix, "run_cells", run_cells)
    report = tmp_path / "matrix.md"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = matrix.main(["--row", "link-disconnect", "--report", str(report)])
    assert status == 1
    assert "FAIL link-disconnect x heat" in out.getvalue()
    text = report.read_text(encoding="utf-8")
    assert "## Failing cells" in text
    assert "**FAILED: OFF 6.000 s after the fault (bound 5.0 s)**" in text
    assert summary([late])["failed"] == 1
    assert "**FAIL**" in render_markdown([late], header="# x")
