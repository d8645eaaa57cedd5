"""relieve: drivers."""
