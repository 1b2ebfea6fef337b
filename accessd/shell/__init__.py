"""The imperative shell: the daemon's loop, the socket server, the event log, sd_notify."""
