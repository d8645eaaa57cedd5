"""benchmarks/fuzz.py: a small run over every interface, and proof its detector catches failures."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import strategies as st

from profiles.errors import RelieveError

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz.py"
EXAMPLES = 50


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relieve_fuzz_bench", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _load()


class _TypedError(RelieveError):
    pass


def _interface(call: object) -> object:
    return fuzz.Interface("bad", st.binary(max_size=8), call, (_TypedError,))


def test_a_small_run_covers_every_interface_without_failures() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = fuzz.main(["--examples", str(EXAMPLES), "--json"])
    results = json.loads(out.getvalue())
    assert [r["name"] for r in results] == list(fuzz.INTERFACES)
    failing = {r["name"]: (r["first_input"], r["first_error"]) for r in results if r["failures"]}
    assert failing == {}
    assert all(r["examples"] == EXAMPLES for r in results)
    assert all(r["accepted"] + r["rejected"] == EXAMPLES for r in results)
    assert status == 0


def _raises_key_error(data: bytes) -> None:
    raise KeyError(data)


def _two_line_message(data: bytes) -> None:
    raise _TypedError("first line\nsecond line")


def _empty_message(data: bytes) -> None:
    raise _TypedError("")


def _wrong_accept(data: bytes) -> None:
    raise fuzz.UnacceptedError("plan over H2")


@pytest.mark.parametrize(
    "bad", [_raises_key_error, _two_line_message, _empty_message, _wrong_accept]
)
def test_the_detector_catches_a_bad_function(bad: object) -> None:
    kind, detail = fuzz.judge(_interface(bad), b"x")
    assert kind == "failure"
    assert detail
    result = fuzz.fuzz(_interface(bad), 20, 0)
    assert result.failures == result.examples == 20
    assert result.first_input is not None
    assert result.first_error is not None


def test_the_detector_passes_a_clean_function() -> None:
    def clean(data: bytes) -> None:
        if data[:1] == b"\x00":
            raise _TypedError("starts with a zero byte; send something else")

    assert fuzz.judge(_interface(clean), b"\x00")[0] == "rejected"
    assert fuzz.judge(_interface(clean), b"a")[0] == "accepted"
    result = fuzz.fuzz(_interface(clean), 20, 0)
    assert result.failures == 0
    assert result.examples == 20


def test_a_failure_makes_the_exit_status_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fuzz.INTERFACES, "daemon-request", lambda: _interface(_raises_key_error))
    with contextlib.redirect_stdout(io.StringIO()):
        assert fuzz.main(["--examples", "5", "--interface", "daemon-request"]) == 1
