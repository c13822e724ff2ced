"""`Client` and `AsyncClient`: the calls of the API, defined once for both.

Each call is declared once, as a `_Call` whose request builder (in `_requests`) says what
is sent and how the answer is read. Reached through a `Client` it sends and returns the
result; through an `AsyncClient` it returns an awaitable of the same result. Retry
decisions come from `_retry`; the two clients differ only in how they send and sleep.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
import typing
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, ParamSpec, Protocol, Self, TypeVar, overload

import httpx

from pullzone.client import _requests
from pullzone.client._requests import Answer, Call
from pullzone.client._retry import Attempts, RetryPolicy

T = TypeVar("T")
P = ParamSpec("P")
C_co = TypeVar("C_co", covariant=True)


class _Sends(Protocol):
    def send(self, call: Call[T], /) -> T: ...


class _SendsAsync(Protocol):
    def send(self, call: Call[T], /) -> Coroutine[Any, Any, T]: ...


class _Group(Generic[C_co]):
    """Calls grouped under a client attribute (`client.zones`, `client.keys`)."""

    def __init__(self, client: C_co) -> None:
        self._client = client


class _Call(Generic[P, T]):
    """A call of the API as a method of both clients, from its request builder: through a
    `Client` (or its groups) it returns the result, through an `AsyncClient` an awaitable."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self._name = build.__name__

    def __set_name__(self, cls: type[Any], name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<API call {self._name}{self._signature}>"

    @functools.cached_property
    def _signature(self) -> inspect.Signature:
        """The builder's signature, returning the result instead of the Call (for help())."""
        result = typing.get_args(typing.get_type_hints(self.build)["return"])[0]
        return inspect.signature(self.build).replace(return_annotation=result)

    @overload
    def __get__(self, owner: None, cls: type[Any]) -> Self: ...
    @overload
    def __get__(self, owner: _Sends | _Group[_Sends], cls: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, owner: _SendsAsync | _Group[_SendsAsync], cls: type[Any]
    ) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, owner: object, cls: type[Any]) -> Any:
        if owner is None:
            return self
        client: Any = owner._client if isinstance(owner, _Group) else owner
        send, build = client.send, self.build

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await send(build(*args, **kwargs))

        def call(*args: Any, **kwargs: Any) -> Any:
            return send(build(*args, **kwargs))

        method: Any = call_async if inspect.iscoroutinefunction(send) else call
        functools.update_wrapper(method, build)
        method.__name__ = self._name
        method.__qualname__ = f"{type(owner).__qualname__}.{self._name}"
        method.__signature__ = self._signature
        return method


class Zones(_Group[C_co]):
    """`client.zones`: the HTTP pull zones."""

    list = _Call(_requests.list_zones)
    get = _Call(_requests.get_zone)
    create = _Call(_requests.create_zone)
    update = _Call(_requests.update_zone)
    update_cache = _Call(_requests.update_cache)
    update_ssl = _Call(_requests.update_ssl)
    update_block = _Call(_requests.update_block)
    delete = _Call(_requests.delete_zone)


class Certs(_Group[C_co]):
    """`client.certs`: account certificates (a key for the whole account)."""

    list = _Call(_requests.list_certs)
    get = _Call(_requests.get_cert)
    upload = _Call(_requests.upload_cert)
    update = _Call(_requests.update_cert)
    delete = _Call(_requests.delete_cert)


class Keys(_Group[C_co]):
    """`client.keys`: API keys (the admin key only)."""

    create = _Call(_requests.create_key)
    list = _Call(_requests.list_keys)
    revoke = _Call(_requests.revoke_key)


class _Base:
    """What both clients are made of: where the API is, the key, timeout and retries."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_retry_wait: float = 60.0,
    ) -> None:
        self.base_url, self.api_key = _requests.settings(base_url, api_key, os.environ)
        if not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"timeout must be a number of seconds above 0, not {timeout!r}")
        self.timeout = float(timeout)
        self.retry = RetryPolicy(max_retries, backoff, max_wait=max_retry_wait)
        self._open(
            base_url=self.base_url, headers=_requests.headers(self.api_key), timeout=self.timeout
        )

    def _open(self, **settings: Any) -> None:
        raise NotImplementedError

    @property
    def zones(self) -> Zones[Self]:
        """The HTTP pull zones: `list`, `get`, `create`, `update`, `update_cache`,
        `update_ssl`, `delete`."""
        return Zones(self)

    @property
    def certs(self) -> Certs[Self]:
        """Account certificates: `list`, `get`, `upload`, `update`, `delete`."""
        return Certs(self)

    @property
    def keys(self) -> Keys[Self]:
        """API keys (the admin key only): `create`, `list`, `revoke`."""
        return Keys(self)

    def _attempts(self, call: Call[Any]) -> Attempts:
        return Attempts(call, self.retry, self.base_url, self.timeout)

    purge = _Call(_requests.purge)
    purges = _Call(_requests.purges)
    prefetch = _Call(_requests.prefetch)
    sign_url = _Call(_requests.sign_url)


class Client(_Base):
    """The pullzone management API (5centscdn v2 compatible), synchronously.

        with Client(base_url="http://127.0.0.1:8081/v2", api_key="…") as client:
            client.purge(42, files=["/videos/file.mp4"], delete=True)

    `base_url` defaults to `PULLZONE_API_URL` (else `http://127.0.0.1:8081/v2`), `api_key`
    to `PULLZONE_API_KEY`. `timeout`: seconds each attempt may take. A rate-limited (429)
    or failed (5xx) call, or one that found no server, is tried again up to `max_retries`
    times, waiting as the API's `Retry-After` says (giving up when it says more than
    `max_retry_wait` seconds) or else `backoff` seconds, doubling. Every failure raises
    `ApiError`, with the HTTP status (0: no answer) and the API's message.
    """

    def _open(self, **settings: Any) -> None:
        self._http = httpx.Client(**settings)

    def send(self, call: Call[T], /) -> T:
        """Send a call built by `pullzone.client._requests`; its result."""
        return call.result(self.exchange(call))

    def exchange(self, call: Call[Any]) -> Answer:
        """Send a call (retrying as the policy says); its whole success answer."""
        attempts = self._attempts(call)
        while not isinstance(step := attempts.after(self._attempt(call)), Answer):
            time.sleep(step)
        return step

    def _attempt(self, call: Call[Any]) -> httpx.Response | httpx.TransportError:
        try:
            return self._http.request(**call.request())
        except httpx.TransportError as exc:
            return exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """The pullzone management API for asyncio: the calls of `Client`, awaited.

        async with AsyncClient() as client:
            await client.purge(42, files=["/videos/file.mp4"], delete=True)

    The same settings, retries and errors as `Client`.
    """

    def _open(self, **settings: Any) -> None:
        self._http = httpx.AsyncClient(**settings)

    async def send(self, call: Call[T], /) -> T:
        """Send a call built by `pullzone.client._requests`; its result."""
        return call.result(await self.exchange(call))

    async def exchange(self, call: Call[Any]) -> Answer:
        """Send a call (retrying as the policy says); its whole success answer."""
        attempts = self._attempts(call)
        while not isinstance(step := attempts.after(await self._attempt(call)), Answer):
            await asyncio.sleep(step)
        return step

    async def _attempt(self, call: Call[Any]) -> httpx.Response | httpx.TransportError:
        try:
            return await self._http.request(**call.request())
        except httpx.TransportError as exc:
            return exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
