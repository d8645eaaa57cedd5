"""Numbers on the command line are finite and in range before anything uses them.

An option argparse can check on its own (a finite number, a range of its own) is refused by
argparse: exit 2, the usage and one ``error: argument --X: ...`` sentence on stderr. What needs the
limits or the command (``--speed`` 1-1000 and only with simulated devices, ``--rpm``, ``--celsius``
against H1/C4) is refused with one ``relieve: ...`` sentence and exit 1 -- in every case before
anything is printed, asked or connected. What only the device knows (its own setpoint or speed
range) is checked once connected, but still before a line says what is about to happen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main

HEAT_PAD = "C0:DE:00:00:00:02"
CONTRAST_PAD = "C0:DE:00:00:00:01"
GUN = "C0:DE:00:00:00:04"
MAT = "C0:DE:00:00:00:06"
PROBE = "C0:DE:00:00:00:07"
# A simulator nobody serves: a command that tried to connect would fail with "Cannot reach".
NOWHERE = ["--simulator", "unix:/nonexistent/relieve-sim.sock"]


def refused_by_parser(capsys: pytest.CaptureFixture[str], argv: list[str], option: str) -> str:
    """argparse refuses: exit 2, nothing on stdout, the usage and one error sentence."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = err.rstrip("\n").splitlines()
    assert lines[0].startswith("usage: relieve")
    assert all(line.startswith(" ") for line in lines[1:-1])  # the usage, wrapped
    assert f": error: argument {option}: " in lines[-1]
    return lines[-1]


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """relieve refuses: exit 1, nothing on stdout, one sentence on stderr."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("relieve: ")
    return lines[0]


# --- run --speed and demo --speed: 1-1000 ---------------------------------------------------------

NOT_A_NUMBER = ["nan", "inf", "-inf", "NaN", "fast"]
OUT_OF_RANGE = ["0.001", "0", "-1", "0.999", "1001", "1e300"]


@pytest.mark.parametrize("speed", NOT_A_NUMBER)
def test_run_speed_that_is_not_a_finite_number(
    capsys: pytest.CaptureFixture[str], config_dir: Path, tmp_path: Path, speed: str
) -> None:
    argv = ["--data-dir", str(tmp_path / "data"), "run", "contrast-quick", "--simulate", "--yes"]
    line = refused_by_parser(capsys, [*argv, f"--speed={speed}"], "--speed")
    assert f"{speed!r} is not a speed; give an ordinary number such as 60" in line


@pytest.mark.parametrize("speed", OUT_OF_RANGE)
def test_run_speed_outside_1_to_1000(
    capsys: pytest.CaptureFixture[str], config_dir: Path, tmp_path: Path, speed: str
) -> None:
    argv = ["--data-dir", str(tmp_path / "data"), "run", "contrast-quick", "--simulate", "--yes"]
    line = refused(capsys, [*argv, f"--speed={speed}"])
    assert line.startswith("relieve: --speed must be between 1 and 1000 (times real time), not ")
    assert line.endswith("; give a number in that range.")


@pytest.mark.parametrize("speed", NOT_A_NUMBER)
def test_demo_speed_that_is_not_a_finite_number(
    capsys: pytest.CaptureFixture[str], config_dir: Path, speed: str
) -> None:
    line = refused_by_parser(capsys, ["demo", f"--speed={speed}"], "--speed")
    assert f"{speed!r} is not a speed; give an ordinary number such as 60" in line


@pytest.mark.parametrize("speed", OUT_OF_RANGE)
def test_demo_speed_outside_1_to_1000_is_refused_before_the_demo_says_anything(
    capsys: pytest.CaptureFixture[str], config_dir: Path, speed: str
) -> None:
    # `demo --speed 0` used to run at the default x60 (`args.speed or DEMO_SPEED`)
    line = refused(capsys, ["demo", f"--speed={speed}"])
    assert line.startswith("relieve: --speed must be between 1 and 1000")


# --- scan --timeout ------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "soon"])
def test_scan_timeout_is_a_finite_number(capsys: pytest.CaptureFixture[str], timeout: str) -> None:
    line = refused_by_parser(capsys, ["scan", f"--timeout={timeout}", *NOWHERE], "--timeout")
    assert f"{timeout!r} is not a number of seconds; give an ordinary number such as 5" in line


@pytest.mark.parametrize("timeout", ["0", "-1", "120.5", "1e9"])
def test_scan_timeout_is_above_0_and_at_most_two_minutes(
    capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    line = refused_by_parser(capsys, ["scan", f"--timeout={timeout}", *NOWHERE], "--timeout")
    assert line.endswith(
        f"'{timeout}' is not a time to listen for; give seconds above 0 and at most 120"
    )


# --- device ... --for ----------------------------------------------------------------------------

HUGE_SECONDS = "1" + "0" * 400 + "s"  # read as a float: infinity
HUGE_HOURS = "9" * 400 + "h"  # read as an int, too large to add to a float


@pytest.mark.parametrize(
    "argv",
    [
        ["heat", HEAT_PAD, "--celsius", "40", "--for", HUGE_SECONDS],
        ["heat", HEAT_PAD, "--celsius", "40", "--for", HUGE_HOURS],
        ["cold", CONTRAST_PAD, "--celsius", "12", "--for", HUGE_SECONDS],
        ["gun", GUN, "--level", "low", "--for", HUGE_HOURS],
        ["watch", PROBE, "--for", HUGE_SECONDS],
        ["watch", PROBE, "--for", HUGE_HOURS],
        ["watch", PROBE, "--for", "25h"],
    ],
    ids=["heat-seconds", "heat-hours", "cold-seconds", "gun-hours", "watch-s", "watch-h", "25h"],
)
def test_a_duration_is_finite_and_at_most_a_day(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    line = refused_by_parser(capsys, ["device", *argv, *NOWHERE], "--for")
    assert "relieve times at most; give a shorter duration" in line
    assert len(line) < 200  # the 400 digits are not repeated back


# --- device heat|cold --celsius, device gun --rpm ------------------------------------------------


@pytest.mark.parametrize("celsius", ["nan", "inf", "-inf", "warm"])
@pytest.mark.parametrize(("action", "address"), [("heat", HEAT_PAD), ("cold", CONTRAST_PAD)])
def test_celsius_is_a_finite_number(
    capsys: pytest.CaptureFixture[str], action: str, address: str, celsius: str
) -> None:
    argv = ["device", action, address, f"--celsius={celsius}", "--for", "1m", *NOWHERE]
    line = refused_by_parser(capsys, argv, "--celsius")
    assert "is not a temperature; give an ordinary number such as 40" in line


@pytest.mark.parametrize("rpm", ["-5", "0", "999", "3617", str(10**30)])
def test_rpm_outside_what_guns_run_at_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], rpm: str
) -> None:
    # nothing is printed first (it used to say "Running ... at -5 per minute"), and the
    # simulator nobody serves is never reached
    line = refused(capsys, ["device", "gun", GUN, f"--rpm={rpm}", "--for", "1m", *NOWHERE])
    assert line == (
        f"relieve: --rpm {rpm} is outside the 1000-3616 per minute percussion guns run at; "
        "choose a speed in that range, or --level low."
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["gun", GUN, "--rpm", "-5", "--for", "1m"],
            "--rpm -5 is outside the 1000-3616 per minute",
        ),
        (
            ["gun", GUN, "--rpm", "1100", "--for", "1m"],
            f"relieve Massage Gun ({GUN}) runs at 1200-3200 per minute, not 1100",
        ),
        (
            ["heat", HEAT_PAD, "--celsius", "20", "--for", "1m"],
            f"relieve Heat Pad ({HEAT_PAD}) heats to 30-45 °C, not 20 °C",
        ),
        (
            ["cold", MAT, "--celsius", "12", "--for", "1m"],
            f"Heating Mat ({MAT}) cannot cool; use a cold pad.",
        ),
    ],
    ids=["rpm-negative", "rpm-below-this-gun", "celsius-below-this-pad", "a-mat-cannot-cool"],
)
def test_nothing_says_what_it_will_do_before_the_values_are_checked(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    line = refused(capsys, ["device", *argv, "--simulate"])
    assert expected in line
