"""A key or value that carries a newline (or another unprintable character) never breaks a
refusal into two lines: it is shown escaped; and bad input is refused with one sentence, never
a traceback. Found by benchmarks/fuzz.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main
from controller.daemon.protocol import ProtocolError, decode_request
from controller.library import load_file
from controller.mqtt.config import ConfigError, load_config
from controller.mqtt.topics import CommandError, decode_command
from profiles.errors import ProfileError, printable
from simulators.faults import ScenarioError, load_scenario
from simulators.serve_cmd import parse_tcp_address


def test_printable_escapes_what_cannot_be_shown_and_keeps_the_rest() -> None:
    assert printable("a\nb\tc\x07d\u200be") == "a\\nb\\tc\\x07d\\u200be"
    assert printable("lower-back ±1 °C") == "lower-back ±1 °C"
    assert printable("x" * 50, 10) == "xxxxxxx..."


def test_a_daemon_request_with_a_newline_key_is_refused_in_one_line() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(b'{"request": "arm", "\\n\\u2028x": 1}')
    assert "\n" not in str(caught.value)
    assert "\\n" in str(caught.value)


def test_an_mqtt_command_with_a_newline_key_is_refused_in_one_line() -> None:
    with pytest.raises(CommandError) as caught:
        decode_command("start", b'{"\\n": ""}')
    assert str(caught.value) == "'\\n': extra inputs are not permitted"


def test_a_settings_file_with_a_newline_key_is_one_sentence_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('"\\n" = 1\n[mqtt]\n"bad\\nkey" = 2\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(None, path)
    assert len(caught.value.problems) == 2
    assert all("\n" not in problem for problem in caught.value.problems)


def test_a_profile_with_a_newline_key_or_value_names_it_escaped(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        'name = "p"\ntitle = "T"\nkind = "heat\\nx"\narea = "lower-back"\n'
        '[heat]\nminutes = 10\ncelsius = 40\n"\\n" = 1\n',
        encoding="utf-8",
    )
    with pytest.raises(ProfileError) as caught:
        load_file(path)
    problems = [str(problem) for problem in caught.value.problems]
    assert all("\n" not in problem for problem in problems), problems
    assert any("heat\\nx" in problem for problem in problems), problems  # the value, escaped


# --- fault scenario files (relieve sim serve --scenario) -------------------------------------


def _sim_serve(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str]:
    """``relieve sim serve`` with ``args``, refused before it serves: exit code and stderr."""
    code = main(["sim", "serve", "--socket", str(tmp_path / "sim.sock"), *args])
    out, err = capsys.readouterr()
    assert out == ""
    return code, err


def test_a_scenario_file_that_is_not_utf8_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "\xff"\n')
    code, err = _sim_serve(capsys, tmp_path, "--scenario", str(path))
    assert code == 1
    assert "Traceback" not in err
    assert err == (
        f"relieve: Cannot read the fault scenario {path} ('utf-8' codec can't decode byte 0xff "
        "in position 8: invalid start byte); check the file.\n"
    )


def test_a_socket_path_with_a_newline_is_shown_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["sim", "serve", "--socket", str(tmp_path / "none" / "a\nb")])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1  # one line
    assert "none/a\\nb: there is no directory" in err


def test_a_missing_scenario_file_with_a_newline_in_its_name_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "a\nb.toml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("a\\nb.toml (No such file or directory); check the file.")


FAULT = '[[fault]]\ndevice = "heat-pad"\n'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (FAULT + 'kind = "a\\nb"\n', "Input tag 'a\\nb' found using 'kind'"),  # pydantic's words
        ('"x\\ny" = 1\n', ": x\\ny: Extra inputs are not permitted"),
        (FAULT + 'kind = "disconnect"\n"p\\rq" = 1\n', ": p\\rq: Extra inputs are not permitted"),
        ('[[device]]\nkey = "heat-pad"\n"\\u2028" = 1\n', ": \\u2028: Extra inputs"),
    ],
    ids=["fault-kind", "top-level-key", "fault-key", "device-key"],
)
def test_a_scenario_key_or_kind_with_a_newline_is_shown_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, shown: str
) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    code, err = _sim_serve(capsys, tmp_path, "--scenario", str(path))
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith(f"relieve: The fault scenario is not valid: {path}")
    assert shown in err


# --- argument type functions (argparse: exit 2, the usage, one error line) --------------------


def _refused_by_parser(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.rstrip("\n").splitlines()
    assert lines[0].startswith("usage: relieve")
    assert all(line.startswith(" ") for line in lines[1:-1]), err  # only the usage, wrapped
    assert ": error: argument " in lines[-1]
    return lines[-1]


NOWHERE = ["--simulator", "unix:/nonexistent/relieve-sim.sock"]
PROBE = "C0:DE:00:00:00:07"


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (
            ["scan", "--timeout", "0\n", *NOWHERE],
            "--timeout: '0\\n' is not a time to listen for; give seconds above 0 and at most 120",
        ),
        (
            ["fleet", "stop", "--all", "--timeout", "0\n"],
            "--timeout: '0\\n' is not a time to wait for each node; give seconds above 0 and at "
            "most 120",
        ),
        (
            ["sim", "serve", "--socket", "/nonexistent/x.sock", "--speed", "0\n"],
            "--speed: '0\\n' is not a clock speed: use a number above 0 and at most 1000",
        ),
        (
            ["sim", "serve", "--socket", "/nonexistent/x.sock", "--speed", "fast\n"],
            "--speed: 'fast\\n' is not a number (e.g. 10)",
        ),
        (["demo", "--speed", "nan\n"], "--speed: 'nan\\n' is not a speed;"),
        (["scan", "--timeout", "soon\t", *NOWHERE], "--timeout: 'soon\\t' is not a number of"),
        (
            ["device", "watch", PROBE, "--for", "5m\n7", *NOWHERE],
            "--for: '5m\\n7' is not a duration; write it like 90s, 5m or 1m30s",
        ),
        (["device", "watch", PROBE, "--for", "0s\n", *NOWHERE], "--for: '0s\\n' is no time at"),
        (
            ["device", "watch", PROBE, "--for", "\n" + "9" * 400 + "h", *NOWHERE],
            "--for: '\\n" + "9" * 35 + "...' is longer than the 24h relieve times at most",
        ),
    ],
    ids=[
        "scan-timeout",
        "fleet-timeout",
        "sim-speed",
        "sim-speed-word",
        "demo-speed",
        "scan-timeout-word",
        "duration",
        "no-duration",
        "long-duration",
    ],
)
def test_a_refused_argument_is_repeated_escaped_on_the_error_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], refusal: str
) -> None:
    assert refusal in _refused_by_parser(capsys, argv)


@pytest.mark.parametrize(
    "address",
    [":\u00b2", ":\u0663", "127.0.0.1:\U0001d7d7", ":" + "1" * 5000, "a\nb:9100", ":80\n"],
    ids=["superscript", "arabic-indic", "math-digit", "5000-digits", "newline-host", "newline"],
)
def test_a_tcp_port_is_ascii_digits_and_a_refusal_says_so(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    line = _refused_by_parser(capsys, ["sim", "serve", "--tcp", address])
    assert f"--tcp: '{printable(address, 40)}' is not HOST:PORT with a port 0..65535" in line
    assert "invalid" not in line  # argparse's words when the type function raised ValueError


def test_a_tcp_address_that_is_fine_is_taken() -> None:
    assert parse_tcp_address(":9100") == ("127.0.0.1", 9100)
    assert parse_tcp_address("[::1]:0") == ("::1", 0)
    assert parse_tcp_address("0.0.0.0:65535") == ("0.0.0.0", 65535)  # noqa: S104 - parsed only
