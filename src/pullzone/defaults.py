"""The defaults of `pullzone serve`, in one place: `config.Settings` takes them, the CLI's
options and their help read them, and the README's tables state them (a unit test holds
the README to them)."""

from __future__ import annotations

import os

HOST = "127.0.0.1"  # where the edge and the API listen
EDGE_PORT = 8080
EDGE_TLS_PORT = 8443  # the port of --edge-tls HOST when it names none (no listener by default)
API_PORT = 8081
API_URL = f"http://{HOST}:{API_PORT}/v2"  # where the SDK and the CLI find the API
MAX_CACHE_SIZE = 10 * 1024**3
# The largest object a fill stores (--max-object-size): nginx's proxy_max_temp_file_size
# default, the most it spools of one response to disk; a tenth of the default
# --max-cache-size, so one object never takes more than a slice of the cache.
MAX_OBJECT_SIZE = 1024**3
EDGE_DOMAIN = "localhost"
ORIGIN_TIMEOUT = 60.0  # seconds to wait for an origin's response
ORIGIN_CONNECT_TIMEOUT = 10.0  # seconds to connect to an origin, at most
API_RATE = 20.0  # requests per second per API key; 0: no limit
API_BURST = 100  # requests one key may make at once before API_RATE applies
ACCESS_LOG_FORMAT = "combined"  # or "json"
ACME_DIRECTORY = ""  # no automatic certificates unless --acme-directory is given
ROLE = "all"  # all, edge, api or shield
REPLICAS = 1  # JetStream replicas of the stream and buckets (3 in production)
PURGE_WAIT = 2.0  # seconds an answer waits for live edges to confirm
MAX_BUS_SILENCE = 30.0  # cut off longer than this (seconds), an edge revalidates everything
STREAM_RETENTION = 7 * 86400.0  # seconds the event stream keeps an event (docs/cluster.md)
SNAPSHOT_INTERVAL = 15 * 60.0  # at most this long (seconds) between two snapshots
SNAPSHOT_EVERY = 10_000  # events after which a snapshot is written, even sooner


def workers() -> int:
    """Edge worker processes: one per CPU."""
    return max(1, os.cpu_count() or 1)


# Automatic certificates (--acme-directory): renewed once this much of a certificate's
# lifetime has passed; a failed order is tried again after ACME_RETRY_MIN seconds,
# doubling up to ACME_RETRY_MAX.
ACME_RENEW_AT = 2 / 3
ACME_RETRY_MIN = 60.0
ACME_RETRY_MAX = 3600.0
