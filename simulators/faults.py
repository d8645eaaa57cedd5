"""Fault injection: what can go wrong with a simulated device, when, and for how long.

Faults are described by small pydantic models (one per :class:`FaultKind`), written either in
test code (``device.inject(StuckHeater(at=60))``) or in a TOML scenario file::

    [[fault]]
    device = "contrast-pad"
    kind = "disconnect"
    at = 120.0

Times are seconds of *clock* time (the world's injected Clock) counted from the moment the
fault is injected; for a scenario, from the moment it is applied to the world (normally when
the world starts). A :class:`FaultBook` holds one device's scheduled faults and answers the
questions a device asks while it runs ("is my heater stuck now?", "drop this notification?").
It is pure: it takes ``now`` as an argument and never sleeps.
"""

from __future__ import annotations

import math
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from profiles.errors import printable
from simulators.catalog import DeviceFamily, FaultKind, SimulatorError, device_keys, spec_for

__all__ = [
    "UNANSWERED_HOLD_S",
    "AttErrorFault",
    "BatteryDies",
    "DelayNotifications",
    "DeviceSetup",
    "Disconnect",
    "DropNotifications",
    "FaultBook",
    "FaultKind",
    "FaultNotSupportedError",
    "FaultSpec",
    "LinkLatency",
    "RefuseConnections",
    "Scenario",
    "ScenarioError",
    "ScheduledFault",
    "SensorDrift",
    "SensorNan",
    "StuckHeater",
    "UnlatchedLease",
    "load_scenario",
    "parse_scenario",
]

# ATT "Unlikely Error" (Core Spec Vol 3 Part F 3.4.1.1): what a device answers when something
# went wrong inside it; the default code of an injected ATT error.
ATT_UNLIKELY_ERROR = 0x0E
# The BLE minimum connection interval, 7.5 ms: a realistic per-packet link latency.
BLE_MIN_CONNECTION_INTERVAL_S = 0.0075
# Longest per-packet latency a scenario may ask for: beyond 2 s every BLE time-out trips.
MAX_LINK_LATENCY_S = 2.0
# Real seconds a write left unanswered (AttErrorFault(unanswered=True)) holds a virtual clock
# (less when the link ends first): longer than a command and its two retries take with the
# short command time-outs tests give the drivers; short enough not to stall a test for long.
# A central that waits longer (the drivers' 5 s per attempt) sees therapy time run on meanwhile.
UNANSWERED_HOLD_S = 2.0


class ScenarioError(SimulatorError):
    """A fault scenario that cannot be used (bad TOML, unknown key, wrong value)."""


class FaultNotSupportedError(SimulatorError):
    """A fault given to a device that cannot have it (e.g. a stuck heater on a massage gun)."""


# --- fault descriptions ----------------------------------------------------------------------


def _known_key(key: str) -> None:
    if key not in device_keys():
        raise ValueError(f"unknown device {key!r}; use one of: {', '.join(device_keys())}")


class _Fault(BaseModel):
    """Fields every fault has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str | None = Field(
        default=None, description="Device key; required in a scenario file, optional in code."
    )
    at: float = Field(
        default=0.0, ge=0.0, allow_inf_nan=False, description="Clock seconds after injection."
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str | None) -> str | None:
        if device is not None:
            _known_key(device)
        return device

    @model_validator(mode="after")
    def _supported(self) -> Self:
        kind = getattr(self, "kind", None)
        if (
            self.device is not None
            and kind is not None
            and not spec_for(self.device).supports(FaultKind(kind))
        ):
            raise ValueError(f"the {self.device} simulator cannot have a {kind} fault")
        return self


class _Lasting(_Fault):
    """A fault that lasts a while (``duration`` seconds, or until the world stops)."""

    duration: float | None = Field(
        default=None, gt=0.0, allow_inf_nan=False, description="Clock seconds; none = forever."
    )


class Disconnect(_Fault):
    """The device drops its link at ``at`` (as if it went out of range for a moment)."""

    kind: Literal["disconnect"] = "disconnect"


class RefuseConnections(_Lasting):
    """For ``duration`` s the device refuses connections.

    Default: it keeps advertising but drops every incoming connection at once (a busy
    device); with ``hide = true`` it stops advertising instead (out of range). A link that is
    up when the fault starts is dropped too.
    """

    kind: Literal["refuse_connections"] = "refuse_connections"
    duration: float = Field(gt=0.0, allow_inf_nan=False, description="Clock seconds.")
    hide: bool = False


class DropNotifications(_Lasting):
    """Notifications and indications are lost (each with ``probability``, seeded)."""

    kind: Literal["drop_notifications"] = "drop_notifications"
    probability: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0


class DelayNotifications(_Lasting):
    """Notifications and indications arrive ``delay`` clock seconds late."""

    kind: Literal["delay_notifications"] = "delay_notifications"
    delay: float = Field(gt=0.0, allow_inf_nan=False, description="Clock seconds.")


class AttErrorFault(_Fault):
    """The next ``count`` writes (from ``at``) are answered with ATT error ``code``.

    With ``unanswered = true`` they are not answered at all: the write never reaches the
    firmware and neither a response nor an error comes back, so the central's command time-out
    runs out -- a command not acknowledged. ATT allows one request at a time on a link, so the
    central's retries, and every request after them, wait behind the unanswered one: the device
    is out of reach until the link ends (or the central's 30 s ATT time-out). A lease device
    turns itself OFF when its lease runs out; a host-timed one keeps running. The central's
    time-out is real time: on a virtual clock the world's time stands still after such a write
    for up to :data:`UNANSWERED_HOLD_S` real seconds, as a few seconds of radio time would not
    let minutes of therapy time pass.
    """

    kind: Literal["att_error"] = "att_error"
    count: int = Field(default=1, ge=1)
    code: int = Field(default=ATT_UNLIKELY_ERROR, ge=0x01, le=0xFF)
    unanswered: bool = Field(
        default=False, description="No answer at all (the central times out), not an error."
    )


class StuckHeater(_Lasting):
    """The output ignores OFF and lease expiry: a heater keeps heating, a Peltier keeps cooling.

    The device still *reports* what it was told (mode OFF). An open-profile device senses
    the current and latches its STUCK_OUTPUT flag, unless ``silent = true`` (a device without
    current sensing): then only the temperature tells, and the host must notice.
    """

    kind: Literal["stuck_heater"] = "stuck_heater"
    silent: bool = False


class SensorNan(_Lasting):
    """The temperature sensor reads nothing (NaN / "not known")."""

    kind: Literal["sensor_nan"] = "sensor_nan"


class SensorDrift(_Lasting):
    """The temperature sensor drifts by ``rate`` degC per minute from ``at`` on."""

    kind: Literal["sensor_drift"] = "sensor_drift"
    rate: float = Field(allow_inf_nan=False, description="degC per minute, either sign.")

    @model_validator(mode="after")
    def _nonzero(self) -> SensorDrift:
        if self.rate == 0:
            raise ValueError("a sensor drift needs a non-zero rate (degC per minute)")
        return self


class BatteryDies(_Fault):
    """The battery is empty at ``at``: the output stops, the link drops, advertising ends."""

    kind: Literal["battery_dies"] = "battery_dies"


class LinkLatency(_Lasting):
    """Every ATT packet to and from the device is held ``latency`` real seconds.

    Link latency is radio time, not therapy time, so it is real time even on a scaled or
    virtual clock; ``at``/``duration`` still count clock time. 0.0075 s models the BLE
    minimum connection interval.
    """

    kind: Literal["link_latency"] = "link_latency"
    latency: float = Field(
        default=BLE_MIN_CONNECTION_INTERVAL_S, ge=0.0, le=MAX_LINK_LATENCY_S, allow_inf_nan=False
    )


class UnlatchedLease(_Lasting):
    """A lease that runs out turns the output OFF but does not latch LEASE_EXPIRED.

    An open-profile device whose firmware forgets the flag (docs/gatt-profile.md asks for it):
    its State then says only "OFF", as after a plain OFF, and a host that relies on the flag
    never learns that its lease ran out. Link loss still latches LINK_LOST.
    """

    kind: Literal["unlatched_lease"] = "unlatched_lease"


FaultSpec = Annotated[
    Disconnect
    | RefuseConnections
    | DropNotifications
    | DelayNotifications
    | AttErrorFault
    | StuckHeater
    | SensorNan
    | SensorDrift
    | BatteryDies
    | LinkLatency
    | UnlatchedLease,
    Field(discriminator="kind"),
]
"""Any one fault description."""


def check_supported(device_key: str, fault: FaultSpec) -> None:
    """Raise FaultNotSupportedError unless the catalog says ``device_key`` can have ``fault``."""
    spec = spec_for(device_key)
    kind = FaultKind(fault.kind)
    if not spec.supports(kind):
        allowed = ", ".join(sorted(str(k) for k in spec.faults))
        raise FaultNotSupportedError(
            f"The {device_key} simulator cannot have a {kind} fault; it supports: {allowed}."
        )


# --- scenario files -----------------------------------------------------------------------


class DeviceSetup(BaseModel):
    """Initial settings of one device in a scenario (``[[device]]`` tables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    battery: float | None = Field(default=None, ge=0.0, le=100.0, allow_inf_nan=False)
    placed_under: str | None = Field(
        default=None, description="skin-probe only: the key of the thermal pad it lies under."
    )

    @model_validator(mode="after")
    def _check(self) -> DeviceSetup:
        _known_key(self.key)
        if self.placed_under is not None:
            if spec_for(self.key).family is not DeviceFamily.SKIN_PROBE:
                raise ValueError(f"only a skin probe can be placed under a pad, not {self.key}")
            _known_key(self.placed_under)
            if spec_for(self.placed_under).family not in _PAD_FAMILIES:
                raise ValueError(f"{self.placed_under} is not a thermal pad a probe can lie under")
        return self


_PAD_FAMILIES = frozenset({DeviceFamily.OPEN_THERMAL, DeviceFamily.HEATING_MAT})


def _names_its_device(fault: FaultSpec) -> FaultSpec:
    if fault.device is None:
        raise ValueError(
            f'a {fault.kind} fault in a scenario must name its device (device = "...")'
        )
    return fault


class Scenario(BaseModel):
    """A fault scenario: optional device set-up and a list of faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    device: tuple[DeviceSetup, ...] = ()
    fault: tuple[Annotated[FaultSpec, AfterValidator(_names_its_device)], ...] = ()


_FAULT_HEADER = re.compile(r"^\s*\[\[\s*fault\s*\]\]")
_DEVICE_HEADER = re.compile(r"^\s*\[\[\s*device\s*\]\]")


def _table_lines(text: str, header: re.Pattern[str]) -> list[int]:
    """1-based line numbers of each ``[[table]]`` header, in order."""
    return [number for number, line in enumerate(text.splitlines(), 1) if header.match(line)]


def _describe(exc: ValidationError, text: str, source: str) -> str:
    """Each problem, where (file, line, table, field) and what, joined into one line: a key or
    value that holds a newline (pydantic's message may repeat the input) is shown escaped."""
    tables = {
        "fault": _table_lines(text, _FAULT_HEADER),
        "device": _table_lines(text, _DEVICE_HEADER),
    }
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        where = source
        if len(loc) >= 2 and loc[0] in tables and isinstance(loc[1], int):
            table, index = str(loc[0]), loc[1]
            lines = tables[table]
            line = f" line {lines[index]}" if index < len(lines) else ""
            where = f"{source}{line} ([[{table}]] #{index + 1})"
            # Drop the discriminator tag pydantic inserts for tagged unions.
            loc = [part for part in loc[2:] if not (isinstance(part, str) and part in _KINDS)]
        fields = printable(".".join(str(part) for part in loc), _SHOWN_MAX)
        message = printable(str(error["msg"]).removeprefix("Value error, "))
        problems.append(f"{where}: {fields + ': ' if fields else ''}{message}")
    return "; ".join(problems)


_KINDS = frozenset(str(kind) for kind in FaultKind)
# Characters of a key path shown in a problem (a key may be as long as the file).
_SHOWN_MAX = 60


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML; ScenarioError says where and what is wrong."""
    source = printable(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source} is not valid TOML: {printable(str(exc))}.") from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            f"The fault scenario is not valid: {_describe(exc, text, source)}."
        ) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (UTF-8 text)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # Worded as the profile loader words it (controller/library.py).
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(
            f"Cannot read the fault scenario {printable(str(file))} ({printable(reason)}); "
            "check the file."
        ) from exc
    return parse_scenario(text, source=str(file))


# --- the runtime book of one device's faults ------------------------------------------------


@dataclass(eq=False)
class ScheduledFault:
    """A fault placed on a device's clock time line."""

    spec: FaultSpec
    start: float
    # Mutable run-time state: writes still to fail (att_error), the drop generator, and
    # whether a one-shot fault has fired.
    remaining: int = 0
    fired: bool = False
    rng: random.Random = field(default_factory=random.Random)

    @property
    def kind(self) -> FaultKind:
        """The fault's kind."""
        return FaultKind(self.spec.kind)

    @property
    def end(self) -> float:
        """When the fault stops (infinity for lasting-forever and one-shot faults)."""
        duration = getattr(self.spec, "duration", None)
        return math.inf if duration is None else self.start + duration

    def active(self, now: float) -> bool:
        """Whether the fault is in force at ``now``."""
        if self.kind is FaultKind.ATT_ERROR:
            return self.start <= now and self.remaining > 0
        return self.start <= now < self.end


class FaultBook:
    """The faults scheduled on one device, queried with the current clock time."""

    def __init__(self) -> None:
        self._faults: list[ScheduledFault] = []

    def schedule(self, spec: FaultSpec, now: float) -> ScheduledFault:
        """Place ``spec`` on the time line, ``spec.at`` seconds after ``now``."""
        scheduled = ScheduledFault(spec=spec, start=now + spec.at)
        if isinstance(spec, AttErrorFault):
            scheduled.remaining = spec.count
        if isinstance(spec, DropNotifications):
            scheduled.rng = random.Random(spec.seed)  # noqa: S311 - simulation, not crypto
        self._faults.append(scheduled)
        return scheduled

    def clear(self) -> None:
        """Forget every fault."""
        self._faults.clear()

    @property
    def scheduled(self) -> tuple[ScheduledFault, ...]:
        """Every fault, in the order scheduled."""
        return tuple(self._faults)

    def active(self, kind: FaultKind, now: float) -> list[ScheduledFault]:
        """The faults of ``kind`` in force at ``now``."""
        if not self._faults:  # the usual case, asked many times a clock second
            return []
        return [f for f in self._faults if f.kind is kind and f.active(now)]

    def is_active(self, kind: FaultKind, now: float) -> bool:
        """Whether any fault of ``kind`` is in force at ``now``."""
        return bool(self._faults) and any(f.kind is kind and f.active(now) for f in self._faults)

    def active_kinds(self, now: float) -> frozenset[FaultKind]:
        """Every kind in force at ``now`` (one-shot faults count once fired)."""
        kinds = {f.kind for f in self._faults if f.active(now) and not _is_one_shot(f.kind)}
        kinds |= {f.kind for f in self._faults if _is_one_shot(f.kind) and f.fired}
        return frozenset(kinds)

    def next_change(self, now: float) -> float | None:
        """The next start or end of a fault strictly after ``now`` (None when none is due)."""
        times = [
            t
            for f in self._faults
            for t in (f.start, f.end)
            if now < t < math.inf and not (f.fired and t == f.start)
        ]
        return min(times, default=None)

    def due_one_shots(self, now: float) -> list[ScheduledFault]:
        """One-shot faults (disconnect, battery death) whose time has come; marks them fired."""
        due = [f for f in self._faults if _is_one_shot(f.kind) and not f.fired and f.start <= now]
        for fault in due:
            fault.fired = True
        return due

    def take_write_fault(self, now: float) -> AttErrorFault | None:
        """The ATT error fault the next write meets (answered with its ``code``, or not at all
        when ``unanswered``), consuming one of its writes; None = the write goes through."""
        for fault in self._faults:
            if isinstance(fault.spec, AttErrorFault) and fault.active(now):
                fault.remaining -= 1
                return fault.spec
        return None

    def take_att_error(self, now: float) -> int | None:
        """The ATT error code of the next faulty write, consuming one; None = no fault (see
        :meth:`take_write_fault` for a write that is not answered at all)."""
        fault = self.take_write_fault(now)
        return None if fault is None else fault.code

    def drop_notification(self, now: float) -> bool:
        """Whether the notification being sent now is lost."""
        for fault in self.active(FaultKind.DROP_NOTIFICATIONS, now):
            spec = fault.spec
            if isinstance(spec, DropNotifications) and fault.rng.random() < spec.probability:
                return True
        return False

    def notification_delay(self, now: float) -> float:
        """Clock seconds the notification being sent now is held back."""
        delays = [
            fault.spec.delay
            for fault in self.active(FaultKind.DELAY_NOTIFICATIONS, now)
            if isinstance(fault.spec, DelayNotifications)
        ]
        return max(delays, default=0.0)

    def link_latency(self, now: float) -> float:
        """Real seconds each ATT packet is held at ``now``."""
        latencies = [
            fault.spec.latency
            for fault in self.active(FaultKind.LINK_LATENCY, now)
            if isinstance(fault.spec, LinkLatency)
        ]
        return max(latencies, default=0.0)

    def refusing(self, now: float) -> RefuseConnections | None:
        """The refuse-connections fault in force, if any."""
        for fault in self.active(FaultKind.REFUSE_CONNECTIONS, now):
            if isinstance(fault.spec, RefuseConnections):
                return fault.spec
        return None

    def sensor_reading(self, true_c: float, now: float) -> float:
        """What the temperature sensor reports when the truth is ``true_c`` (NaN or drifted)."""
        if self.is_active(FaultKind.SENSOR_NAN, now):
            return math.nan
        reading = true_c
        for fault in self.active(FaultKind.SENSOR_DRIFT, now):
            if isinstance(fault.spec, SensorDrift):
                reading += fault.spec.rate * (now - fault.start) / 60.0
        return reading

    def latches_lease_expiry(self, now: float) -> bool:
        """Whether a lease that runs out at ``now`` latches LEASE_EXPIRED (not when unlatched)."""
        return not self.is_active(FaultKind.UNLATCHED_LEASE, now)

    def stuck_since(self, now: float) -> float | None:
        """Start of the stuck-output fault in force at ``now``, or None."""
        starts = [f.start for f in self.active(FaultKind.STUCK_HEATER, now)]
        return min(starts, default=None)


def _is_one_shot(kind: FaultKind) -> bool:
    return kind in (FaultKind.DISCONNECT, FaultKind.BATTERY_DIES)
