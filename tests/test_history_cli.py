"""`relieve history` and `relieve injury add`, as a person (or a script) runs them."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.cli import history as history_cmd
from controller.cli.commands import build_parser, main
from controller.ledger import DeviceInfo, Ledger
from controller.ledger.allowances import AllowanceError
from controller.library import ProfileLibrary
from profiles.compiler import compile_plan
from profiles.plan import Mode

CEST = timezone(timedelta(hours=2), "CEST")
# "Now" in these tests: Tuesday 7 May 2024, 16:00 local.
NOW = datetime(2024, 5, 7, 16, 0, tzinfo=CEST)
LEASE_S = 5.0


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def seed(data_dir: Path, *, simulated: bool = False) -> None:
    """Yesterday's heat soak; today a contrast session with an alarm and a massage session."""
    with Ledger.open(data_dir, simulated=simulated, now=lambda: NOW, tz=CEST) as ledger:
        start = NOW - timedelta(days=1)
        soak = ledger.start_session("heat-soak", "heat", started_at=start)
        soak.phase_started("heat", "lower-back", start, celsius=40.0, worst_case_s=LEASE_S)
        soak.finish("completed", start + minutes(10))

        start = NOW - timedelta(hours=6)  # 10:00
        contrast = ledger.start_session(
            "contrast-lower-back",
            "contrast",
            started_at=start,
            devices={"heat": DeviceInfo("AA:BB:CC:00:00:01", "Relieve Pad", "open-thermal")},
        )
        modes: list[Mode] = ["heat", "cold", "heat"]
        for n, mode in enumerate(modes):
            contrast.phase_started(mode, "lower-back", start + minutes(5 * n), worst_case_s=5)
        contrast.alarm("S4", "high", "Over-temperature: the pad read 46 °C.", start + minutes(12))
        contrast.finish("aborted", start + minutes(12))

        start = NOW - timedelta(hours=2)  # 14:00
        gun = ledger.start_session(
            "massage-extended", "massage", started_at=start, extended=True, overrides=["M1"]
        )
        gun.phase_started("massage", "left-glute", start, rpm=1750, worst_case_s=0)
        gun.phase_started("massage", "right-glute", start + minutes(1.5), rpm=1750, worst_case_s=0)
        gun.finish("completed", start + minutes(3))


def run_history(data_dir: Path, *options: str) -> str:
    args = build_parser().parse_args(["--data-dir", str(data_dir), "history", *options])
    out = io.StringIO()
    assert history_cmd.history(args, now=lambda: NOW, tz=CEST, out=out) == 0
    return out.getvalue()


def run_injury(data_dir: Path, *options: str) -> str:
    args = build_parser().parse_args(["--data-dir", str(data_dir), "injury", "add", *options])
    out = io.StringIO()
    assert history_cmd.injury_add(args, now=lambda: NOW, tz=CEST, out=out) == 0
    return out.getvalue()


def test_history_lists_sessions_newest_first_with_todays_minutes(tmp_path: Path) -> None:
    seed(tmp_path)
    text = run_history(tmp_path)
    lines = text.splitlines()
    assert lines[0] == "Today, Tue 7 May: heat 7 min, cold 5 min, massage 3 min"
    assert "  left-glute   massage 1.5 min" in lines
    assert "  lower-back   heat 7 min, cold 5 min" in lines
    sessions = [line for line in lines if line[:4].strip().isdigit()]
    assert [line.split()[0] for line in sessions] == ["3", "2", "1"]
    assert sessions[0].split()[1:] == [
        "Tue",
        "2024-05-07",
        "14:00",
        "3:00",
        "completed",
        "massage-extended",
        "(extended;",
        "overrode",
        "M1)",
    ]
    assert sessions[1].split()[3:6] == ["10:00", "12:00", "aborted"]
    assert "! S4 high 10:12: Over-temperature: the pad read 46 °C." in text
    assert sessions[2].split()[1:4] == ["Mon", "2024-05-06", "16:00"]


def test_history_today_shows_only_todays_sessions(tmp_path: Path) -> None:
    seed(tmp_path)
    sessions = json.loads(run_history(tmp_path, "--today", "--json"))
    assert [s["profile"] for s in sessions] == ["massage-extended", "contrast-lower-back"]


def test_history_json_is_a_list_of_session_objects(tmp_path: Path) -> None:
    seed(tmp_path)
    sessions = json.loads(run_history(tmp_path, "--json"))
    assert [s["id"] for s in sessions] == [3, 2, 1]
    contrast = sessions[1]
    assert contrast["profile"] == "contrast-lower-back"
    assert contrast["kind"] == "contrast"
    assert contrast["outcome"] == "aborted"
    assert contrast["started_at"] == "2024-05-07T10:00:00+02:00"
    assert contrast["ended_at"] == "2024-05-07T10:12:00+02:00"
    assert contrast["duration_seconds"] == 720
    assert contrast["exposure_seconds"] == {"heat": 420, "cold": 300, "massage": 0}
    assert contrast["devices"] == {
        "heat": {"address": "AA:BB:CC:00:00:01", "name": "Relieve Pad", "driver": "open-thermal"}
    }
    assert contrast["alarms"] == [
        {
            "limit": "S4",
            "priority": "high",
            "message": "Over-temperature: the pad read 46 °C.",
            "at": "2024-05-07T10:12:00+02:00",
        }
    ]
    assert [p["mode"] for p in contrast["phases"]] == ["heat", "cold", "heat"]
    assert sessions[0]["extended"] is True
    assert sessions[0]["overrides"] == ["M1"]
    assert sessions[0]["simulated"] is False


def test_history_csv_has_a_header_and_a_row_per_session(tmp_path: Path) -> None:
    seed(tmp_path)
    rows = list(csv.reader(io.StringIO(run_history(tmp_path, "--csv"))))
    assert tuple(rows[0]) == history_cmd.CSV_COLUMNS
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["id"] for r in records] == ["3", "2", "1"]
    assert records[1]["outcome"] == "aborted"
    assert records[1]["heat_seconds"] == "420"
    assert records[1]["alarms"] == "S4"
    assert records[0]["overrides"] == "M1"
    assert records[0]["massage_seconds"] == "180"
    assert records[2]["started_at"] == "2024-05-06T16:00:00+02:00"


def test_history_of_simulated_devices_is_separate(tmp_path: Path) -> None:
    seed(tmp_path, simulated=True)
    assert "No sessions recorded yet." in run_history(tmp_path)
    text = run_history(tmp_path, "--simulated")
    assert "never count against real exposure" in text
    assert "contrast-lower-back" in text


def test_history_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(tmp_path)
    assert main(["--data-dir", str(tmp_path), "history", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_the_data_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(tmp_path)
    monkeypatch.setenv("RELIEVE_DATA_DIR", str(tmp_path))
    assert main(["history", "--csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        ("file", "choose a writable directory with --data-dir"),
        ("damaged", "is damaged"),
    ],
)
def test_history_problems_are_one_sentence_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prepare: str, expected: str
) -> None:
    data_dir = tmp_path / "data"
    if prepare == "file":
        data_dir.write_text("")
    else:
        data_dir.mkdir()
        (data_dir / "ledger.sqlite3").write_bytes(b"\x00garbage" * 512)
    assert main(["--data-dir", str(data_dir), "history"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("relieve: ")
    assert expected in err
    assert len(err.strip().splitlines()) == 1


# --- relieve injury add -------------------------------------------------------------------------


def test_injury_add_says_what_the_acute_window_means(tmp_path: Path) -> None:
    out = run_injury(tmp_path, "--area", "lower-back", "--at", "09:10")
    assert out == (
        "Recorded an injury on lower-back at 09:10.\n"
        "No heat or contrast on lower-back until Thu 9 May at 09:10; cold only until "
        "Fri 10 May at 09:10.\n"
    )
    with Ledger.open(tmp_path, now=lambda: NOW, tz=CEST) as ledger:
        (injury,) = ledger.injuries()
        assert (injury.area, injury.at) == ("lower-back", datetime(2024, 5, 7, 9, 10, tzinfo=CEST))
        library = ProfileLibrary(tmp_path / "config")
        contrast = compile_plan(library.get("contrast-lower-back"))
        with pytest.raises(AllowanceError, match=r"\(H6, injury recorded at 09:10\)"):
            ledger.check_allowances(contrast)


def test_injury_add_defaults_to_now_and_takes_iso_times(tmp_path: Path) -> None:
    assert run_injury(tmp_path, "--area", "neck").startswith("Recorded an injury on neck at 16:00.")
    out = run_injury(tmp_path, "--area", "knee", "--at", "2024-05-05T08:00:00+00:00")
    assert out == (
        "Recorded an injury on knee on Sun 5 May at 10:00.\n"
        "Heat and contrast on knee are allowed again; the guidance is cold only until "
        "tomorrow at 10:00.\n"
    )
    out = run_injury(tmp_path, "--area", "knee", "--at", "2024-05-01 12:00")
    assert "more than 72 hours ago, so it no longer limits anything" in out


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--at", "16:01"],
            "2024-05-07 16:01 is in the future; give the time the injury happened.",
        ),
        (["--at", "2024-06-01T10:00"], "is in the future"),
        (["--at", "yesterday"], "'yesterday' is not a time; give HH:MM for today or an ISO-8601"),
        (["--at", "25:00"], "'25:00' is not a time"),
    ],
)
def test_injury_add_refuses_future_and_malformed_times(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    args = build_parser().parse_args(
        ["--data-dir", str(tmp_path), "injury", "add", "--area", "lower-back", *options]
    )
    with pytest.raises(history_cmd.TimeError) as caught:
        history_cmd.injury_add(args, now=lambda: NOW, tz=CEST, out=io.StringIO())
    assert expected in str(caught.value)
    with Ledger.open(tmp_path, now=lambda: NOW, tz=CEST) as ledger:
        assert ledger.injuries() == []


def test_injury_add_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main([*data, "injury", "add", "--area", "Lower Back"]) == 1
    assert capsys.readouterr().err == (
        "relieve: 'Lower Back' is not an area name; use lowercase words joined by dashes, as "
        "the profiles do (for example lower-back).\n"
    )
    assert main([*data, "injury", "add", "--area", "lower-back", "--at", "tomorrow"]) == 1
    assert "is not a time" in capsys.readouterr().err
    assert main([*data, "injury", "add", "--area", "lower-back", "--at", "2024-05-01T08:00"]) == 0
    assert "no longer limits anything" in capsys.readouterr().out
