"""relieve: controller."""
