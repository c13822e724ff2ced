"""pullzone: a self-hosted CDN for HTTP pull zones."""

__version__ = "0.1.0"
