"""accessd: the daemon of one door — readers, entry list, lock relay, event socket."""

__version__ = "0.1.0"
