"""Simulated devices: bumble GATT servers with the physics and faults of simulators/.

Import the module you need (``simulators.devices.open_thermal`` ...): this ``__init__`` stays
empty so that importing the package does not import bumble.
"""
