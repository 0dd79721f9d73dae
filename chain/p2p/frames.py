"""Encrypted frames of a secret connection: the pure codec, no sockets (h11 style).

On the wire a frame is a 4-byte big-endian length N, then N bytes of ChaCha20-Poly1305 (IETF)
ciphertext: the plaintext followed by its 16-byte tag. The length prefix is the AEAD's associated
data, so it is authenticated too. Each direction has its own key and a frame counter that starts
at 0; the 12-byte nonce is 4 zero bytes then the counter as 8 little-endian bytes, so a frame that
is dropped, replayed or reordered fails authentication.

`FrameOpener` takes bytes as they arrive and hands out plaintexts. It checks the length prefix
against the limit as soon as the 4 bytes are in, before any of the body is read, so a peer cannot
make us buffer more than one frame of at most `max_frame_bytes`. Untrusted input raises
`ProtocolViolation` (FrameTooLarge, FrameTooShort, BadMac) and nothing else; after one of those
the opener is unusable, and so is the connection.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions

from chain.p2p.errors import BadMac, FrameTooLarge, FrameTooShort, ProtocolViolation

LENGTH_BYTES = 4
MAC_BYTES = nacl.bindings.crypto_aead_chacha20poly1305_ietf_ABYTES
KEY_BYTES = nacl.bindings.crypto_aead_chacha20poly1305_ietf_KEYBYTES
# The counter is 64 bits; no connection lives through 2**64 frames, but never reuse a nonce.
MAX_FRAMES = 2**64 - 1

_encrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt
_decrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt


def _nonce(counter: int) -> bytes:
    if counter >= MAX_FRAMES:
        raise ProtocolViolation("frame counter exhausted; the connection must be re-established")
    return bytes(4) + counter.to_bytes(8, "little")


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"a frame key is {KEY_BYTES} bytes")


class FrameSealer:
    """Turns plaintexts into wire frames for one direction of one connection."""

    __slots__ = ("_key", "frames_sealed", "max_frame_bytes")

    def __init__(self, key: bytes, max_frame_bytes: int) -> None:
        _check_key(key)
        self._key = key
        self.frames_sealed = 0
        # The peer refuses larger frames; refusing here names the bug on our side instead.
        self.max_frame_bytes = max_frame_bytes

    def seal(self, plaintext: bytes) -> bytes:
        if len(plaintext) > self.max_frame_bytes:
            raise ValueError(
                f"a {len(plaintext)}-byte message exceeds the frame limit {self.max_frame_bytes}")
        prefix = (len(plaintext) + MAC_BYTES).to_bytes(LENGTH_BYTES, "big")
        ciphertext = _encrypt(plaintext, prefix, _nonce(self.frames_sealed), self._key)
        self.frames_sealed += 1
        return prefix + ciphertext


class FrameOpener:
    """Reassembles and authenticates the frames of one direction from bytes as they arrive.

    `feed` appends received bytes, `next_frame` returns the next plaintext or None when more
    bytes are needed, and `wanted` says how many more bytes would complete the frame in progress
    (so the shell never reads further ahead than one frame). `max_frame_bytes` (plaintext) may be
    raised once the handshake is done.
    """

    __slots__ = ("_key", "_buffer", "_failed", "frames_opened", "max_frame_bytes")

    def __init__(self, key: bytes, max_frame_bytes: int) -> None:
        _check_key(key)
        self._key = key
        self._buffer = bytearray()
        self._failed: ProtocolViolation | None = None
        self.frames_opened = 0
        self.max_frame_bytes = max_frame_bytes

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def wanted(self) -> int:
        """Bytes still missing for the frame in progress (at least 1)."""
        if len(self._buffer) < LENGTH_BYTES:
            return LENGTH_BYTES - len(self._buffer)
        length = int.from_bytes(self._buffer[:LENGTH_BYTES], "big")
        return max(1, LENGTH_BYTES + length - len(self._buffer))

    def _fail(self, error: ProtocolViolation) -> ProtocolViolation:
        self._failed = error
        self._buffer.clear()
        return error

    def next_frame(self) -> bytes | None:
        """The next plaintext, None if incomplete; ProtocolViolation if the peer cheated."""
        if self._failed is not None:
            raise self._failed
        if len(self._buffer) < LENGTH_BYTES:
            return None
        length = int.from_bytes(self._buffer[:LENGTH_BYTES], "big")
        if length > self.max_frame_bytes + MAC_BYTES:
            raise self._fail(FrameTooLarge(length, self.max_frame_bytes + MAC_BYTES))
        if length < MAC_BYTES:
            raise self._fail(FrameTooShort(length, MAC_BYTES))
        end = LENGTH_BYTES + length
        if len(self._buffer) < end:
            return None
        prefix = bytes(self._buffer[:LENGTH_BYTES])
        ciphertext = bytes(self._buffer[LENGTH_BYTES:end])
        try:
            plaintext = _decrypt(ciphertext, prefix, _nonce(self.frames_opened), self._key)
        except nacl.exceptions.CryptoError:
            raise self._fail(BadMac(self.frames_opened)) from None
        del self._buffer[:end]
        self.frames_opened += 1
        return plaintext
