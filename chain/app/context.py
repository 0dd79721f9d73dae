"""What a handler sees while it runs: the state overlay, the block it runs in, and where its
events and validator updates go. Also the `Module` shape every module folder exports, and the
typed value helpers modules use to read and write state.

A Context is cheap: `child()` opens a nested overlay (one tx inside a block), `keep(child)` merges
it back, and dropping the child discards everything it did. Handlers must never read the clock,
randomness or anything outside the context: every node runs the same handlers on the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from chain.app.abci import Attribute, Event, ValidatorUpdate
from chain.store.kv import KVReader, Overlay
from chain.types.codec import encode

T = TypeVar("T")


@dataclass
class Context:
    store: Overlay
    chain_id: str
    height: int
    time_ns: int
    # How messages reach their handlers (MsgExec dispatches its inner messages through this).
    dispatch: Callable[[Context, Any], None]
    events: list[Event] = field(default_factory=list)
    validator_updates: list[ValidatorUpdate] = field(default_factory=list)

    def child(self) -> Context:
        return Context(store=self.store.child(), chain_id=self.chain_id, height=self.height,
                       time_ns=self.time_ns, dispatch=self.dispatch)

    def keep(self, child: Context) -> None:
        """Make what `child` did part of this context."""
        child.store.write_into(self.store)
        self.events.extend(child.events)
        self.validator_updates.extend(child.validator_updates)

    def emit(self, type_: str, **attributes: object) -> None:
        self.events.append(
            Event(type=type_, attributes=tuple(Attribute(k, str(v)) for k, v in attributes.items()))
        )


Handler = Callable[[Context, Any], None]
# A query reads committed state and returns something msgspec can encode as JSON.
Query = Callable[[KVReader, Mapping[str, str]], object]
BlockHook = Callable[[Context], None]
# Writes a module's genesis state (after params, validators and balances are in place).
GenesisHook = Callable[[Context, Any], None]


@dataclass(frozen=True)
class Module:
    """A module as the app sees it. `handlers` maps message types to their handler; `queries`
    maps the path after "<name>/" to a query; hooks run at the start and end of every block."""

    name: str
    handlers: Mapping[type, Handler] = field(default_factory=dict)
    queries: Mapping[str, Query] = field(default_factory=dict)
    begin_block: BlockHook | None = None
    end_block: BlockHook | None = None
    init_genesis: GenesisHook | None = None


# Typed state values: canonical MessagePack in, trusted decode out (we wrote these bytes).

def get_value(store: KVReader, key: bytes, type_: type[T]) -> T | None:
    raw = store.get(key)
    return None if raw is None else msgspec.msgpack.decode(raw, type=type_)


def put_value(store: Overlay, key: bytes, value: object) -> None:
    store.set(key, encode(value))


def get_int(store: KVReader, key: bytes) -> int:
    """An integer value, 0 when absent."""
    raw = store.get(key)
    return 0 if raw is None else msgspec.msgpack.decode(raw, type=int)


def put_int(store: Overlay, key: bytes, value: int) -> None:
    """Store an integer; 0 deletes the key, so that absent and zero are one state."""
    if value == 0:
        store.delete(key)
    else:
        store.set(key, encode(value))


def u64(n: int) -> bytes:
    """Big-endian 8 bytes: integers in keys sort numerically."""
    return n.to_bytes(8, "big")
