"""The API's limits, in one place: the server enforces them, the OpenAPI document states
them, and the SDK and CLI batch purges under them."""

from __future__ import annotations

MAX_API_BODY = 1024 * 1024  # bytes of one API request body (413 beyond)
MAX_PURGE_FILES = 10_000  # files in one purge request (413 beyond)
MAX_PREFETCH_FILES = 1_000  # objects in one prefetch request (413 beyond)
MAX_PURGE_TAGS = 10_000  # tags in one purge request (413 beyond)
MAX_PURGE_PATH = 4096  # characters of one purged file
MAX_TAG = 256  # characters of one tag
