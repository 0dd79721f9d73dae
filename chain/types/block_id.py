"""The identity of a block as votes and headers name it (Tendermint's BlockID).

A block is identified by its header hash and by the header of the part set it is gossiped in, so
that a vote commits to the exact bytes peers will reassemble. Pure data; no I/O, no state.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import Hash32

# 16 MiB blocks in 64 KiB parts need 256; the cap only stops absurd values early.
MAX_BLOCK_PARTS = 1 << 16


class PartSetHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`total` parts whose Merkle root is `root`."""

    total: Annotated[int, msgspec.Meta(ge=1, le=MAX_BLOCK_PARTS)]
    root: Hash32


class BlockID(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Header hash (`chain.types.block.block_hash`) plus the part set it travels in."""

    hash: Hash32
    parts: PartSetHeader
