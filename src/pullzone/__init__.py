"""pullzone: a self-hosted CDN for HTTP pull zones.

The SDK of its management API: `from pullzone import Client, AsyncClient, ApiError`.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["ApiError", "AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from pullzone.client import ApiError, AsyncClient, Client


def __getattr__(name: str) -> object:
    # The SDK is imported when asked for, so that the server's processes, which import
    # `pullzone` too, do not load the HTTP client.
    if name in ("ApiError", "AsyncClient", "Client"):
        from pullzone import client

        return getattr(client, name)
    raise AttributeError(f"module 'pullzone' has no attribute {name!r}")
