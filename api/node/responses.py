"""What the executor sends its ML node, and what it makes of the answer. Pure: bytes in, bytes
out, no I/O.

The developer's body is signed and stays byte for byte what the chain's prompt_hash covers; the
ML node gets a copy with what the record needs: `logprobs: true` and `top_logprobs` of at least
k (the validators compare top-k logprobs), `return_tokens_as_token_ids: true` (vLLM's option:
logprob tokens read "token_id:N", so validators replay the exact ids; a token's text need not
re-tokenize to itself in a BPE vocabulary), a completion limit (the one escrowed), and, when
streaming, `stream_options.include_usage` (real token counts). The message content stays text.

The answer is split in two:
  * the *recorded* response: the ML node's JSON (or every SSE line) with `id` set to the
    inference id (hex), logprobs included. Its exact bytes are stored as the payload and
    BLAKE3(them) is the response_hash of MsgFinishInference;
  * the *developer's* response: the same with what the developer did not ask for taken out:
    logprobs (null, as OpenAI answers when not asked) or top_logprobs beyond the number asked,
    and the usage chunk of a stream that did not ask for usage (DESIGN.md: logprobs are not
    leaked when not asked). Logprob tokens the developer sees are texts again (unless it asked
    for ids itself): `developer_token_ids` names the ids to turn into text, the caller gets
    their texts (the ML node's /detokenize) and passes them in `texts`.
Token counts come from `usage`; an answer without usage is counted by the caller (prompt with
the ML node's /tokenize, completion = the number of logprob entries: one per generated token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int


class DeveloperAsked(msgspec.Struct, frozen=True):
    """What the developer's own body asked for, of what the executor adds."""

    stream: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    include_usage: bool = False
    token_ids: bool = False  # return_tokens_as_token_ids of its own


TOKEN_ID_PREFIX = "token_id:"


def _obj(body: bytes) -> dict[str, Any]:
    value = msgspec.json.decode(body)
    if not isinstance(value, dict):
        raise ValueError("the body is not a JSON object")
    return value


def developer_asked(body: bytes) -> DeveloperAsked:
    obj = _obj(body)
    options = obj.get("stream_options")
    top = obj.get("top_logprobs")
    return DeveloperAsked(
        stream=obj.get("stream") is True, logprobs=obj.get("logprobs") is True,
        top_logprobs=top if isinstance(top, int) and not isinstance(top, bool) else 0,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        token_ids=obj.get("return_tokens_as_token_ids") is True)


def ml_request_body(body: bytes, *, top_logprobs: int, max_tokens: int) -> bytes:
    """The body for the ML node: the developer's, plus logprobs, top-k, token ids for logprob
    tokens, a completion limit (`max_tokens`, used when the developer named none) and usage in
    streams."""
    obj = _obj(body)
    obj["logprobs"] = True
    obj["return_tokens_as_token_ids"] = True
    asked = obj.get("top_logprobs")
    if not isinstance(asked, int) or isinstance(asked, bool) or asked < top_logprobs:
        obj["top_logprobs"] = top_logprobs
    if not obj.get("max_tokens") and not obj.get("max_completion_tokens"):
        obj["max_tokens"] = max_tokens
    if obj.get("stream") is True:
        options = obj.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        obj["stream_options"] = options
    return msgspec.json.encode(obj)


def _token_id(token: Any) -> int | None:
    if isinstance(token, str) and token.startswith(TOKEN_ID_PREFIX):
        try:
            value = int(token[len(TOKEN_ID_PREFIX):])
        except ValueError:
            return None
        return value if value >= 0 else None
    return None


def _developer_entries(obj: dict[str, Any], asked: DeveloperAsked) -> list[dict[str, Any]]:
    """The logprob entries the developer will see (every choice), when it asked for them."""
    if not asked.logprobs:
        return []
    out = []
    for choice in obj.get("choices") or ():
        logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            out.extend(e for e in logprobs["content"] if isinstance(e, dict))
    return out


def developer_token_ids(obj: dict[str, Any], asked: DeveloperAsked) -> set[int]:
    """The "token_id:N" ids of the developer's view whose text it is to see."""
    if asked.token_ids:
        return set()
    ids = set()
    for entry in _developer_entries(obj, asked):
        tokens = [entry.get("token")]
        top = entry.get("top_logprobs")
        if isinstance(top, list):
            tokens.extend(t.get("token") for t in top[:asked.top_logprobs]
                          if isinstance(t, dict))
        ids.update(i for i in map(_token_id, tokens) if i is not None)
    return ids


def _as_text(item: Any, texts: Mapping[int, str]) -> Any:
    if not isinstance(item, dict):
        return item
    token_id = _token_id(item.get("token"))
    if token_id is None or token_id not in texts:
        return item  # no text known: the id form stays
    return dict(item, token=texts[token_id])


def _for_developer(obj: dict[str, Any], asked: DeveloperAsked,
                   texts: Mapping[int, str] | None = None) -> dict[str, Any]:
    texts = {} if asked.token_ids or texts is None else texts
    out = dict(obj)
    choices = out.get("choices")
    if isinstance(choices, list):
        new_choices = []
        for choice in choices:
            if not isinstance(choice, dict):
                new_choices.append(choice)
                continue
            choice = dict(choice)
            logprobs = choice.get("logprobs")
            if not asked.logprobs:
                if "logprobs" in choice:
                    choice["logprobs"] = None
            elif isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                content = []
                for entry in logprobs["content"]:
                    if isinstance(entry, dict) and isinstance(entry.get("top_logprobs"), list):
                        entry = dict(entry)
                        entry["top_logprobs"] = [_as_text(t, texts) for t in
                                                 entry["top_logprobs"][:asked.top_logprobs]]
                    content.append(_as_text(entry, texts))
                choice["logprobs"] = dict(logprobs, content=content)
            new_choices.append(choice)
        out["choices"] = new_choices
    if asked.stream and not asked.include_usage:
        out.pop("usage", None)
    return out


def _usage(obj: dict[str, Any]) -> Usage | None:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None
    p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(p, int) or not isinstance(c, int) or p < 0 or c < 0 or (p == c == 0):
        return None
    return Usage(p, c)


def _logprob_entries(obj: dict[str, Any]) -> int:
    n = 0
    for choice in obj.get("choices") or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                n += len(logprobs["content"])
    return n


class Recorded(msgspec.Struct, frozen=True):
    """The outcome of one answer: the recorded bytes, the usage it reported (if any) and the
    count of generated tokens seen through logprobs (the fallback completion count)."""

    response: bytes
    usage: Usage | None
    logprob_tokens: int


class ResponseError(ValueError):
    """The ML node's answer is not an OpenAI chat completion."""


def parse_json(raw: bytes, inference_id_hex: str) -> tuple[Recorded, dict[str, Any]]:
    """(what is recorded, the answer with the id set) for a non-streamed answer."""
    try:
        obj = _obj(raw)
    except (msgspec.DecodeError, ValueError) as e:
        raise ResponseError(f"the answer is not a JSON object: {e}") from None
    obj["id"] = inference_id_hex
    return Recorded(msgspec.json.encode(obj), _usage(obj), _logprob_entries(obj)), obj


def developer_json(obj: dict[str, Any], asked: DeveloperAsked,
                   texts: Mapping[int, str] | None = None) -> bytes:
    """The developer's bytes of a parsed answer (`texts`: token id -> its text)."""
    return msgspec.json.encode(_for_developer(obj, asked, texts))


def record_json(raw: bytes, inference_id_hex: str, asked: DeveloperAsked,
                texts: Mapping[int, str] | None = None) -> tuple[Recorded, bytes]:
    """(what is recorded, what the developer gets) for a non-streamed answer."""
    recorded, obj = parse_json(raw, inference_id_hex)
    return recorded, developer_json(obj, asked, texts)


DATA = b"data:"
DONE = b"[DONE]"


class SseLine(msgspec.Struct, frozen=True):
    """One line taken by `SseRecorder.take`: `line` for the developer as is (None: dropped) when
    `obj` is None, else the event to render (`SseRecorder.render`) once the texts of
    `token_ids` are known."""

    line: bytes | None
    obj: dict[str, Any] | None = None
    token_ids: frozenset[int] = frozenset()


class SseRecorder:
    """Feeds on the ML node's SSE lines (without their b"\\n"); `feed` returns the line for
    the developer (None: drop it), and `recorded()` at the end what was recorded: every line
    with the id set, each followed by b"\\n". `take` then `render` is `feed` in two steps, for
    a caller that turns the event's token ids into texts in between."""

    def __init__(self, inference_id_hex: str, asked: DeveloperAsked) -> None:
        self.id = inference_id_hex
        self.asked = asked
        self._lines: list[bytes] = []
        self._usage: Usage | None = None
        self._logprob_tokens = 0
        self._drop_blank = False
        self.done = False

    def feed(self, line: bytes, texts: Mapping[int, str] | None = None) -> bytes | None:
        return self.render(self.take(line), texts)

    def render(self, taken: SseLine, texts: Mapping[int, str] | None = None) -> bytes | None:
        if taken.obj is None:
            return taken.line
        return b"data: " + msgspec.json.encode(_for_developer(taken.obj, self.asked, texts))

    def take(self, line: bytes) -> SseLine:
        line = line.rstrip(b"\r")
        if not line.startswith(DATA):
            self._lines.append(line)
            if not line and self._drop_blank:
                self._drop_blank = False
                return SseLine(None)
            return SseLine(line)
        payload = line[len(DATA):].strip()
        if payload == DONE:
            self.done = True
            self._lines.append(line)
            return SseLine(line)
        try:
            obj = _obj(payload)
        except (msgspec.DecodeError, ValueError):
            raise ResponseError(f"an SSE event is not a JSON object: {line[:200]!r}") from None
        obj["id"] = self.id
        self._lines.append(b"data: " + msgspec.json.encode(obj))
        usage = _usage(obj)
        if usage is not None:
            self._usage = usage
        self._logprob_tokens += _logprob_entries(obj)
        if (not self.asked.include_usage and usage is not None
                and not obj.get("choices")):
            self._drop_blank = True  # the usage-only chunk: not asked for
            return SseLine(None)
        return SseLine(None, obj, frozenset(developer_token_ids(obj, self.asked)))

    def recorded(self) -> Recorded:
        return Recorded(b"".join(line + b"\n" for line in self._lines), self._usage,
                        self._logprob_tokens)
