"""cors-edge: a reverse proxy that owns CORS for an unmodified legacy Flask app."""

__version__ = "0.1.0"
