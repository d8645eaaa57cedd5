"""What every device driver is built on: the device-kind contract (``base``), the injected clock,
connecting, discovery and classification, leases, polling, watches and the driver factory.

The device protocols themselves are one module each at the ``drivers`` root.
"""
