"""The MQTT bridge of the node daemon, and Home Assistant discovery."""
