"""The broker's calls to one ML node's control API (mlnode/service/app.py), typed.

Every call raises `Unreachable` when no HTTP answer comes (connection refused, reset, or the
caller's cancel scope ran out: bound calls at the call site), `Refused` with the node's status,
message and mode for any non-2xx answer (409: the node's mode refuses the command), and
`Unreachable` for a 2xx whose body is not the promised type (a node that answers garbage is no
better than a silent one).
"""

from __future__ import annotations

import httpx
import msgspec

from chain.types.poc import PowInitRequest, ProofBatch, ValidatedBatch
from mlnode.service.schema import ErrorView, InferenceUpRequest, PowStatus, PowView, StateView


class MlNodeError(Exception):
    pass


class Unreachable(MlNodeError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"ML node {url} does not answer: {reason}")
        self.url, self.reason = url, reason


class Refused(MlNodeError):
    def __init__(self, url: str, path: str, status: int, message: str, mode: str | None) -> None:
        super().__init__(f"ML node {url} refused {path}: HTTP {status}: {message}")
        self.url, self.path, self.status, self.message, self.mode = (url, path, status, message,
                                                                     mode)


class _Models(msgspec.Struct):
    class _Card(msgspec.Struct):
        id: str

    data: list[_Card]


class MlNodeClient:
    """Control calls to the ML node at `url` through a shared `httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")

    async def _call(self, method: str, path: str, type_: type, body: object = None):
        try:
            r = await self.http.request(
                method, self.url + path,
                content=None if body is None else msgspec.json.encode(body),
                headers={"content-type": "application/json"} if body is not None else None)
        except httpx.HTTPError as e:
            raise Unreachable(self.url, f"{type(e).__name__}: {e}") from None
        if not r.is_success:
            try:
                err = msgspec.json.decode(r.content, type=ErrorView)
                message, mode = err.error, err.state
            except msgspec.DecodeError:
                message, mode = r.text[:300], None
            raise Refused(self.url, path, r.status_code, message, mode)
        try:
            return msgspec.json.decode(r.content, type=type_)
        except msgspec.DecodeError as e:
            raise Unreachable(self.url, f"{path} answered a body that does not decode: {e}"
                              ) from None

    async def state(self) -> StateView:
        return await self._call("GET", "/api/v1/state", StateView)

    async def pow_status(self) -> PowStatus:
        return await self._call("GET", "/api/v1/pow/status", PowStatus)

    async def served_models(self) -> list[str]:
        return [c.id for c in (await self._call("GET", "/v1/models", _Models)).data]

    async def stop(self) -> None:
        await self._call("POST", "/api/v1/stop", msgspec.Raw)

    async def pow_init(self, request: PowInitRequest, *, validate: bool) -> PowStatus:
        path = "/api/v1/pow/init/validate" if validate else "/api/v1/pow/init/generate"
        return (await self._call("POST", path, PowView, request)).pow_status

    async def inference_up(self, model: str) -> None:
        await self._call("POST", "/api/v1/inference/up", msgspec.Raw,
                         InferenceUpRequest(model=model))

    async def validate(self, batch: ProofBatch) -> ValidatedBatch:
        return await self._call("POST", "/api/v1/pow/validate", ValidatedBatch, batch)
