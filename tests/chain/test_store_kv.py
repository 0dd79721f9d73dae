"""Write overlays and the write set that feeds the app hash: reads see writes first, nothing
reaches the base until kept, scans merge in key order, and the write-set leaves and app hash
follow the documented encoding exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import native
from chain.crypto.hashing import blake3_256
from chain.store.kv import (
    ZERO_HASH,
    EmptyReader,
    Overlay,
    leaf,
    next_app_hash,
    prefix_end,
    scan_prefix,
    write_set,
    write_set_root,
)


def base_with(**items: bytes) -> Overlay:
    o = Overlay(EmptyReader())
    for k, v in items.items():
        o.set(k.encode(), v)
    return o


def test_an_overlay_reads_its_writes_first_and_keeps_them_from_the_base():
    # Given a base holding a=1, b=2 and an overlay on it,
    base = base_with(a=b"1", b=b"2")
    top = base.child()
    # when the overlay changes a, deletes b and adds c,
    top.set(b"a", b"9")
    top.delete(b"b")
    top.set(b"c", b"3")
    # then it reads its own writes, and the base is unchanged until the writes are kept.
    assert (top.get(b"a"), top.get(b"b"), top.get(b"c")) == (b"9", None, b"3")
    assert (base.get(b"a"), base.get(b"b"), base.get(b"c")) == (b"1", b"2", None)
    top.write_into(base)
    assert (base.get(b"a"), base.get(b"b"), base.get(b"c")) == (b"9", None, b"3")


def test_a_scan_merges_overlay_and_base_in_key_order_without_deleted_keys():
    base = base_with(k1=b"a", k3=b"c", k5=b"e", z=b"z")
    top = base.child()
    top.set(b"k2", b"b")
    top.set(b"k3", b"C")
    top.delete(b"k5")
    assert top.scan(b"k", b"l") == [(b"k1", b"a"), (b"k2", b"b"), (b"k3", b"C")]
    assert scan_prefix(top, b"k") == top.scan(b"k", b"l")
    assert top.scan(b"k2", None) == [(b"k2", b"b"), (b"k3", b"C"), (b"z", b"z")]


def test_an_overlay_writes_only_into_its_own_base():
    a, b = base_with(), base_with()
    with pytest.raises(ValueError):
        a.child().write_into(b)


def test_keys_and_values_must_be_bytes():
    o = base_with()
    with pytest.raises(TypeError):
        o.set("k", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        o.set(b"k", bytearray(b"v"))  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix, end", [
    (b"ab", b"ac"), (b"a\xff", b"b"), (b"\xff\xff", None), (b"a\xff\xff", b"b"),
])
def test_prefix_end_is_the_first_key_after_the_prefix(prefix, end):
    assert prefix_end(prefix) == end


def test_the_leaf_encoding_is_length_prefixed_and_marks_deletions():
    assert leaf(b"key", b"val") == b"\x00\x00\x00\x03key\x01val"
    assert leaf(b"key", None) == b"\x00\x00\x00\x03key\x00"
    # The split between key and value cannot be moved.
    assert leaf(b"ab", b"c") != leaf(b"a", b"bc")
    # An empty value differs from a deletion.
    assert leaf(b"k", b"") != leaf(b"k", None)


def test_the_app_hash_chains_the_previous_hash_and_the_sorted_write_set_root():
    # Given the same writes made in two different orders,
    one, two = base_with(), base_with()
    for k, v in [(b"b", b"2"), (b"a", b"1"), (b"c", None)]:
        one.set(k, v) if v is not None else one.delete(k)
    for k, v in [(b"c", None), (b"a", b"1"), (b"b", b"2")]:
        two.set(k, v) if v is not None else two.delete(k)
    # then the write set is sorted by key and the app hash is the documented formula.
    assert write_set(one.writes) == [(b"a", b"1"), (b"b", b"2"), (b"c", None)]
    root = native.merkle_root([leaf(b"a", b"1"), leaf(b"b", b"2"), leaf(b"c", None)])
    assert write_set_root(write_set(one.writes)) == root
    assert next_app_hash(ZERO_HASH, one.writes) == blake3_256(ZERO_HASH + root)
    assert next_app_hash(ZERO_HASH, one.writes) == next_app_hash(ZERO_HASH, two.writes)
    # An empty block still moves the chain on, and another previous hash gives another hash.
    empty = next_app_hash(ZERO_HASH, {})
    assert empty == blake3_256(ZERO_HASH + native.EMPTY_ROOT)
    assert next_app_hash(empty, one.writes) != next_app_hash(ZERO_HASH, one.writes)
    with pytest.raises(ValueError):
        next_app_hash(b"short", {})


keys = st.binary(min_size=0, max_size=3)
ops = st.lists(st.tuples(st.sampled_from(["set", "delete", "push", "keep", "drop"]), keys,
                         st.binary(max_size=2)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops=ops, start=keys, end=st.none() | keys)
def test_nested_overlays_behave_like_a_stack_of_dicts(ops, start, end):
    # Given a stack of overlays and a model stack of dicts receiving the same operations,
    stack = [Overlay(EmptyReader())]
    model: list[dict[bytes, bytes | None]] = [{}]

    def view(level: int) -> dict[bytes, bytes]:
        merged: dict[bytes, bytes | None] = {}
        for layer in model[: level + 1]:
            merged.update(layer)
        return {k: v for k, v in merged.items() if v is not None}

    for op, key, value in ops:
        if op == "set":
            stack[-1].set(key, value)
            model[-1][key] = value
        elif op == "delete":
            stack[-1].delete(key)
            model[-1][key] = None
        elif op == "push":
            stack.append(stack[-1].child())
            model.append({})
        elif op in ("keep", "drop") and len(stack) > 1:
            top, layer = stack.pop(), model.pop()
            if op == "keep":
                top.write_into(stack[-1])
                model[-1].update(layer)
    # then every level reads and scans like the merged dicts, in key order.
    for level, overlay in enumerate(stack):
        expected = view(level)
        want = sorted((k, v) for k, v in expected.items()
                      if k >= start and (end is None or k < end))
        assert overlay.scan(start, end) == want
        for k in {key for _, key, _ in ops}:
            assert overlay.get(k) == expected.get(k)
