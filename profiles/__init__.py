"""relieve: profiles."""
