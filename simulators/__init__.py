"""relieve: simulators."""
