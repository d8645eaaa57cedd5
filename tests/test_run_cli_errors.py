"""`relieve run` refuses bad requests with one sentence, before anything is asked or switched on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RELIEVE = str(Path(sys.executable).parent / "relieve")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "nope"], "There is no profile called 'nope'."),
        (["run", "contrast-quick", "--speed", "60"], "--speed runs time faster and is only for"),
        (["run", "contrast-quick", "--simulate", "--speed", "0", "--yes"], "--speed must be"),
        (
            ["run", "contrast-quick", "--simulate", "--override-allowance", "H9", "--yes"],
            "H9 cannot be overridden",
        ),
        (
            ["run", "contrast-quick", "--simulate", "--probe", "manual", "--yes"],
            "a probe cannot be manual",
        ),
        (
            ["run", "contrast-quick", "--simulator", "unix:/nonexistent/sim.sock", "--yes"],
            "Cannot reach the simulator",
        ),
    ],
)
def test_bad_requests_are_one_sentence(tmp_path: Path, args: list[str], expected: str) -> None:
    env = {**os.environ, "RELIEVE_CONFIG_DIR": str(tmp_path / "config")}
    result = subprocess.run(
        [RELIEVE, "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("relieve: ")
    assert expected in lines[0]
    assert result.stdout == ""
