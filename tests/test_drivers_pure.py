"""The pure parts of the drivers: fault names, stuck-output judgement, limit guards, and the
lease keeper on a virtual clock (no radio)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from drivers.codecs import open_profile as op
from drivers.core.base import DeviceError, DeviceTimeoutError, OutOfRangeError
from drivers.core.clock import VirtualClock
from drivers.core.guards import check_cool, check_heat, check_lease_s, check_rpm, check_run_cap_s
from drivers.core.lease import LeaseKeeper
from drivers.core.polling import Reply, request
from drivers.core.watch import EVENT_NAMES, StuckOutputDetector, flag_fault_names, stalled


def test_status_flags_become_fault_names_and_unknown_bits_are_kept() -> None:
    flags = op.StatusFlags.STUCK_OUTPUT | op.StatusFlags.LEASE_EXPIRED | op.StatusFlags(0x0040)
    assert flag_fault_names(flags) == {"stuck-output", "lease-expired", "fault-bit6"}
    assert flag_fault_names(op.NO_FLAGS) == frozenset()
    assert {"lease-expired", "link-lost", "run-cap-reached", "local-stop"} <= EVENT_NAMES
    assert "over-temperature" not in EVENT_NAMES


def test_a_plate_rising_above_body_temperature_after_heat_off_is_stuck() -> None:
    detector = StuckOutputDetector()
    detector.switched_off("heat", 40.0)
    assert not detector.plate(39.8)
    assert not detector.plate(40.5)  # 0.7 °C above the lowest reading since OFF
    assert detector.plate(40.9)


def test_a_plate_warming_back_to_skin_after_heat_off_is_not_stuck() -> None:
    detector = StuckOutputDetector()
    detector.switched_off("heat", 20.0)  # stopped early, well below body temperature
    assert not any(detector.plate(t) for t in (21.0, 25.0, 30.0, 33.0))


def test_a_plate_still_cooling_after_cold_off_is_stuck_and_starting_again_resets() -> None:
    detector = StuckOutputDetector()
    detector.switched_off("cold", 12.0)
    assert not detector.plate(11.5)
    assert detector.plate(10.9)
    detector.switched_on()
    assert not detector.watching
    assert not detector.plate(5.0)


def test_telemetry_is_stalled_only_after_the_limit() -> None:
    assert not stalled(None, 100.0)
    assert not stalled(95.0, 100.0)
    assert stalled(94.9, 100.0)


@pytest.mark.parametrize(
    ("check", "limit_id"),
    [
        (lambda: check_heat(45.5, (30.0, 50.0), label="pad"), "H1"),
        (lambda: check_heat(44.0, (30.0, 43.0), label="pad"), None),
        (lambda: check_heat(40.0, None, label="pad"), None),
        (lambda: check_cool(4.9, (0.0, 25.0), label="pad"), "C4"),
        (lambda: check_cool(30.0, (5.0, 25.0), label="pad"), None),
        (lambda: check_lease_s(5.5), "H4"),
        (lambda: check_lease_s(0.0), None),
        (lambda: check_rpm(3300, 1200, 3200, label="gun"), None),
        (lambda: check_run_cap_s(1081.0), "M1"),
        (lambda: check_heat(float("nan"), (30.0, 45.0), label="pad"), None),
    ],
)
def test_guards_refuse_with_the_limit_id(check: Callable[[], object], limit_id: str | None) -> None:
    with pytest.raises(OutOfRangeError) as refused:
        check()
    assert refused.value.limit_id == limit_id
    assert str(refused.value).endswith(".")


def test_guards_let_values_inside_limits_through() -> None:
    check_heat(45.0, (30.0, 45.0), label="pad")
    check_cool(5.0, (5.0, 25.0), label="pad")
    assert check_lease_s(5.0) == 5000
    check_rpm(1200, 1200, 3200, label="gun")
    check_run_cap_s(1080.0)


async def test_the_lease_keeper_renews_every_second_on_the_clock() -> None:
    clock = VirtualClock()
    renewals: list[float] = []

    async def renew() -> None:
        renewals.append(clock.now())

    failures: list[DeviceError] = []
    keeper = LeaseKeeper(clock=clock, renew=renew, on_failure=failures.append, label="pad")
    keeper.start()
    await clock.advance(5.5)
    await keeper.stop()
    await clock.advance(5)

    assert renewals == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert not failures
    assert not keeper.running


async def test_the_lease_keeper_reports_the_first_failed_renewal_and_stops() -> None:
    clock = VirtualClock()
    failures: list[DeviceError] = []
    calls = [0]

    async def renew() -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise DeviceTimeoutError("no answer")

    keeper = LeaseKeeper(clock=clock, renew=renew, on_failure=failures.append, label="pad")
    keeper.start()
    await clock.advance(10)

    assert calls[0] == 2
    assert [str(f) for f in failures] == ["no answer"]
    assert not keeper.running


async def test_a_request_unanswered_after_two_retries_times_out() -> None:
    reply: Reply[int] = Reply()
    sent = [0]

    async def send() -> None:
        sent[0] += 1

    with pytest.raises(DeviceTimeoutError, match="after 2 retries"):
        await request(reply, send, what="status", label="gun", address="A", timeout_s=0.01)
    assert sent[0] == 3

    async def answered() -> None:
        asyncio.get_running_loop().call_soon(reply.resolve, 7)

    assert await request(reply, answered, what="status", label="gun", address="A") == 7
