"""A key or value that carries a newline (or another unprintable character) never breaks a
refusal into two lines: it is shown escaped. Found by benchmarks/fuzz.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.daemon.protocol import ProtocolError, decode_request
from controller.library import load_file
from controller.mqtt.config import ConfigError, load_config
from controller.mqtt.topics import CommandError, decode_command
from profiles.errors import ProfileError, printable


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
