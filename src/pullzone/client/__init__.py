"""The Python SDK of the pullzone management API (5centscdn v2 compatible).

    from pullzone.client import Client

    with Client() as client:  # PULLZONE_API_URL, PULLZONE_API_KEY
        zone = client.zones.create(name="site", origin="https://origin.example")
        client.purge(zone["id"], ["/index.html"])
        created = client.keys.create("ci", zones=[zone["id"]], purge_only=True)
        print(created["secret"])  # the new key: the API shows it only this once

`client.keys` (`create`, `list`, `revoke`) needs the admin key.
"""

from pullzone.client._requests import ApiError
from pullzone.client.client import AsyncClient, Client

__all__ = ["ApiError", "AsyncClient", "Client"]
