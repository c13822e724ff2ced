"""`Client` and `AsyncClient`: transport only; requests and answers live in `_requests`."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, TypeVar

import httpx

from pullzone.client import _requests
from pullzone.client._requests import Answer, Call

T = TypeVar("T")


class Client:
    """The pullzone management API, synchronously.

    `base_url` defaults to `PULLZONE_API_URL` (else `http://127.0.0.1:8081/v2`), `api_key`
    to `PULLZONE_API_KEY`. Every failure raises `ApiError`.
    """

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url, self.api_key = _requests.settings(base_url, api_key, os.environ)
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url, headers=_requests.headers(self.api_key), timeout=timeout
        )
        self.zones = Zones(self)
        self.keys = Keys(self)

    def exchange(self, call: Call[Any]) -> Answer:
        """Send one prepared call; its whole success answer (status and JSON object)."""
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.json
            )
        except httpx.TransportError as exc:
            raise _requests.unreachable(self.base_url, self.timeout, exc) from exc
        return _requests.read_answer(response.status_code, response.content)

    def send(self, call: Call[T]) -> T:
        """Send one prepared call; the part of its answer the call is about."""
        return call.result(self.exchange(call))

    def purge(
        self,
        zone_id: int | str,
        files: list[str] | None = None,
        *,
        tags: list[str] | None = None,
        delete: bool = False,
    ) -> dict[str, Any]:
        """Purge files and/or tags, or the whole zone when neither is given."""
        return self.send(_requests.purge(zone_id, files, tags=tags, delete=delete))

    def purges(self, zone_id: int | str) -> list[dict[str, Any]]:
        """The zone's purge history, newest first."""
        return self.send(_requests.purges(zone_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Zones:
    """`client.zones`: the HTTP pull zones."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[dict[str, Any]]:
        return self._client.send(_requests.list_zones())

    def get(self, zone_id: int | str) -> dict[str, Any]:
        return self._client.send(_requests.get_zone(zone_id))

    def create(self, **fields: Any) -> dict[str, Any]:
        """Create a zone from 5centscdn fields (`name`, `origin`, `alias`, `cache`, …)."""
        return self._client.send(_requests.create_zone(fields))

    def update(self, zone_id: int | str, **fields: Any) -> dict[str, Any]:
        return self._client.send(_requests.update_zone(zone_id, fields))

    def update_cache(self, zone_id: int | str, **cache_fields: Any) -> dict[str, Any]:
        """Change the zone's `cache` block alone (`cache`, `expiry`, `querystring`, …)."""
        return self._client.send(_requests.update_cache(zone_id, cache_fields))

    def delete(self, zone_id: int | str) -> dict[str, Any]:
        """Delete the zone and its cached bytes; the API's answer."""
        return self._client.send(_requests.delete_zone(zone_id))


class Keys:
    """`client.keys`: API keys (the admin key only)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, name: str, zones: list[int] | None = None, purge_only: bool = False
    ) -> dict[str, Any]:
        """A new key, limited to `zones` (None: every zone) and to reading and purging when
        `purge_only`. The API's answer: `key` and `secret`, the key itself, shown only once."""
        return self._client.send(_requests.create_key(name, zones, purge_only))

    def list(self) -> list[dict[str, Any]]:
        """Every key, revoked ones included (`revoked_at` set); never their secrets."""
        return self._client.send(_requests.list_keys())

    def revoke(self, key_id: str) -> dict[str, Any]:
        """Revoke the key of this id (not the secret); the API's answer."""
        return self._client.send(_requests.revoke_key(key_id))


class AsyncClient:
    """The pullzone management API, for asyncio; the same calls as `Client`, awaited."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url, self.api_key = _requests.settings(base_url, api_key, os.environ)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=_requests.headers(self.api_key), timeout=timeout
        )
        self.zones = AsyncZones(self)
        self.keys = AsyncKeys(self)

    async def exchange(self, call: Call[Any]) -> Answer:
        """Send one prepared call; its whole success answer (status and JSON object)."""
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.json
            )
        except httpx.TransportError as exc:
            raise _requests.unreachable(self.base_url, self.timeout, exc) from exc
        return _requests.read_answer(response.status_code, response.content)

    async def send(self, call: Call[T]) -> T:
        """Send one prepared call; the part of its answer the call is about."""
        return call.result(await self.exchange(call))

    async def purge(
        self,
        zone_id: int | str,
        files: list[str] | None = None,
        *,
        tags: list[str] | None = None,
        delete: bool = False,
    ) -> dict[str, Any]:
        """Purge files and/or tags, or the whole zone when neither is given."""
        return await self.send(_requests.purge(zone_id, files, tags=tags, delete=delete))

    async def purges(self, zone_id: int | str) -> list[dict[str, Any]]:
        """The zone's purge history, newest first."""
        return await self.send(_requests.purges(zone_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncZones:
    """`client.zones` of an `AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> list[dict[str, Any]]:
        return await self._client.send(_requests.list_zones())

    async def get(self, zone_id: int | str) -> dict[str, Any]:
        return await self._client.send(_requests.get_zone(zone_id))

    async def create(self, **fields: Any) -> dict[str, Any]:
        return await self._client.send(_requests.create_zone(fields))

    async def update(self, zone_id: int | str, **fields: Any) -> dict[str, Any]:
        return await self._client.send(_requests.update_zone(zone_id, fields))

    async def update_cache(self, zone_id: int | str, **cache_fields: Any) -> dict[str, Any]:
        return await self._client.send(_requests.update_cache(zone_id, cache_fields))

    async def delete(self, zone_id: int | str) -> dict[str, Any]:
        return await self._client.send(_requests.delete_zone(zone_id))


class AsyncKeys:
    """`client.keys` of an `AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, name: str, zones: list[int] | None = None, purge_only: bool = False
    ) -> dict[str, Any]:
        return await self._client.send(_requests.create_key(name, zones, purge_only))

    async def list(self) -> list[dict[str, Any]]:
        return await self._client.send(_requests.list_keys())

    async def revoke(self, key_id: str) -> dict[str, Any]:
        return await self._client.send(_requests.revoke_key(key_id))
