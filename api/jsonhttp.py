"""The plain JSON conventions of the API node's small blueprints (admin node routes, PoC proofs
and ML-node callbacks): msgspec-encoded responses, errors as `{"error": message}`, and request
bodies decoded (= validated) into a type under a size limit. The OpenAI-compatible public
routes have their own error shape (api/node/responses.py)."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from quart import Blueprint, Response, request

T = TypeVar("T")


class ErrorBody(msgspec.Struct, frozen=True):
    error: str


class BadBody(Exception):
    """A request body that is too large or does not decode (answered 400)."""


def json_response(obj: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status=status, content_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response(ErrorBody(message), status)


async def read_body(type_: type[T], limit: int) -> T:
    data = await request.get_data(as_text=False)
    if len(data) > limit:
        raise BadBody(f"body over {limit} bytes")
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.DecodeError as e:
        raise BadBody(str(e)) from None


def answer_bad_bodies(bp: Blueprint) -> None:
    """Make `bp` answer BadBody with 400 "invalid body: ..."."""

    @bp.errorhandler(BadBody)
    async def on_bad_body(e: BadBody) -> Response:
        return error_response(400, f"invalid body: {e}")
