"""`RpcClient`: the chain RPC from Python, for the CLI, the API node and the test harness.

HTTP calls go through one `httpx.AsyncClient` (trio backend); responses are decoded into the
`chain.rpc.schema` types, errors raised as `RpcError` carrying the server's slug and message.
Calls have no time limit of their own: bound them with a cancel scope at the call site
(`with trio.fail_after(...)`), or pass `timeout=` for a per-request network limit.

`events()` follows the /events WebSocket stream and survives disconnects: it reconnects with
backoff and resumes from the height after the last frame it delivered, so the consumer sees every
height exactly once, in order. It is a `trio.as_safe_channel` (an async context manager giving a
receive channel), because an async generator that holds a connection open across `yield` would
break structured concurrency:

    async with client.events(from_height=1, types=["transfer"]) as frames:
        async for frame in frames:
            ...

This module must never retry a broadcast by itself: whether to resend a tx is the caller's call.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncGenerator, Iterable
from typing import Any, TypeVar

import httpx
import msgspec
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, open_websocket_url

from chain.rpc.events import CLOSE_HEIGHT_UNAVAILABLE
from chain.rpc.node_view import BroadcastMode
from chain.rpc.schema import (
    BlockView,
    BroadcastView,
    CommitView,
    ErrorBody,
    EventFrame,
    QueryView,
    StatusView,
    TxView,
)
from chain.types.codec import MAX_TX_BYTES, to_json

T = TypeVar("T")


class RpcError(Exception):
    """The RPC refused a call: HTTP `status` (0 when there was no HTTP answer), slug, message."""

    def __init__(self, status: int, code: str, message: str, app_code: int | None = None) -> None:
        super().__init__(f"RPC error {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.app_code = app_code


EVENTS_CONNECT_TIMEOUT_S = 5.0


def _rpc_error(status: int, body: bytes) -> RpcError:
    try:
        detail = msgspec.json.decode(body, type=ErrorBody).error
    except msgspec.DecodeError:
        return RpcError(status, "http_error", body[:200].decode("utf-8", "replace"))
    return RpcError(status, detail.code, detail.message, detail.app_code)


# Longer than a node's default wait for `commit` broadcasts (30 s), so that the node's own answer
# ("not included yet") arrives before the client gives up; never unbounded, since a server that
# stops reading (it answered 413 to an oversized body) would otherwise hang the client.
DEFAULT_TIMEOUT_S = 60.0


class RpcClient:
    def __init__(self, base_url: str, *, timeout: float | None = DEFAULT_TIMEOUT_S,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       transport=transport)

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, type_: type[T], *,
                       params: dict[str, str] | None = None, body: bytes | None = None,
                       none_on_404: bool = False) -> T:
        response = await self._http.request(
            method, path, params=params, content=body,
            headers={"content-type": "application/json"} if body is not None else None,
        )
        if response.status_code == 404 and none_on_404:
            return None  # type: ignore[return-value]
        if response.status_code != 200:
            raise _rpc_error(response.status_code, response.content)
        return msgspec.json.decode(response.content, type=type_)

    async def status(self) -> StatusView:
        return await self._request("GET", "/status", StatusView)

    async def block(self, height: int) -> BlockView | None:
        """The committed block at `height`, None if the node has none there."""
        return await self._request("GET", f"/blocks/{height}", BlockView, none_on_404=True)

    async def commit(self, height: int) -> CommitView | None:
        return await self._request("GET", f"/commits/{height}", CommitView, none_on_404=True)

    async def tx(self, tx_hash: bytes | str) -> TxView | None:
        """A committed tx by hash (bytes or hex), None if not committed (yet)."""
        h = tx_hash.hex() if isinstance(tx_hash, bytes) else tx_hash
        return await self._request("GET", f"/txs/{h}", TxView, none_on_404=True)

    async def broadcast(self, raw: bytes, mode: BroadcastMode = "sync") -> BroadcastView:
        """Send a signed tx. A refused tx is a result with `code` != 0, not an exception; a tx
        larger than any node accepts is refused here (RpcError 413) without being sent."""
        if len(raw) > MAX_TX_BYTES:
            raise RpcError(413, "too_large",
                           f"a tx is at most {MAX_TX_BYTES} bytes, this one has {len(raw)}")
        body = to_json({"tx": raw, "mode": mode})
        return await self._request("POST", "/txs", BroadcastView, body=body)

    async def query_view(self, path: str, *, height: int | None = None,
                         **params: str) -> QueryView:
        """The raw query answer: the height it was read at and the JSON value undecoded."""
        if height is not None:
            params["height"] = str(height)
        quoted = urllib.parse.quote(path.lstrip("/"), safe="/")
        return await self._request("GET", f"/query/{quoted}", QueryView, params=params)

    async def query(self, path: str, *, height: int | None = None,
                    as_type: type[T] = Any,  # type: ignore[assignment]
                    **params: str) -> T:
        """The application's answer to `path` with `params`, decoded as `as_type`.

        A failed query raises RpcError with code "query_failed" and the app's code as app_code.
        """
        view = await self.query_view(path, height=height, **params)
        return msgspec.json.decode(view.value, type=as_type)

    def _events_url(self, from_height: int, types: tuple[str, ...]) -> str:
        url = urllib.parse.urlsplit(self.base_url)
        scheme = "wss" if url.scheme == "https" else "ws"
        query = urllib.parse.urlencode({"from_height": from_height, "types": ",".join(types)})
        return urllib.parse.urlunsplit((scheme, url.netloc, f"{url.path}/events", query, ""))

    @trio.as_safe_channel
    async def events(self, from_height: int | None = None, types: Iterable[str] = (), *,
                     retry_delay: float = 0.05, max_retry_delay: float = 2.0,
                     max_message_size: int = 16 << 20) -> AsyncGenerator[EventFrame, None]:
        """Every committed height from `from_height` (default: the next one) on, one frame each.

        The connection opens when the channel is first read, and is read only as fast as the
        consumer reads (a consumer that stalls while live gets dropped by the server and this
        resumes where it stopped).
        Reconnects on any disconnect and resumes at the height after the last frame delivered.
        Raises RpcError if the server refuses the parameters (400) or no longer stores a height.
        """
        types = tuple(types)
        next_height = from_height
        if next_height is None:
            # Pin the start now, so that a reconnect before the first frame misses nothing.
            next_height = (await self.status()).latest_height + 1
        delay = retry_delay
        while True:
            try:
                # A server that dies mid-handshake would otherwise hold us for trio-websocket's
                # 60 s default before the retry.
                async with open_websocket_url(self._events_url(next_height, types),
                                              max_message_size=max_message_size,
                                              connect_timeout=EVENTS_CONNECT_TIMEOUT_S,
                                              disconnect_timeout=EVENTS_CONNECT_TIMEOUT_S) as ws:
                    while True:
                        message = await ws.get_message()
                        frame = msgspec.json.decode(message, type=EventFrame)
                        if frame.height != next_height:
                            raise RpcError(0, "stream_out_of_order",
                                           f"expected height {next_height}, got {frame.height}")
                        next_height += 1
                        delay = retry_delay
                        yield frame
            except ConnectionRejected as e:
                raise _rpc_error(e.status_code, e.body or b"") from None
            except ConnectionClosed as e:
                if e.reason.code == CLOSE_HEIGHT_UNAVAILABLE:
                    raise RpcError(404, "height_unavailable", e.reason.reason or "") from None
            except (HandshakeError, OSError, trio.BrokenResourceError):
                pass
            # Backoff between attempts: pacing a retry, not waiting for a state.
            await trio.sleep(delay)
            delay = min(delay * 2, max_retry_delay)
