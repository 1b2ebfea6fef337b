"""Sans-IO codecs and state machines: OSDP, Wiegand, keypad formats.

Nothing here touches serial ports, GPIO, sockets, threads, time or os.urandom:
clocks and randomness are passed in (see tests/protocols/test_sans_io.py).
"""
