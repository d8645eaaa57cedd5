"""Fault names, and the one table of what each means to a session and to manual control.

A device's ``state.faults`` is a frozenset of fault names: the open profile's status flags
(:func:`drivers.core.watch.flag_fault_names`) and what the host notices itself (a stuck
output, a command not acknowledged, telemetry that stopped). Every name is a :class:`Fault` --
a ``StrEnum``, so ``"lease-expired" in state.faults`` keeps working -- except a status flag
bit this driver does not know, which is named ``fault-bit<n>`` or ``event-bit<n>`` so that a
newer device's report is never dropped.

:data:`FAULT_POLICY` says, for each name, what the session supervisor and ``relieve device``
do about it (:func:`policy_for` also answers for the unknown bits):

* ``priority`` -- the alarm a session raises: ``high`` ends it with every output OFF
  (``aborted``); ``medium`` pauses it with every output OFF (back within the 10 s grace, it
  resumes; longer, the person is asked, and an unattended session ends with a high alarm);
  ``none`` raises no alarm.
* ``stops`` -- whether every output goes OFF on it. Manual control ends its run on exactly
  these; a session with priority ``none`` that stops ends as ``stopped``.
* ``limit_id`` -- the limit it concerns (docs/safety.md), recorded with the alarm.
* ``sentence`` -- what the person is shown, ``{device}`` being the device's name.
* ``seen`` -- when a session takes it as meaning this (:class:`Seen`).

The device's *fault* flags (low byte) mean its output is OFF and START is refused until the
fault clears, so a session cannot go on with it: each is high, the supply fault included.
Its *event* flags (high byte) only say why an output went OFF; they count when the output went
OFF by itself while the session wanted it on.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "FAULT_POLICY",
    "UNKNOWN_EVENT",
    "UNKNOWN_EVENT_PREFIX",
    "UNKNOWN_FAULT",
    "UNKNOWN_FAULT_PREFIX",
    "Fault",
    "FaultPolicy",
    "Priority",
    "Seen",
    "in_table_order",
    "policy_for",
    "stopping_faults",
    "unknown_flag_name",
]


class Fault(enum.StrEnum):
    """Every fault name a driver puts into ``state.faults`` (besides unknown flag bits)."""

    # The open profile's fault flags: the output is OFF and START is refused while one is set.
    OVER_TEMPERATURE = "over-temperature"
    SENSOR_FAULT = "sensor-fault"
    STUCK_OUTPUT = "stuck-output"
    """The device's own flag, or the host's judgement: the output drives on after OFF."""
    SUPPLY_FAULT = "supply-fault"
    OVERLOAD = "overload"
    # The open profile's event flags: why the output went OFF by itself.
    LEASE_EXPIRED = "lease-expired"
    """The device's flag, or the host's own count of a lease it could not renew in time."""
    LINK_LOST = "link-lost"
    RUN_CAP_REACHED = "run-cap-reached"
    LOCAL_STOP = "local-stop"
    # What only the host notices.
    NOT_ACKNOWLEDGED = "not-acknowledged"
    """A lease renewal or a status poll not acknowledged after the retries (S4)."""
    TELEMETRY_STALL = "telemetry-stall"
    """A device that should report telemetry went quiet (the driver's own watchdog)."""
    UNKNOWN_MODE = "unknown-mode"
    """A pad reports an output mode the driver does not know (it is treated as ON)."""


UNKNOWN_FAULT_PREFIX: Final = "fault-bit"
"""Name prefix of a fault flag bit the driver does not know (``fault-bit6``)."""
UNKNOWN_EVENT_PREFIX: Final = "event-bit"
"""Name prefix of an event flag bit the driver does not know (``event-bit13``)."""


def unknown_flag_name(bit: int, *, fault: bool) -> str:
    """The name of status flag ``bit`` when the driver does not know it."""
    return f"{UNKNOWN_FAULT_PREFIX if fault else UNKNOWN_EVENT_PREFIX}{bit}"


Priority = Literal["high", "medium", "none"]
"""The alarm a session raises on a fault (``none``: no alarm)."""


class Seen(enum.StrEnum):
    """When a session takes a fault as meaning what its row says."""

    REPORTED = "reported"
    """Whenever a connected device reports it, whatever the session is doing."""
    STOPPED_BY_ITSELF = "stopped-by-itself"
    """With the output OFF while the session wants it on (not paused): an event flag, which
    otherwise only explains an OFF that relieve asked for or already knows about."""
    LINK = "link"
    """From the link going down, which the supervisor watches itself; the flag is the
    device's account of the OFF, read after the link is back."""
    WATCHDOG = "watchdog"
    """From the session's own telemetry watchdog (no telemetry for 5 s while an output should
    be on); the driver's fault says the same to manual control."""


@dataclass(frozen=True)
class FaultPolicy:
    """What one fault means (see the module)."""

    name: str
    priority: Priority
    stops: bool
    limit_id: str | None
    sentence: str
    """One clause without the full stop; ``{device}`` is the device, ``{fault}`` the name."""
    seen: Seen = Seen.REPORTED
    alarm_reason: str | None = None
    """The session alarm's ``reason`` when it is not the fault's name."""

    @property
    def reason(self) -> str:
        """The ``reason`` of the alarm a session raises."""
        return self.alarm_reason or self.name

    def message(self, device: str, fault: str | None = None) -> str:
        """The sentence for ``device`` (``fault``: the name reported, for unknown bits)."""
        return self.sentence.format(device=device, fault=fault or self.name)


def _row(
    fault: Fault,
    priority: Priority,
    limit_id: str | None,
    sentence: str,
    *,
    seen: Seen = Seen.REPORTED,
    stops: bool = True,
    alarm_reason: str | None = None,
) -> tuple[Fault, FaultPolicy]:
    return fault, FaultPolicy(str(fault), priority, stops, limit_id, sentence, seen, alarm_reason)


FAULT_POLICY: Final[Mapping[Fault, FaultPolicy]] = MappingProxyType(
    dict(
        # In this order a session names the first of several faults reported at once.
        [
            _row(
                Fault.OVER_TEMPERATURE,
                "high",
                "S4",
                "{device} reports over-temperature: it is beyond its own hard limit",
            ),
            _row(
                Fault.SENSOR_FAULT,
                "high",
                "S4",
                "{device} reports a sensor fault: its temperature or speed sensor is missing "
                "or implausible",
            ),
            _row(
                Fault.STUCK_OUTPUT,
                "high",
                "S1",
                "{device} does not turn its output off: it stays on after it was told to turn off",
            ),
            _row(
                Fault.NOT_ACKNOWLEDGED,
                "high",
                "S4",
                "{device} did not acknowledge a command, even when it was sent again; it may "
                "be out of range or hung",
            ),
            _row(
                Fault.SUPPLY_FAULT,
                "high",
                "S4",
                "{device} stopped its output: its battery or power supply is too low; charge "
                "it before the next session",
            ),
            _row(
                Fault.OVERLOAD,
                "high",
                "S4",
                "{device} stopped its output on an overload (a stalled motor or an over-current)",
            ),
            _row(
                Fault.UNKNOWN_MODE,
                "high",
                "S4",
                "{device} reports an output mode relieve does not know, so relieve cannot "
                "tell whether it is on",
            ),
            _row(
                Fault.LEASE_EXPIRED,
                "high",
                "H4",
                "{device} turned itself off: its lease expired, so relieve lost control of it",
                seen=Seen.STOPPED_BY_ITSELF,
            ),
            _row(
                Fault.RUN_CAP_REACHED,
                "high",
                "M1",
                "{device} stopped itself at its own run-time cap, before relieve stopped it",
                seen=Seen.STOPPED_BY_ITSELF,
            ),
            _row(
                Fault.LOCAL_STOP,
                "none",
                None,
                "{device} was switched off at the device",
                seen=Seen.STOPPED_BY_ITSELF,
            ),
            _row(Fault.LINK_LOST, "medium", "S2", "Lost the link to {device}", seen=Seen.LINK),
            _row(
                Fault.TELEMETRY_STALL,
                "medium",
                "S2",
                "No telemetry from {device} for more than 5 s",
                seen=Seen.WATCHDOG,
                alarm_reason="telemetry-stalled",
            ),
        ]
    )
)
"""What each fault means (see the module); every :class:`Fault` has its row."""

UNKNOWN_FAULT: Final = FaultPolicy(
    UNKNOWN_FAULT_PREFIX,
    "high",
    True,
    "S4",
    "{device} reports a fault relieve does not know ({fault})",
)
"""A fault flag bit the driver does not know (``fault-bit<n>``), or any other unknown name:
the output is OFF and START is refused, as for every fault flag."""
UNKNOWN_EVENT: Final = FaultPolicy(
    UNKNOWN_EVENT_PREFIX,
    "high",
    True,
    "S4",
    "{device} turned its output off for a reason relieve does not know ({fault})",
    Seen.STOPPED_BY_ITSELF,
)
"""An event flag bit the driver does not know (``event-bit<n>``)."""

_ORDER: Final = {name: index for index, name in enumerate(FAULT_POLICY)}


def policy_for(name: str) -> FaultPolicy:
    """The row for fault ``name``; a name no row has counts as an unknown fault (or event)."""
    try:
        return FAULT_POLICY[Fault(name)]
    except ValueError:
        return UNKNOWN_EVENT if name.startswith(UNKNOWN_EVENT_PREFIX) else UNKNOWN_FAULT


def _rank(name: str) -> tuple[int, str]:
    try:
        return _ORDER[Fault(name)], name
    except ValueError:
        return len(_ORDER), name


def stopping_faults(faults: Iterable[str]) -> list[str]:
    """The names in ``faults`` on which every output goes OFF, in the table's order."""
    return sorted((name for name in faults if policy_for(name).stops), key=_rank)


def in_table_order(faults: Iterable[str]) -> list[str]:
    """``faults`` in the table's order (unknown names last, by name)."""
    return sorted(faults, key=_rank)
