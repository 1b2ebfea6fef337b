"""OSDP control panel, sans-IO: framing (phy), payloads, secure channel (sc), CP state machine (cp)."""
