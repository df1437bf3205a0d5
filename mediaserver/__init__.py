"""mediaserver: a self-hosted programmable voice server."""

__version__ = "0.1.0"
