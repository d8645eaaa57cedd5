"""Physics of the simulated devices: pure functions of (state, drive, dt).

Nothing here knows about clocks, BLE or asyncio. A device steps its physics by the clock time
that elapsed since the last step, so a virtual clock can jump 30 minutes at once and get the
same answer (to within the sub-step error) as 1800 one-second steps.

Thermal plate
    The plate temperature follows its goal with a first-order time constant, with the rate of
    change bounded (a heater warms faster than a Peltier element cools). With the output off,
    or while the thermostat idles, the plate drifts back to resting skin temperature. The
    skin-side temperature (what a probe under the pad reads) lags the plate through a fabric
    layer and sits between the plate and resting skin temperature.

Massage gun
    Speed ramps up and down at bounded rates towards the commanded speed; pressing harder
    (force) makes the motor sag and, at its stall force, stop.

Battery
    A percentage drained at a rate that depends on what the device is doing.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = [
    "BatteryParams",
    "DriveMode",
    "GunParams",
    "GunState",
    "ThermalDrive",
    "ThermalParams",
    "ThermalState",
    "drain_battery",
    "gun_drain_rate",
    "gun_speed_under_load",
    "resting_thermal_state",
    "skin_equilibrium",
    "step_gun",
    "step_thermal",
    "thermal_drain_rate",
    "thermal_power_fraction",
]


def _require_forward(dt: float) -> None:
    """Refuse a negative time step: every step function runs forward in time only."""
    if dt < 0:
        raise ValueError("physics cannot step backwards in time")


# --- thermal plate -----------------------------------------------------------------------

# Resting skin temperature: where an unpowered pad on the body settles (forearm/back skin
# is 32-34 degC at room temperature).
SKIN_REST_C = 33.0
# Fastest heating of the plate: resistive pads reach 40 degC from skin temperature in
# well under a minute; 0.5 degC/s is the upper end of what users report for good pads.
MAX_HEAT_RATE_C_PER_S = 0.5
# Fastest active cooling of a Peltier plate under load: 0.2 degC/s (~2 min from 33 to 12 degC).
MAX_COOL_RATE_C_PER_S = 0.2
# Time constant of the controlled approach to the setpoint once near it (thermostat/PID
# settling): 20 s.
ACTIVE_TAU_S = 20.0
# Time constant of the unpowered drift back to skin temperature (plate on the body, covered):
# 3 minutes.
PASSIVE_TAU_S = 180.0
# Fastest unpowered drift: 0.05 degC/s (a hot pad cools slowly on the body).
PASSIVE_MAX_RATE_C_PER_S = 0.05
# Time constant of the skin-side temperature behind a folded towel: 45 s.
FABRIC_TAU_S = 45.0
# Fraction of the plate's departure from resting skin temperature that reaches the skin
# through the fabric layer at equilibrium (a towel: ~80 %; 42 degC plate -> ~40 degC skin).
FABRIC_TRANSFER = 0.8
# What a heater with a welded relay drives the plate to (its thermal fuse trips above this).
HEATER_RUNAWAY_C = 50.0
# What a Peltier element stuck on cooling drives the plate to.
COOLER_RUNAWAY_C = 2.0
# Largest sub-step for the coupled plate/skin integration: 0.5 s keeps the skin error tiny.
MAX_SUBSTEP_S = 0.5
# While holding the setpoint the thermostat runs the output at about a third of full power.
HOLD_DUTY = 0.3
# Within this distance of its setpoint a plate counts as holding it.
HOLD_BAND_C = 0.5


class DriveMode(enum.StrEnum):
    """What a thermal output does."""

    OFF = "off"
    HEAT = "heat"
    COLD = "cold"


@dataclass(frozen=True, slots=True)
class ThermalParams:
    """Physical constants of one thermal plate (defaults: a typical pad, see the constants)."""

    resting_c: float = SKIN_REST_C
    max_heat_rate: float = MAX_HEAT_RATE_C_PER_S
    max_cool_rate: float = MAX_COOL_RATE_C_PER_S
    active_tau_s: float = ACTIVE_TAU_S
    passive_tau_s: float = PASSIVE_TAU_S
    passive_max_rate: float = PASSIVE_MAX_RATE_C_PER_S
    fabric_tau_s: float = FABRIC_TAU_S
    fabric_transfer: float = FABRIC_TRANSFER
    heater_runaway_c: float = HEATER_RUNAWAY_C
    cooler_runaway_c: float = COOLER_RUNAWAY_C

    def __post_init__(self) -> None:
        for name in (
            "max_heat_rate",
            "max_cool_rate",
            "active_tau_s",
            "passive_tau_s",
            "passive_max_rate",
            "fabric_tau_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"thermal parameter {name} must be positive")
        if not 0.0 <= self.fabric_transfer <= 1.0:
            raise ValueError("thermal parameter fabric_transfer must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class ThermalState:
    """Plate and skin-side temperatures, degC."""

    plate_c: float
    skin_c: float


@dataclass(frozen=True, slots=True)
class ThermalDrive:
    """What the output is told to do during a step: heat or cool towards ``target_c``, or rest."""

    mode: DriveMode = DriveMode.OFF
    target_c: float = SKIN_REST_C


def resting_thermal_state(params: ThermalParams | None = None) -> ThermalState:
    """A pad that has lain unpowered on the body for a long time."""
    p = params or ThermalParams()
    return ThermalState(plate_c=p.resting_c, skin_c=p.resting_c)


def skin_equilibrium(plate_c: float, params: ThermalParams | None = None) -> float:
    """The skin-side temperature a constant plate temperature settles to."""
    p = params or ThermalParams()
    return p.resting_c + p.fabric_transfer * (plate_c - p.resting_c)


def _approach(x: float, goal: float, tau: float, max_rate: float, dt: float) -> float:
    """Exact solution of dx/dt = clamp((goal - x) / tau, -max_rate, max_rate) after ``dt``."""
    gap = goal - x
    distance = abs(gap)
    if distance == 0.0 or dt <= 0.0:
        return x
    direction = 1.0 if gap > 0 else -1.0
    knee = max_rate * tau  # beyond this distance the rate limit binds: a linear ramp
    if distance > knee:
        ramp_time = (distance - knee) / max_rate
        if dt <= ramp_time:
            return x + direction * max_rate * dt
        dt -= ramp_time
        distance = knee
    return goal - direction * distance * math.exp(-dt / tau)


def _plate_regime(
    plate_c: float, drive: ThermalDrive, p: ThermalParams
) -> tuple[float, float, float]:
    """(goal, tau, max rate) of the plate for this drive; the regime cannot change mid-step.

    An active output pushes the plate towards its target at the heating or cooling limit;
    once past the target (or with the output off) the thermostat idles and the plate drifts
    passively towards the target or resting temperature, whichever it meets first.
    """
    if drive.mode is DriveMode.HEAT:
        if plate_c < drive.target_c:
            return drive.target_c, p.active_tau_s, p.max_heat_rate
        return max(drive.target_c, p.resting_c), p.passive_tau_s, p.passive_max_rate
    if drive.mode is DriveMode.COLD:
        if plate_c > drive.target_c:
            return drive.target_c, p.active_tau_s, p.max_cool_rate
        return min(drive.target_c, p.resting_c), p.passive_tau_s, p.passive_max_rate
    return p.resting_c, p.passive_tau_s, p.passive_max_rate


def step_thermal(
    state: ThermalState, drive: ThermalDrive, dt: float, params: ThermalParams | None = None
) -> ThermalState:
    """The plate and skin temperatures ``dt`` seconds later under a constant ``drive``."""
    _require_forward(dt)
    p = params or ThermalParams()
    if dt == 0:
        return state
    steps = max(1, math.ceil(dt / MAX_SUBSTEP_S))
    h = dt / steps
    plate, skin = state.plate_c, state.skin_c
    skin_decay = math.exp(-h / p.fabric_tau_s)
    for _ in range(steps):
        goal, tau, rate = _plate_regime(plate, drive, p)
        new_plate = _approach(plate, goal, tau, rate, h)
        skin_goal = skin_equilibrium((plate + new_plate) / 2.0, p)
        skin = skin_goal + (skin - skin_goal) * skin_decay
        plate = new_plate
    return ThermalState(plate_c=plate, skin_c=skin)


def thermal_power_fraction(
    state: ThermalState, drive: ThermalDrive, params: ThermalParams | None = None
) -> float:
    """Fraction of full output power in use: 1 ramping, HOLD_DUTY holding, 0 off or idle.

    Holding a setpoint away from resting skin temperature costs power (the body keeps pulling
    the plate back); a plate past its setpoint in the output's direction idles.
    """
    p = params or ThermalParams()
    if drive.mode is DriveMode.OFF:
        return 0.0
    rate = p.max_heat_rate if drive.mode is DriveMode.HEAT else p.max_cool_rate
    # Distance still to go in the output's direction (negative: past the setpoint).
    to_go = drive.target_c - state.plate_c
    away_from_rest = drive.target_c - p.resting_c
    if drive.mode is DriveMode.COLD:
        to_go, away_from_rest = -to_go, -away_from_rest
    if to_go > HOLD_BAND_C:
        return max(HOLD_DUTY, min(1.0, to_go / (rate * p.active_tau_s)))
    if to_go >= -HOLD_BAND_C and away_from_rest > 0:
        return HOLD_DUTY
    return 0.0


# --- massage gun ---------------------------------------------------------------------------

# Top speed of a typical gun: 3200 percussions per minute (Theragun PRO: 2400 marketed,
# 3616 rpm motor limit; most guns top out at 3200).
GUN_MAX_SPEED_PPM = 3200
# Motor spin-up: 2000 ppm/s (about a second to working speed, as guns feel when started).
GUN_SPIN_UP_PPM_PER_S = 2000.0
# Motor spin-down (braked): 4000 ppm/s.
GUN_SPIN_DOWN_PPM_PER_S = 4000.0
# Force at which the motor stalls: 60 lbf ~ 267 N (Theragun PRO's published stall force).
GUN_STALL_FORCE_N = 267.0
# Speed lost just below the stall force, as a fraction of the commanded speed.
GUN_LOAD_SAG = 0.3


@dataclass(frozen=True, slots=True)
class GunParams:
    """Physical constants of one massage gun motor."""

    max_speed_ppm: int = GUN_MAX_SPEED_PPM
    spin_up_ppm_per_s: float = GUN_SPIN_UP_PPM_PER_S
    spin_down_ppm_per_s: float = GUN_SPIN_DOWN_PPM_PER_S
    stall_force_n: float = GUN_STALL_FORCE_N
    load_sag: float = GUN_LOAD_SAG

    def __post_init__(self) -> None:
        if self.max_speed_ppm <= 0 or self.spin_up_ppm_per_s <= 0:
            raise ValueError("gun speed parameters must be positive")
        if self.spin_down_ppm_per_s <= 0 or self.stall_force_n <= 0:
            raise ValueError("gun spin-down rate and stall force must be positive")
        if not 0.0 <= self.load_sag < 1.0:
            raise ValueError("gun load_sag must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class GunState:
    """Actual motor speed, percussions per minute."""

    speed_ppm: float = 0.0


def gun_speed_under_load(
    commanded_ppm: float, force_n: float, params: GunParams | None = None
) -> float:
    """The speed the motor settles at when pressed with ``force_n`` (0 at the stall force)."""
    p = params or GunParams()
    commanded = min(max(commanded_ppm, 0.0), float(p.max_speed_ppm))
    load = max(force_n, 0.0) / p.stall_force_n
    if load >= 1.0:
        return 0.0
    return commanded * (1.0 - p.load_sag * load)


def step_gun(
    state: GunState,
    commanded_ppm: float,
    force_n: float,
    dt: float,
    params: GunParams | None = None,
) -> GunState:
    """The motor speed ``dt`` seconds later (0 commanded = stopping)."""
    _require_forward(dt)
    p = params or GunParams()
    goal = gun_speed_under_load(commanded_ppm, force_n, p)
    speed = state.speed_ppm
    if goal > speed:
        speed = min(goal, speed + p.spin_up_ppm_per_s * dt)
    else:
        speed = max(goal, speed - p.spin_down_ppm_per_s * dt)
    return GunState(speed_ppm=speed)


# --- battery -------------------------------------------------------------------------------

# Drain of a device doing nothing but advertising: ~1 % per day.
IDLE_DRAIN_PCT_PER_S = 1.0 / 86_400
# A cordless heat pad at full power empties in about 2 hours.
HEAT_DRAIN_PCT_PER_S = 100.0 / 7_200
# A Peltier plate at full power empties in about 1 hour (cooling is power hungry).
COOL_DRAIN_PCT_PER_S = 100.0 / 3_600
# A massage gun at top speed, unloaded, empties in about 75 minutes (PRO: 150 min mixed use).
GUN_DRAIN_PCT_PER_S = 100.0 / 4_500
# Extra drain of a gun pressed at its stall force, as a fraction of its top-speed drain.
GUN_LOAD_DRAIN_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class BatteryParams:
    """Drain rates, percent per second."""

    idle: float = IDLE_DRAIN_PCT_PER_S
    heat: float = HEAT_DRAIN_PCT_PER_S
    cool: float = COOL_DRAIN_PCT_PER_S
    gun: float = GUN_DRAIN_PCT_PER_S


def drain_battery(level_pct: float, drain_pct_per_s: float, dt: float) -> float:
    """The battery level after draining at a constant rate for ``dt`` seconds (floor 0)."""
    _require_forward(dt)
    return max(0.0, level_pct - max(drain_pct_per_s, 0.0) * dt)


def thermal_drain_rate(
    state: ThermalState,
    drive: ThermalDrive,
    params: ThermalParams | None = None,
    battery: BatteryParams | None = None,
) -> float:
    """Battery drain of a thermal pad, percent per second."""
    b = battery or BatteryParams()
    power = thermal_power_fraction(state, drive, params)
    full = b.cool if drive.mode is DriveMode.COLD else b.heat
    return b.idle + power * full


def gun_drain_rate(
    speed_ppm: float,
    force_n: float,
    params: GunParams | None = None,
    battery: BatteryParams | None = None,
) -> float:
    """Battery drain of a massage gun, percent per second (grows with speed squared and load)."""
    p = params or GunParams()
    b = battery or BatteryParams()
    if speed_ppm <= 0:
        return b.idle
    speed_fraction = min(speed_ppm / p.max_speed_ppm, 1.0)
    load_fraction = min(max(force_n, 0.0) / p.stall_force_n, 1.0)
    return b.idle + b.gun * (speed_fraction**2 + GUN_LOAD_DRAIN_FRACTION * load_fraction)
