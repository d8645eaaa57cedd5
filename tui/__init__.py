"""relieve: tui."""
