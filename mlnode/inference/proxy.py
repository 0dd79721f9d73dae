"""Reverse proxy from the ML node's HTTP service to the running vLLM server.

Forwards OpenAI-style requests (/v1/chat/completions, /v1/completions, /v1/models, /tokenize,
/detokenize, ...) to the manager's vLLM and streams the answer back chunk by chunk, so SSE
(`"stream": true`) arrives as vLLM produces it. Hop-by-hop headers are dropped both ways.
No backend: 503 JSON error; vLLM unreachable: 502 JSON error. Bodies are passed through
untouched: validating OpenAI requests is vLLM's job, not ours.

Uses the manager's shared httpx.AsyncClient (one connection pool for the whole service).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

import httpx
import msgspec
import quart
import trio

if TYPE_CHECKING:
    from mlnode.inference.vllm_server import InferenceManager

# RFC 9110 7.6.1 hop-by-hop headers, plus those the server or client recomputes.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
PROXIED_PREFIXES = ("/v1/",)
PROXIED_PATHS = frozenset({"/tokenize", "/detokenize", "/health", "/version", "/ping"})


class ProxyError(msgspec.Struct):
    error: str


def is_proxied(path: str) -> bool:
    """Paths that go to vLLM."""
    return path.startswith(PROXIED_PREFIXES) or path in PROXIED_PATHS


def _error(status: int, message: str) -> quart.Response:
    return quart.Response(
        msgspec.json.encode(ProxyError(message)),
        status=status,
        content_type="application/json",
    )


def _headers(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """End-to-end headers only: hop-by-hop ones and those named in Connection are dropped."""
    pairs = list(pairs)
    listed = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(n, v) for n, v in pairs if n.lower() not in HOP_BY_HOP and n.lower() not in listed]


async def forward(
    manager: InferenceManager,
    request: quart.Request,
    path: str,
    *,
    client: httpx.AsyncClient | None = None,
) -> quart.Response:
    """Send `request` to vLLM at `path` (query string kept) and stream its response back."""
    if not path.startswith("/"):
        path = "/" + path
    if not manager.is_running():
        return _error(503, "No vLLM backend available")
    if not manager.is_ready():
        return _error(503, "vLLM backend not ready")
    client = client or manager.client
    url = manager.base_url + path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    body = await request.get_data(cache=False, as_text=False)
    upstream_request = client.build_request(
        request.method, url, headers=_headers(request.headers.items()), content=body
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        return _error(502, f"vLLM backend unreachable: {exc.__class__.__name__}: {exc}")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            # Headers are already sent; all we can do is end the stream early.
            return
        finally:
            with trio.CancelScope(shield=True):
                await upstream.aclose()

    response = quart.Response(
        relay(), status=upstream.status_code, headers=_headers(upstream.headers.multi_items())
    )
    # Generations may stream for minutes; the upstream read timeout bounds silence instead.
    response.timeout = None
    return response
