"""benchmarks/soak.py: a short soak through the session service, and proof its checks bite."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks import soak
from controller.ledger import Ledger


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = soak.main([*args, "--json", "--no-tracemalloc"])
    return status, json.loads(out.getvalue())


def test_a_short_soak_runs_judges_and_records_every_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # one morning, a fault in every session that has a device (seed 5: the contrast aborts on
    # a drifting skin sensor, the massage rides out a link blip; about a second and a half)
    status, results = _run(
        "--days", "1", "--until", "08:45", "--fault-every", "1", "--seed", "5",
        "--ledger-dir", str(data),
    )  # fmt: skip
    assert results["problems"] == []
    assert status == 0
    attempts = results["attempts"]
    assert [a["at"][:5] for a in attempts] == ["07:00", "07:30", "08:05", "08:10", "08:15", "08:40"]
    ran = [a for a in attempts if a["result"] != "refused"]
    refused = [a for a in attempts if a["result"] == "refused"]
    assert len(ran) >= 3
    assert refused
    # every refusal carries its rule ids, its main rule among them
    assert all(a["rule"] in a["rules"] and set(a["rules"]) <= set(soak.RULES) for a in refused)
    assert any(a["rule"] == "M1" for a in refused)  # the extension a second time that morning
    # the sessions with a device got a fault, and each ended as that fault must end it
    faulty = [a for a in ran if a["fault_outcome"] is not None]
    assert {a["result"] for a in faulty} == {"completed", "aborted"}
    assert all(a["result"] == a["fault_outcome"] for a in faulty)
    # the figures are there
    day = results["per_day"][0]
    assert day["ran"] == len(ran)
    assert sum(day["refused"].values()) == len(refused)
    assert day["ledger_bytes"] > 0
    assert day["rss_bytes"] > 0
    assert results["memory"]["peak_rss_bytes"] >= day["rss_bytes"]
    assert set(results["queries"]) >= {"Ledger.sessions()", "relieve history --json"}
    assert all(q["p50_ms"] > 0 for q in results["queries"].values())
    # the ledger on disk holds exactly the sessions that ran, with their outcomes
    with Ledger.open(data, simulated=True) as ledger:
        recorded = [(s.profile, s.outcome) for s in reversed(ledger.sessions())]
    assert recorded == [(a["profile"], a["result"]) for a in ran]
    assert results["ledger"]["sessions"] == len(ran)


def test_a_refusal_by_a_rule_the_soak_did_not_expect_fails_it(tmp_path: Path) -> None:
    # Another relieve on the same data directory recorded an injury on the lower back at 06:00
    # that the soak knows nothing of: at 07:30 relieve refuses the first contrast for H6,
    # where the soak expects it to run.
    data = tmp_path / "data"
    with Ledger.open(data, simulated=True, tz=soak.TZ) as ledger:
        ledger.add_injury("lower-back", soak.START + timedelta(hours=6))
    status, results = _run(
        "--days", "1", "--until", "07:30", "--fault-every", "0", "--ledger-dir", str(data)
    )
    assert status == 1
    assert not results["passed"]
    contrast = results["attempts"][-1]
    assert (contrast["at"], contrast["profile"]) == ("07:30:00", "contrast-lower-back")
    assert (contrast["result"], contrast["rule"], contrast["expected"]) == ("refused", "H6", [])
    assert contrast["problems"] == ["refused by H6, which must not refuse it"]
    assert results["problems"] == [
        "day 1 07:30:00 contrast-lower-back: refused by H6, which must not refuse it"
    ]


def test_the_judge_flags_a_refusal_that_names_the_wrong_rule_first() -> None:
    # 08:10 on day 1: the second contrast is refused by H5 (until 09:30) and C2 (until 08:38);
    # the refusal must name H5, the rule that allows it last
    now = soak.START + timedelta(hours=8, minutes=10)
    checks = [
        soak.RuleCheck("H5", refuses=True, sure=True, earliest=now + timedelta(minutes=80)),
        soak.RuleCheck("C2", refuses=True, sure=True, earliest=now + timedelta(minutes=28)),
        soak.RuleCheck("M1", refuses=False, sure=True, earliest=None),
    ]
    both = frozenset({"H5", "C2"})
    assert soak.judge(checks, ("H5", both)) == []
    assert soak.judge(checks, ("C2", both)) == ["names C2 first, expected H5"]
    assert soak.judge(checks, ("H5", frozenset({"H5"}))) == ["C2 must refuse it too"]
    assert soak.judge(checks, ("M1", frozenset({"M1", *both}))) == [
        "refused by M1, which must not refuse it",
        "names M1 first, expected H5",
    ]


def test_the_judge_flags_a_session_that_ran_but_must_be_refused() -> None:
    now = soak.START + timedelta(hours=9)
    checks = [
        soak.RuleCheck("M4", refuses=True, sure=True, earliest=now + timedelta(hours=15)),
        soak.RuleCheck("C2", refuses=False, sure=True, earliest=now - timedelta(hours=1)),
    ]
    assert soak.judge(checks, None) == ["ran, but M4 must refuse it"]
    assert soak.judge(checks, ("M4", frozenset({"M4"}))) == []
    # near a boundary either answer passes
    close = [soak.RuleCheck("C2", refuses=True, sure=False, earliest=now + timedelta(seconds=30))]
    assert soak.judge(close, None) == []
    assert soak.judge(close, ("C2", frozenset({"C2"}))) == []


def test_memory_that_grows_beyond_the_noise_fails() -> None:
    first = soak.DayFigures(1, "Mon 07 Dec", rss_bytes=70 << 20, traced_bytes=3 << 20, fds=12)
    steady = soak.DayFigures(7, "Sun 13 Dec", rss_bytes=71 << 20, traced_bytes=3 << 20, fds=12)
    leaking = soak.DayFigures(7, "Sun 13 Dec", rss_bytes=71 << 20, traced_bytes=9 << 20, fds=19)
    assert soak.memory_summary([first, steady], None)["problems"] == []
    problems = soak.memory_summary([first, leaking], None)["problems"]
    assert [p.split(" grew")[0] for p in problems] == ["traced_bytes", "fds"]
