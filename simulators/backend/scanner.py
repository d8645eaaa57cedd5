"""``SimScanner``: bleak's scanner backend on a simulated adapter (:mod:`simulators.backend`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Literal

from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)

from simulators.backend.adapter import Sighting, SimAdapter, SimDeviceDetails
from simulators.backend.mapping import parse_advertising_data
from simulators.backend.selection import default_adapter

__all__ = ["SimScanner"]

logger = logging.getLogger(__name__)


class SimScanner(BaseBleakScanner):
    """bleak scanner backend that hears bumble peripherals on a simulated radio.

    Use it as ``BleakScanner(backend=SimScanner)`` (or pass ``backend=SimScanner`` to
    ``BleakScanner.discover`` / ``find_device_by_address`` / ``find_device_by_name``). The
    scan starts by hearing every device that advertises right now; after that each device is
    heard at its advertising interval. ``sim_adapter=`` selects an explicit adapter.
    """

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        sim_adapter: SimAdapter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        del scanning_mode  # the virtual radio has no scan requests: passive behaves as active
        self._explicit_adapter = sim_adapter
        self._adapter: SimAdapter | None = None
        self._stop_listening: Callable[[], None] | None = None

    async def start(self) -> None:
        """Start scanning (clears what an earlier scan saw)."""
        if self._adapter is not None:
            await self.stop()
        adapter = self._explicit_adapter or await default_adapter()
        self.seen_devices = {}
        self._stop_listening = adapter.add_listener(
            lambda sighting: self._on_sighting(adapter, sighting)
        )
        try:
            await adapter.start_scanning(hear_all_now=True)
        except BaseException:
            self._stop_listening()
            self._stop_listening = None
            raise
        self._adapter = adapter
        # The scan began by hearing every current advertiser, before start() returned. Tell
        # them again one loop turn later, for callbacks registered right after start() (as
        # BleakScanner.find_device_by_filter and advertisement_data() do): in BLE an
        # advertisement repeats anyway.
        asyncio.get_running_loop().call_soon(self._repeat_first_sightings, adapter)
        logger.debug("scanning on %s", adapter.description)

    def _repeat_first_sightings(self, adapter: SimAdapter) -> None:
        if self._adapter is adapter:
            for device, advertisement in list(self.seen_devices.values()):
                self.call_detection_callbacks(device, advertisement)

    async def stop(self) -> None:
        """Stop scanning; what was seen stays in ``seen_devices``."""
        adapter, self._adapter = self._adapter, None
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if adapter is not None:
            await adapter.stop_scanning()

    def _on_sighting(self, adapter: SimAdapter, sighting: Sighting) -> None:
        parsed = parse_advertising_data(sighting.data)
        if not self.is_allowed_uuid(parsed.service_uuids):
            return
        advertisement = AdvertisementData(
            local_name=parsed.local_name,
            manufacturer_data=parsed.manufacturer_data,
            service_data=parsed.service_data,
            service_uuids=parsed.service_uuids,
            tx_power=parsed.tx_power,
            rssi=sighting.rssi,
            platform_data=(sighting,),
        )
        device = self.create_or_update_device(
            sighting.key,
            sighting.key,
            parsed.local_name,
            SimDeviceDetails(sighting.address, adapter),
            advertisement,
        )
        self.call_detection_callbacks(device, advertisement)
