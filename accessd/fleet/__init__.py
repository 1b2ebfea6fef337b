"""The fleet link: MQTT events, Home Assistant discovery, signed commands."""
