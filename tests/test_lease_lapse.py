"""A lease that ran out on the host's own clock is never renewed (drivers.core.lease)."""

from __future__ import annotations

from drivers.core.base import DeviceError
from drivers.core.clock import VirtualClock
from drivers.core.lease import LeaseKeeper, LeaseLapsedError


def _keeper(clock: VirtualClock) -> tuple[LeaseKeeper, list[float], list[DeviceError]]:
    renewals: list[float] = []
    failures: list[DeviceError] = []

    async def renew() -> None:
        renewals.append(clock.now())

    keeper = LeaseKeeper(clock=clock, renew=renew, on_failure=failures.append, label="pad")
    return keeper, renewals, failures


async def test_a_keeper_frozen_past_the_lease_does_not_renew_and_says_why() -> None:
    clock = VirtualClock()
    keeper, renewals, failures = _keeper(clock)
    keeper.start(lease_s=3.0, granted_at=0.0)
    await clock.advance(2.5)
    assert renewals == [1.0, 2.0]
    assert keeper.runs_out_at == 5.0  # the last renewal was sent at 2.0
    clock.jump(4.0)  # the host did not run from 2.5 to 6.5: the lease ran out at 5.0
    await clock.advance(3)
    assert renewals == [1.0, 2.0]
    assert len(failures) == 1
    assert isinstance(failures[0], LeaseLapsedError)
    assert "ran out 1.5 s before" in str(failures[0])
    assert not keeper.running


async def test_a_keeper_late_but_within_the_lease_renews() -> None:
    clock = VirtualClock()
    keeper, renewals, failures = _keeper(clock)
    keeper.start(lease_s=3.0, granted_at=0.0)
    await clock.advance(1.5)
    clock.jump(2.0)  # from 1.5 to 3.5: the lease (until 4.0) still runs
    await clock.advance(1)
    assert renewals == [1.0, 3.5, 4.5]
    assert not failures
    await keeper.stop()


async def test_a_new_start_takes_the_new_lease() -> None:
    clock = VirtualClock()
    keeper, _, failures = _keeper(clock)
    keeper.start(lease_s=3.0, granted_at=0.0)
    await clock.advance(0.5)
    keeper.start(lease_s=1.0, granted_at=0.5)  # e.g. a pad that grants at most 1 s
    assert keeper.runs_out_at == 1.5
    await keeper.stop()
    assert not failures
