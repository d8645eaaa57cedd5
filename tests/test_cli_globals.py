"""``relieve --version``, and the global options before or after the command.

``relieve run X --data-dir D`` means ``relieve --data-dir D run X``; given in both places, the one
after the command wins. Sessions run in this process on simulated devices (x600), each test with
its own data and configuration directories.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pytest

from controller.cli import main
from controller.cli.commands import build_parser
from controller.ledger import Ledger
from tests.profile_texts import CONTRAST, with_value
from tests.session_harness import HEAT_MINUTE

ROOT = Path(__file__).resolve().parent.parent
RELIEVE = str(Path(sys.executable).parent / "relieve")
HEAT_PAD = "C0:DE:00:00:00:02"
PROBE = "C0:DE:00:00:00:07"


# A command line of each command (and of each level of the nested ones).
COMMANDS = (
    ["demo"],
    ["profiles", "list"],
    ["profiles", "show", "my-contrast"],
    ["history"],
    ["injury", "add", "--area", "lower-back"],
    ["scan", "--simulate"],
    ["device", "info", HEAT_PAD],
    ["run", "heat-minute", "--simulate"],
    ["sim", "list"],
)


def _globals(tmp_path: Path) -> tuple[list[str], tuple[Path, Path, int]]:
    config, data = tmp_path / "config", tmp_path / "data"
    return ["--config-dir", str(config), "--data-dir", str(data), "-vv"], (config, data, 2)


def _parsed(argv: list[str]) -> tuple[Path | None, Path | None, int]:
    args = build_parser().parse_args(argv)
    return args.config_dir, args.data_dir, args.verbose


# --- --version ------------------------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"relieve {metadata.version('relieve')}\n"


def test_version_falls_back_to_pyproject(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"relieve {declared['project']['version']}\n"


def test_version_from_the_console_script() -> None:
    result = subprocess.run(
        [RELIEVE, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout == f"relieve {metadata.version('relieve')}\n"


# --- global options: parsed the same before and after the command -----------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_global_options_parse_the_same_before_and_after_the_command(
    command: list[str], tmp_path: Path
) -> None:
    options, expected = _globals(tmp_path)
    assert _parsed([*options, *command]) == expected
    assert _parsed([*command, *options]) == expected
    assert _parsed(command) == (None, None, 0)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_global_option_after_the_command_wins(command: list[str], tmp_path: Path) -> None:
    before = ["--config-dir", str(tmp_path / "a"), "--data-dir", str(tmp_path / "b"), "-vvv"]
    after = ["--config-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d"), "-v"]
    assert _parsed([*before, *command, *after]) == (tmp_path / "c", tmp_path / "d", 1)
    # only some of them after: the others keep what was given before
    assert _parsed([*before, *command, "--data-dir", str(tmp_path / "d")]) == (
        tmp_path / "a",
        tmp_path / "d",
        3,
    )


def test_a_nested_command_takes_them_at_every_level(tmp_path: Path) -> None:
    config = tmp_path / "config"
    assert _parsed(["profiles", "--config-dir", str(config), "list"])[0] == config
    assert _parsed(["profiles", "list", "--config-dir", str(config)])[0] == config
    assert _parsed(["profiles", "--config-dir", "x", "list", "--config-dir", str(config)]) == (
        config,
        None,
        0,
    )


# --- ... and the commands do the same with them -------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(data dir, config dir with a user profile); the environment points elsewhere."""
    data, config = tmp_path / "data", tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "profiles" / "my-contrast.toml").write_text(CONTRAST, encoding="utf-8")
    (config / "profiles" / "heat-minute.toml").write_text(HEAT_MINUTE, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "profiles").mkdir(parents=True)
    monkeypatch.setenv("RELIEVE_CONFIG_DIR", str(elsewhere))
    monkeypatch.setenv("RELIEVE_DATA_DIR", str(elsewhere / "data"))
    return data, config


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _profile_names(out: str) -> set[str]:
    return {profile["name"] for profile in json.loads(out)}


def test_profiles_list_is_the_same_with_the_config_dir_before_or_after(
    dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = dirs
    before = _main(capsys, "--config-dir", str(config), "profiles", "list", "--json")
    after = _main(capsys, "profiles", "list", "--json", "--config-dir", str(config))
    assert before == after
    assert before[0] == 0
    assert "my-contrast" in _profile_names(before[1])
    # without it, the environment's (empty) directory
    assert "my-contrast" not in _profile_names(_main(capsys, "profiles", "list", "--json")[1])


def test_profiles_list_takes_the_config_dir_after_the_command_when_both_are_given(
    dirs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = dirs
    other = tmp_path / "other"
    (other / "profiles").mkdir(parents=True)
    mine = with_value(CONTRAST, "name", "other-contrast")
    (other / "profiles" / "other-contrast.toml").write_text(mine, encoding="utf-8")
    code, out = _main(
        capsys,
        "--config-dir",
        str(config),
        "profiles",
        "list",
        "--json",
        "--config-dir",
        str(other),
    )
    assert code == 0
    names = _profile_names(out)
    assert "other-contrast" in names
    assert "my-contrast" not in names


# The one-minute heat profile (found by name only in the config dir of `dirs`) on the simulated
# heat pad, at x600.
RUN = ["run", "heat-minute", "--simulate", "--speed", "600", "--yes", "--json"]
RUN += ["--heat", HEAT_PAD, "--probe", PROBE]


def _run(
    capsys: pytest.CaptureFixture[str], before: Sequence[str] = (), after: Sequence[str] = ()
) -> list[str]:
    """``relieve [before] run ... [after]``: its phases and outcome (telemetry varies in number)."""
    code, out = _main(capsys, *before, *RUN, *after)
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines()]
    phases = [str(e["mode"]) for e in events if e["type"] == "phase"]
    return [*phases, str(events[-1]["outcome"])]


def _sessions(data: Path) -> int:
    with Ledger.open(data, simulated=True) as ledger:
        return len(ledger.sessions())


def test_run_and_history_are_the_same_with_the_dirs_before_or_after(
    dirs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, config = dirs
    other = tmp_path / "data-2"
    before = _run(capsys, before=["--data-dir", str(data), "--config-dir", str(config)])
    after = _run(capsys, after=["--data-dir", str(other), "--config-dir", str(config)])
    assert before == after == ["preheat", "heat", "off", "completed"]
    assert _sessions(data) == _sessions(other) == 1

    history_before = _main(capsys, "--data-dir", str(data), "history", "--simulated", "--json")
    history_after = _main(capsys, "history", "--simulated", "--json", "--data-dir", str(data))
    assert history_before == history_after
    assert history_before[0] == 0
    assert [s["profile"] for s in json.loads(history_before[1])] == ["heat-minute"]


def test_run_records_in_the_data_dir_after_the_command_when_both_are_given(
    dirs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, config = dirs
    ignored = tmp_path / "ignored"
    events = _run(
        capsys,
        before=["--data-dir", str(ignored)],
        after=["--data-dir", str(data), "--config-dir", str(config)],
    )
    assert events[-1] == "completed"
    assert _sessions(data) == 1
    assert not ignored.exists()
