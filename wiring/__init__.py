"""Thin hardware bindings: gpiozero devices, the serial port, board pin maps.

Devices here take a keyword-only ``pin_factory=`` and turn callbacks into tick-stamped
events for the daemon; they hold no door or protocol logic.
"""
