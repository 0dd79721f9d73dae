"""The developer's client: an httpx transport hook that signs every inference request, so the
official `openai` package works unchanged against a gonka API node (the transfer agent, TA):

    from openai import OpenAI
    from api.client import gonka_http_client

    key = "..."  # 64 hex characters: `gonka keys export NAME`
    url = "http://localhost:9000"  # the API node you send to
    client = OpenAI(base_url=f"{url}/v1", api_key="unused",
                    http_client=gonka_http_client(key, url))
    client.chat.completions.create(model=..., messages=[...], stream=True)

Gonka has no API keys: each POST is signed (api.signing) with the developer's account key over
BLAKE3(raw body), the time and the TA's account address; the `Authorization: Bearer unused`
the openai client adds is replaced by the signature. The TA's address is what the developer
signs for: pass it as `transfer_address`, or it is read once from `GET {url}/v1/status` (field
`address`) on the first request and cached.

Requests are timestamped with this machine's clock (Unix ns); the node accepts them within the
chain's window around block time (max_request_age_s, max_request_advance_s): keep the clock
synchronised. Each attempt is signed anew, so a retry is a new inference id.

This module never holds a request body beyond signing it and never reads a response body
(streams pass through untouched), except the one status lookup.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx
import msgspec

from api.signing import AUTHORIZATION, sign_request
from chain.crypto.address import address_to_bytes
from chain.crypto.errors import InvalidAddress
from chain.crypto.secp256k1 import PrivateKey

# openai's own default (10 minutes, 5 s to connect): a completion can take minutes.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)


class TransferAgentUnknown(Exception):
    """The node's account address could not be learnt from GET /v1/status."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot learn the transfer agent address from {url}: {reason} "
                         "(pass transfer_address=... to skip the lookup)")
        self.url, self.reason = url, reason


class _NodeStatus(msgspec.Struct):
    address: str


def node_root(url: str) -> str:
    """The node's root URL: `http://host:9000`, given that or the openai base URL
    `http://host:9000/v1` (with or without a trailing slash)."""
    root = str(url).rstrip("/")
    return root.removesuffix("/v1")


class GonkaAuth(httpx.Auth):
    """Signs each POST (sync and async clients alike); other methods pass unsigned, without the
    placeholder bearer token. `clock` returns Unix ns (the default is the system clock)."""

    requires_request_body = True

    def __init__(self, key: PrivateKey | str, transfer_agent_url: str, *,
                 transfer_address: str | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.key = key if isinstance(key, PrivateKey) else PrivateKey.from_hex(key)
        self.status_url = node_root(transfer_agent_url) + "/v1/status"
        if transfer_address is not None:
            address_to_bytes(transfer_address)
        self.transfer_address = transfer_address
        self.clock = clock

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                                   None]:
        if request.method == "POST" and self.transfer_address is None:
            response = yield httpx.Request("GET", self.status_url)
            response.read()
            self._learn(response)
        request.read()
        self._sign(request)
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request,
                                                                               httpx.Response]:
        if request.method == "POST" and self.transfer_address is None:
            response = yield httpx.Request("GET", self.status_url)
            await response.aread()
            self._learn(response)
        await request.aread()
        self._sign(request)
        yield request

    def _learn(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise TransferAgentUnknown(self.status_url, f"HTTP {response.status_code}")
        try:
            address = msgspec.json.decode(response.content, type=_NodeStatus).address
            address_to_bytes(address)
        except (msgspec.DecodeError, InvalidAddress) as e:
            raise TransferAgentUnknown(self.status_url, str(e)) from None
        self.transfer_address = address

    def _sign(self, request: httpx.Request) -> None:
        request.headers.pop(AUTHORIZATION, None)
        if request.method != "POST":
            return
        assert self.transfer_address is not None
        request.headers.update(sign_request(self.key, request.content, self.transfer_address,
                                            self.clock()))


def gonka_http_client(key: PrivateKey | str, transfer_agent_url: str, *,
                      transfer_address: str | None = None,
                      **client_kwargs) -> httpx.Client:
    """An httpx.Client that signs for the node at `transfer_agent_url` with `key` (a PrivateKey
    or the 64 hex characters `gonka keys export NAME` prints). Its base URL is the node's root,
    so it also works alone: `client.post("/v1/chat/completions", content=body)`. Extra keyword
    arguments go to httpx.Client."""
    client_kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    auth = GonkaAuth(key, transfer_agent_url, transfer_address=transfer_address)
    return httpx.Client(base_url=node_root(transfer_agent_url), auth=auth, **client_kwargs)


def gonka_async_http_client(key: PrivateKey | str, transfer_agent_url: str, *,
                            transfer_address: str | None = None,
                            **client_kwargs) -> httpx.AsyncClient:
    """The httpx.AsyncClient of `gonka_http_client`, for openai.AsyncOpenAI (trio or asyncio)."""
    client_kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    auth = GonkaAuth(key, transfer_agent_url, transfer_address=transfer_address)
    return httpx.AsyncClient(base_url=node_root(transfer_agent_url), auth=auth, **client_kwargs)
