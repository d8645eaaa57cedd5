"""Pure protocol codecs: bytes in, typed values out, and back.

Shared by the drivers (host side) and the simulators (device side). Nothing here does I/O,
uses asyncio, or imports bleak or bumble. Import the module you need, e.g.
``from drivers.codecs import open_profile``; this package's ``__init__`` stays empty on purpose.
"""
