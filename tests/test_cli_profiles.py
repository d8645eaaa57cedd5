"""`relieve profiles ...` and `relieve --help`, as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main
from tests.profile_texts import CONTRAST, with_value

RELIEVE = str(Path(sys.executable).parent / "relieve")


def run(*args: str, env_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if env_dir is not None:
        import os

        env = {**os.environ, "RELIEVE_CONFIG_DIR": str(env_dir)}
    return subprocess.run(
        [RELIEVE, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_help_loads_no_heavy_module() -> None:
    # `relieve --help` stays fast because the CLI imports a command's modules only when it
    # runs (benchmarks/cli_bench.py prints the time); prove the imports, not the stopwatch.
    code = (
        "import sys\n"
        "from controller.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'bleak', 'bumble', 'textual', 'pydantic', 'aiomqtt', 'sqlite3'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "profiles" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_help_runs_from_the_console_script() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: relieve")


def test_list_shows_builtins_and_user_profiles(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "profiles" / "mine.toml").write_text(CONTRAST)
    assert main(["profiles", "list", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["contrast-lower-back"]["source"] == "built-in"
    assert listed["contrast-lower-back"]["total_seconds"] == 1800
    assert listed["my-contrast"]["source"].endswith("mine.toml")
    assert listed["my-contrast"]["total_seconds"] == 24 * 60


def test_a_broken_user_profile_is_reported_and_the_rest_still_listed(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "profiles" / "bad.toml").write_text(
        with_value(CONTRAST, "contrast.heat_celsius", 50)
    )
    assert main(["profiles", "list"]) == 0
    out, err = capsys.readouterr()
    assert "contrast-lower-back" in out
    assert "bad.toml: contrast.heat_celsius = 50" in err
    assert "(H1)" in err


def test_show_json_has_the_documented_shape(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "show", "contrast-lower-back", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["name"] == "contrast-lower-back"
    assert plan["total_seconds"] == 1800
    first_heat = next(s for s in plan["steps"] if s["action"] == "heat")
    assert first_heat == {
        "role": "heat",
        "action": "heat",
        "start_s": 0,
        "duration_s": 300,
        "profile": "contrast-lower-back",
        "area": "lower-back",
        "celsius": 42,
    }
    assert {s["role"] for s in plan["steps"]} == {"heat", "cold", "user"}


def test_show_reads_a_file_and_prints_a_timeline(
    tmp_path: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(CONTRAST)
    assert main(["profiles", "show", str(path), "--pads", "separate"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "My contrast (my-contrast): 24 minutes"
    assert "   -2:00  heat pad: pre-heat at 42 °C" in out
    assert "    2:30  cold pad: pre-cool at 12 °C for 1.5 minutes" in out
    assert "   24:00  end: every device off" in out


def test_show_unknown_name_says_what_exists(config_dir: Path) -> None:
    result = run("profiles", "show", "contrast-lowr-back", env_dir=config_dir)
    assert result.returncode == 1
    assert result.stderr.startswith("relieve: There is no profile called 'contrast-lowr-back'.")
    assert "contrast-lower-back" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_exit_codes_and_one_message_per_problem(tmp_path: Path, config_dir: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(CONTRAST)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        with_value(with_value(CONTRAST, "contrast.cycles", 4), "contrast.cold_celsius", 2)
    )
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\nkind = [\n')

    ok = run("profiles", "validate", str(good), env_dir=config_dir)
    assert ok.returncode == 0
    assert ok.stdout == f"{good}: ok (my-contrast, contrast, 24:00)\n"

    failed = run("profiles", "validate", str(good), str(bad), str(broken), env_dir=config_dir)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{bad}: contrast.cycles = 4: ")
    assert lines[0].endswith("(X1)")
    assert lines[1].startswith(f"{bad}: contrast.cold_celsius = 2: ")
    assert lines[1].endswith("(C4)")
    assert lines[2].startswith(f"{broken}:3:1: this is not valid TOML")
    assert "Traceback" not in failed.stderr


def test_validate_warns_below_the_guidance(tmp_path: Path, config_dir: Path) -> None:
    short = tmp_path / "short.toml"
    short.write_text(
        with_value(with_value(CONTRAST, "contrast.heat_minutes", 2), "contrast.cold_minutes", 2)
    )
    result = run("profiles", "validate", str(short), env_dir=config_dir)
    assert result.returncode == 0
    assert "warning: contrast.heat_minutes = 2: shorter than the 3-5 minute phases" in (
        result.stderr
    )


def test_validate_missing_file(tmp_path: Path, config_dir: Path) -> None:
    result = run("profiles", "validate", str(tmp_path / "nope.toml"), env_dir=config_dir)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{tmp_path / 'nope.toml'}: no such file; check the path"


def test_bad_arguments_are_one_clear_line(config_dir: Path) -> None:
    result = run("profiles", "show", "contrast-lower-back", "--pads", "three", env_dir=config_dir)
    assert result.returncode == 2
    assert "invalid choice: 'three'" in result.stderr
    assert "Traceback" not in result.stderr
