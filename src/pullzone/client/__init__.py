"""The Python SDK of the pullzone management API (5centscdn v2 compatible).

    from pullzone import Client

    with Client() as client:  # PULLZONE_API_URL, PULLZONE_API_KEY
        zone = client.zones.create(name="site", origin="https://origin.example")
        result = client.purge(zone.id, files=["/index.html"], delete=True)
        print(result.id, result.purged)
        client.prefetch(zone.id, ["/index.html"])  # stored on every edge before visitors ask
        created = client.keys.create("ci", zones=[zone.id], purge_only=True)
        print(created.secret)  # the new key: the API shows it only this once

`AsyncClient` has the same calls, awaited. Every failure raises `ApiError` (`status`: the
HTTP status, 0 when no answer came; `message`: the API's). Rate-limited (429) and failed
(5xx) calls are retried, honouring `Retry-After`. `client.keys` needs the admin key.
Results are frozen dataclasses: `Zone`, `CachePolicy`, `PurgeResult`, `PurgeRecord`,
`PrefetchResult`, `ApiKey`, `NewKey`, `Certificate`, `SslPolicy`. `client.certs` manages
account certificates; `client.zones.update_ssl` a zone's ssl block. `purge_batches` splits
a long file list into requests the API accepts (`max_files=MAX_PREFETCH_FILES` for a
prefetch).
"""

from pullzone.client._batches import purge_batches
from pullzone.client._requests import (
    MAX_BODY_BYTES,
    ApiError,
    CacheFields,
    SslFields,
    ZoneChanges,
    ZoneFields,
)
from pullzone.client._results import (
    ApiKey,
    CachePolicy,
    Certificate,
    NewKey,
    PrefetchResult,
    PurgeRecord,
    PurgeResult,
    SslPolicy,
    Zone,
)
from pullzone.client._retry import RetryPolicy
from pullzone.client.client import AsyncClient, Certs, Client, Keys, Zones
from pullzone.limits import MAX_PREFETCH_FILES, MAX_PURGE_FILES

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_PREFETCH_FILES",
    "MAX_PURGE_FILES",
    "ApiError",
    "ApiKey",
    "AsyncClient",
    "CacheFields",
    "CachePolicy",
    "Certificate",
    "Certs",
    "Client",
    "Keys",
    "NewKey",
    "PrefetchResult",
    "PurgeRecord",
    "PurgeResult",
    "RetryPolicy",
    "SslFields",
    "SslPolicy",
    "Zone",
    "ZoneChanges",
    "ZoneFields",
    "Zones",
    "purge_batches",
]
