"""A bounded LRU set of message hashes: the memory of gossip already seen.

Used twice: one network-wide cache so a tx, vote or proposal reaches the node shell once however
many peers relay it (which is what stops gossip loops), and a small one per peer of what that peer
is known to have, so a broadcast skips it. Pure: no I/O, no clock; memory is bounded by
`capacity` entries.
"""

from __future__ import annotations

from collections import OrderedDict


class SeenCache:
    """The `capacity` most recently added or touched keys; older ones are forgotten."""

    __slots__ = ("_keys", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a seen-cache holds at least one key")
        self.capacity = capacity
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def add(self, key: bytes) -> bool:
        """Remember `key`; True if it is new, False if it was already there (now refreshed)."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return True
