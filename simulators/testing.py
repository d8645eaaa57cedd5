"""What tests and benchmarks use to put their own devices on the simulated radio.

The public face of the simulator internals a test needs beyond :mod:`simulators.backend` (the
bleak backend) and :class:`simulators.world.SimWorld` (every simulated relieve device):

* :func:`start_peripheral` -- a plain bumble peripheral (your own GATT server) on a link;
* :func:`parse_advertising_data` -- what a scanner makes of advertising bytes.
"""

from __future__ import annotations

from simulators.backend.mapping import parse_advertising_data
from simulators.backend.peripheral import start_peripheral

__all__ = ["parse_advertising_data", "start_peripheral"]
