# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled hot paths: batch signature verification and BLAKE3 Merkle trees.

The BLAKE3 compression function and hasher are written here from the BLAKE3 specification
(https://github.com/BLAKE3-team/BLAKE3-specs), in portable C through Cython, and are checked
against the `blake3` package by the tests. Signature checks call the system's libsecp256k1 and
libsodium. Every batch entry point copies its Python inputs into C arrays while holding the GIL,
then releases the GIL and spreads the work over all cores with OpenMP.

This module must give exactly the answers of `native.fallback` on every input: the tests run both
on the same vectors. It must never raise for a bad signature, key or message: those are `False`.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cython.parallel cimport prange
from openmp cimport omp_get_max_threads
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from native.merkle_spec import EMPTY_ROOT, LEAF_KEY, NODE_KEY, Proof


# --------------------------------------------------------------------------------------------
# System libraries
# --------------------------------------------------------------------------------------------

cdef extern from "secp256k1.h" nogil:
    ctypedef struct secp256k1_context:
        pass
    ctypedef struct secp256k1_pubkey:
        unsigned char data[64]
    ctypedef struct secp256k1_ecdsa_signature:
        unsigned char data[64]
    unsigned int SECP256K1_CONTEXT_VERIFY
    secp256k1_context* secp256k1_context_create(unsigned int flags)
    int secp256k1_ec_pubkey_parse(const secp256k1_context* ctx, secp256k1_pubkey* pubkey,
                                  const unsigned char* input, size_t inputlen)
    int secp256k1_ecdsa_signature_parse_compact(const secp256k1_context* ctx,
                                                secp256k1_ecdsa_signature* sig,
                                                const unsigned char* input64)
    int secp256k1_ecdsa_verify(const secp256k1_context* ctx, const secp256k1_ecdsa_signature* sig,
                               const unsigned char* msghash32, const secp256k1_pubkey* pubkey)

cdef extern from "sodium.h" nogil:
    int sodium_init()
    int crypto_hash_sha256(unsigned char* out, const unsigned char* data, unsigned long long inlen)
    int crypto_sign_ed25519_verify_detached(const unsigned char* sig, const unsigned char* m,
                                            unsigned long long mlen, const unsigned char* pk)


if sodium_init() < 0:
    raise ImportError("libsodium failed to initialise")

# A verification-only context is read-only after creation, so all threads may share it.
cdef const secp256k1_context* _SECP = secp256k1_context_create(SECP256K1_CONTEXT_VERIFY)
if _SECP == NULL:
    raise ImportError("libsecp256k1 failed to create a context")


# --------------------------------------------------------------------------------------------
# Packing Python inputs into C arrays (with the GIL)
# --------------------------------------------------------------------------------------------

cdef class _Packed:
    """Borrowed pointers to a sequence of bytes objects, which this object keeps alive."""
    cdef object keep
    cdef const unsigned char** ptrs
    cdef Py_ssize_t* lens
    cdef Py_ssize_t n

    def __cinit__(self, items):
        cdef Py_ssize_t i
        cdef bytes b
        # Only bytes-like objects: bytes(5) would silently make five zero bytes.
        self.keep = [x if type(x) is bytes else bytes(memoryview(x)) for x in items]
        self.n = len(self.keep)
        self.ptrs = <const unsigned char**>malloc(max(self.n, 1) * sizeof(unsigned char*))
        self.lens = <Py_ssize_t*>malloc(max(self.n, 1) * sizeof(Py_ssize_t))
        if self.ptrs == NULL or self.lens == NULL:
            raise MemoryError()
        for i in range(self.n):
            b = self.keep[i]
            self.ptrs[i] = <const unsigned char*>PyBytes_AS_STRING(b)
            self.lens[i] = PyBytes_GET_SIZE(b)

    def __dealloc__(self):
        free(self.ptrs)
        free(self.lens)


# Below this many signatures a batch is checked on the calling thread: waking the thread team
# costs more than it saves, and under CPU contention it can cost far more.
DEF SIG_PARALLEL_MIN = 16


cdef inline int _threads(Py_ssize_t n) noexcept nogil:
    return omp_get_max_threads() if n >= SIG_PARALLEL_MIN else 1


cdef _check_lengths(_Packed a, _Packed b, _Packed c):
    if not (a.n == b.n == c.n):
        raise ValueError(
            f"pubkeys, msgs and sigs must have the same length, got {a.n}, {b.n} and {c.n}")


# --------------------------------------------------------------------------------------------
# Batch signature verification
# --------------------------------------------------------------------------------------------

cdef inline bint _verify_secp256k1_one(const secp256k1_pubkey* pubkey, bint pubkey_ok,
                                       const unsigned char* msg, Py_ssize_t msglen,
                                       const unsigned char* sig, Py_ssize_t siglen) noexcept nogil:
    cdef secp256k1_ecdsa_signature signature
    cdef unsigned char digest[32]
    if not pubkey_ok or siglen != 64:
        return False
    if not secp256k1_ecdsa_signature_parse_compact(_SECP, &signature, sig):
        return False
    crypto_hash_sha256(digest, msg, <unsigned long long>msglen)
    # libsecp256k1 rejects signatures whose s is in the upper half of the order (low-S rule).
    return secp256k1_ecdsa_verify(_SECP, &signature, digest, pubkey) == 1


cdef inline bint _verify_ed25519_one(const unsigned char* pk, Py_ssize_t pklen,
                                     const unsigned char* msg, Py_ssize_t msglen,
                                     const unsigned char* sig, Py_ssize_t siglen) noexcept nogil:
    if pklen != 32 or siglen != 64:
        return False
    return crypto_sign_ed25519_verify_detached(sig, msg, <unsigned long long>msglen, pk) == 0


def verify_batch_secp256k1(pubkeys, msgs, sigs):
    """Verify (compressed pubkey, message, 64-byte r||s over SHA-256(message)) triples."""
    cdef _Packed p = _Packed(pubkeys), m = _Packed(msgs), s = _Packed(sigs)
    _check_lengths(p, m, s)
    cdef Py_ssize_t i, j, distinct = 0, n = p.n
    cdef bytearray out = bytearray(n)
    cdef unsigned char* res = <unsigned char*>out if n else NULL
    # A batch usually holds many signatures by few keys: each distinct key is decompressed once.
    # slot[i] is the distinct-key number of entry i; first[j] the first entry with key j.
    cdef Py_ssize_t* slot = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* first = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
    cdef secp256k1_pubkey* parsed = <secp256k1_pubkey*>malloc(max(n, 1) * sizeof(secp256k1_pubkey))
    cdef unsigned char* parsed_ok = <unsigned char*>malloc(max(n, 1))
    try:
        if slot == NULL or first == NULL or parsed == NULL or parsed_ok == NULL:
            raise MemoryError()
        slots = {}
        for i in range(n):
            at = slots.setdefault(p.keep[i], distinct)
            if at == distinct:
                first[distinct] = i
                distinct += 1
            slot[i] = at
        with nogil:
            for j in prange(distinct, schedule="guided", num_threads=_threads(distinct)):
                parsed_ok[j] = p.lens[first[j]] == 33 and secp256k1_ec_pubkey_parse(
                    _SECP, &parsed[j], p.ptrs[first[j]], 33)
            for i in prange(n, schedule="guided", num_threads=_threads(n)):
                res[i] = _verify_secp256k1_one(&parsed[slot[i]], parsed_ok[slot[i]],
                                               m.ptrs[i], m.lens[i], s.ptrs[i], s.lens[i])
    finally:
        free(slot)
        free(first)
        free(parsed)
        free(parsed_ok)
    return [bool(x) for x in out]


def verify_batch_ed25519(pubkeys, msgs, sigs):
    """Verify (32-byte pubkey, message, 64-byte signature) ed25519 triples."""
    cdef _Packed p = _Packed(pubkeys), m = _Packed(msgs), s = _Packed(sigs)
    _check_lengths(p, m, s)
    cdef Py_ssize_t i, n = p.n
    cdef bytearray out = bytearray(n)
    cdef unsigned char* res = <unsigned char*>out if n else NULL
    with nogil:
        for i in prange(n, schedule="guided", num_threads=_threads(n)):
            res[i] = _verify_ed25519_one(p.ptrs[i], p.lens[i], m.ptrs[i], m.lens[i],
                                         s.ptrs[i], s.lens[i])
    return [bool(x) for x in out]


# --------------------------------------------------------------------------------------------
# BLAKE3, from the specification
# --------------------------------------------------------------------------------------------

DEF BLOCK_LEN = 64
DEF CHUNK_LEN = 1024
DEF MAX_DEPTH = 54  # 2**54 chunks of 1 KiB: more than any input this module will ever see

cdef enum:
    CHUNK_START = 1
    CHUNK_END = 2
    PARENT = 4
    ROOT = 8
    KEYED_HASH = 16

cdef uint32_t IV[8]
IV[:] = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
         0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19]


cdef inline uint32_t _rotr(uint32_t x, int n) noexcept nogil:
    return (x >> n) | (x << (32 - n))


cdef inline void _g(uint32_t* s, int a, int b, int c, int d, uint32_t mx, uint32_t my) noexcept nogil:
    s[a] = s[a] + s[b] + mx
    s[d] = _rotr(s[d] ^ s[a], 16)
    s[c] = s[c] + s[d]
    s[b] = _rotr(s[b] ^ s[c], 12)
    s[a] = s[a] + s[b] + my
    s[d] = _rotr(s[d] ^ s[a], 8)
    s[c] = s[c] + s[d]
    s[b] = _rotr(s[b] ^ s[c], 7)


cdef inline void _round(uint32_t* s, const uint32_t* m) noexcept nogil:
    # Mix the columns, then the diagonals.
    _g(s, 0, 4, 8, 12, m[0], m[1])
    _g(s, 1, 5, 9, 13, m[2], m[3])
    _g(s, 2, 6, 10, 14, m[4], m[5])
    _g(s, 3, 7, 11, 15, m[6], m[7])
    _g(s, 0, 5, 10, 15, m[8], m[9])
    _g(s, 1, 6, 11, 12, m[10], m[11])
    _g(s, 2, 7, 8, 13, m[12], m[13])
    _g(s, 3, 4, 9, 14, m[14], m[15])


cdef inline void _permute(uint32_t* m) noexcept nogil:
    # MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
    cdef uint32_t t[16]
    t[0] = m[2]; t[1] = m[6]; t[2] = m[3]; t[3] = m[10]
    t[4] = m[7]; t[5] = m[0]; t[6] = m[4]; t[7] = m[13]
    t[8] = m[1]; t[9] = m[11]; t[10] = m[12]; t[11] = m[5]
    t[12] = m[9]; t[13] = m[14]; t[14] = m[15]; t[15] = m[8]
    memcpy(m, t, sizeof(t))


cdef inline void _compress(const uint32_t* cv, const uint32_t* block_words, uint64_t counter,
                           uint32_t block_len, uint32_t flags, uint32_t* out8) noexcept nogil:
    """The compression function, truncated to the 8-word chaining value."""
    cdef uint32_t s[16]
    cdef uint32_t m[16]
    cdef int r
    memcpy(m, block_words, sizeof(m))
    s[0] = cv[0]; s[1] = cv[1]; s[2] = cv[2]; s[3] = cv[3]
    s[4] = cv[4]; s[5] = cv[5]; s[6] = cv[6]; s[7] = cv[7]
    s[8] = IV[0]; s[9] = IV[1]; s[10] = IV[2]; s[11] = IV[3]
    s[12] = <uint32_t>counter
    s[13] = <uint32_t>(counter >> 32)
    s[14] = block_len
    s[15] = flags
    for r in range(7):
        _round(s, m)
        if r < 6:
            _permute(m)
    for r in range(8):
        out8[r] = s[r] ^ s[r + 8]


cdef inline void _words_from_le(const unsigned char* b, Py_ssize_t n, uint32_t* words) noexcept nogil:
    """Load up to 64 bytes as 16 little-endian words, zero padded."""
    cdef unsigned char buf[BLOCK_LEN]
    cdef int i
    memset(buf, 0, BLOCK_LEN)
    memcpy(buf, b, n)
    for i in range(16):
        words[i] = (<uint32_t>buf[4 * i] | (<uint32_t>buf[4 * i + 1] << 8)
                    | (<uint32_t>buf[4 * i + 2] << 16) | (<uint32_t>buf[4 * i + 3] << 24))


cdef inline void _words_to_le(const uint32_t* words, unsigned char* out32) noexcept nogil:
    cdef int i
    for i in range(8):
        out32[4 * i] = <unsigned char>(words[i])
        out32[4 * i + 1] = <unsigned char>(words[i] >> 8)
        out32[4 * i + 2] = <unsigned char>(words[i] >> 16)
        out32[4 * i + 3] = <unsigned char>(words[i] >> 24)


cdef inline void _chunk_cv(const uint32_t* key, const unsigned char* data, Py_ssize_t n,
                           uint64_t chunk_counter, uint32_t flags, bint is_root,
                           uint32_t* out8) noexcept nogil:
    """Chaining value (or root output, when `is_root`) of one chunk of 0..1024 bytes."""
    cdef uint32_t cv[8]
    cdef uint32_t words[16]
    cdef uint32_t start = CHUNK_START
    memcpy(cv, key, 32)
    while n > BLOCK_LEN:
        _words_from_le(data, BLOCK_LEN, words)
        _compress(cv, words, chunk_counter, BLOCK_LEN, flags | start, cv)
        start = 0
        data += BLOCK_LEN
        n -= BLOCK_LEN
    _words_from_le(data, n, words)
    _compress(cv, words, chunk_counter, <uint32_t>n, flags | start | CHUNK_END | (ROOT if is_root else 0), out8)


cdef inline void _parent_cv(const uint32_t* key, const uint32_t* left, const uint32_t* right,
                            uint32_t flags, bint is_root, uint32_t* out8) noexcept nogil:
    cdef uint32_t words[16]
    memcpy(words, left, 32)
    memcpy(&words[8], right, 32)
    _compress(key, words, 0, BLOCK_LEN, flags | PARENT | (ROOT if is_root else 0), out8)


cdef void _blake3(const uint32_t* key, uint32_t flags, const unsigned char* data, Py_ssize_t n,
                  unsigned char* out32) noexcept nogil:
    """The 32-byte BLAKE3 output of `data` (the incremental tree of the spec, done in one pass)."""
    cdef uint32_t stack[MAX_DEPTH][8]
    cdef uint32_t cv[8]
    cdef int depth = 0
    cdef uint64_t chunk = 0, total
    if n <= CHUNK_LEN:
        _chunk_cv(key, data, n, 0, flags, True, cv)
        _words_to_le(cv, out32)
        return
    # Every chunk but the last is followed by more input, so it is merged eagerly: after chunk
    # number k (1-based) is pushed, one parent is made per trailing zero bit of k.
    while n > CHUNK_LEN:
        _chunk_cv(key, data, CHUNK_LEN, chunk, flags, False, cv)
        data += CHUNK_LEN
        n -= CHUNK_LEN
        chunk += 1
        total = chunk
        while total & 1 == 0:
            depth -= 1
            _parent_cv(key, stack[depth], cv, flags, False, cv)
            total >>= 1
        memcpy(stack[depth], cv, 32)
        depth += 1
    # The last chunk, then the lazy merges down the stack; the final parent is the root.
    _chunk_cv(key, data, n, chunk, flags, False, cv)
    while depth > 0:
        depth -= 1
        _parent_cv(key, stack[depth], cv, flags, depth == 0, cv)
    _words_to_le(cv, out32)


cdef void _key_words(const unsigned char* key32, uint32_t* out8) noexcept nogil:
    cdef uint32_t words[16]
    _words_from_le(key32, 32, words)
    memcpy(out8, words, 32)


def blake3(data, key=None):
    """BLAKE3-256 of `data` (regular hash, or keyed hash with a 32-byte `key`)."""
    cdef bytes b = data if type(data) is bytes else bytes(memoryview(data))
    cdef uint32_t k[8]
    cdef uint32_t flags = 0
    cdef unsigned char out[32]
    if key is None:
        memcpy(k, IV, 32)
    else:
        key = bytes(memoryview(key))
        if len(key) != 32:
            raise ValueError(f"a BLAKE3 key is 32 bytes, got {len(key)}")
        _key_words(<const unsigned char*>PyBytes_AS_STRING(key), k)
        flags = KEYED_HASH
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    with nogil:
        _blake3(k, flags, p, n, out)
    return PyBytes_FromStringAndSize(<char*>out, 32)


# --------------------------------------------------------------------------------------------
# Merkle trees (shape and domain separation: native/MERKLE.md)
# --------------------------------------------------------------------------------------------

cdef uint32_t _LEAF_KEY[8]
cdef uint32_t _NODE_KEY[8]
_key_words(<const unsigned char*>PyBytes_AS_STRING(LEAF_KEY), _LEAF_KEY)
_key_words(<const unsigned char*>PyBytes_AS_STRING(NODE_KEY), _NODE_KEY)

# Below this many hashes in a level, threads cost more than they save.
DEF PARALLEL_MIN = 2048


cdef inline void _node(const unsigned char* left, const unsigned char* right,
                       unsigned char* out32) noexcept nogil:
    """Inner node: keyed BLAKE3 of exactly 64 bytes, which is one compression."""
    cdef uint32_t words[16]
    cdef uint32_t cv[8]
    _words_from_le(left, 32, words)
    _words_from_le(right, 32, &words[8])
    _compress(_NODE_KEY, words, 0, BLOCK_LEN, CHUNK_START | CHUNK_END | ROOT | KEYED_HASH, cv)
    _words_to_le(cv, out32)


cdef void _hash_leaves(_Packed leaves, unsigned char* out) noexcept nogil:
    cdef Py_ssize_t i, n = leaves.n
    if n >= PARALLEL_MIN:
        for i in prange(n, schedule="static"):
            _blake3(_LEAF_KEY, KEYED_HASH, leaves.ptrs[i], leaves.lens[i], out + 32 * i)
    else:
        for i in range(n):
            _blake3(_LEAF_KEY, KEYED_HASH, leaves.ptrs[i], leaves.lens[i], out + 32 * i)


cdef Py_ssize_t _next_level(const unsigned char* cur, Py_ssize_t n, unsigned char* nxt) noexcept nogil:
    """Hash pairs of one level into the next; an odd last node moves up unchanged."""
    cdef Py_ssize_t i, pairs = n // 2
    if pairs >= PARALLEL_MIN:
        for i in prange(pairs, schedule="static"):
            _node(cur + 64 * i, cur + 64 * i + 32, nxt + 32 * i)
    else:
        for i in range(pairs):
            _node(cur + 64 * i, cur + 64 * i + 32, nxt + 32 * i)
    if n & 1:
        memcpy(nxt + 32 * pairs, cur + 32 * (n - 1), 32)
    return pairs + (n & 1)


cdef class _Levels:
    """Two buffers that the levels of one tree alternate between (threads never read what
    another thread is writing)."""
    cdef unsigned char* cur
    cdef unsigned char* nxt
    cdef Py_ssize_t n

    def __cinit__(self, _Packed leaves):
        self.n = leaves.n
        self.cur = <unsigned char*>malloc(32 * max(self.n, 1))
        self.nxt = <unsigned char*>malloc(32 * max((self.n + 1) // 2, 1))
        if self.cur == NULL or self.nxt == NULL:
            raise MemoryError()
        with nogil:
            _hash_leaves(leaves, self.cur)

    cdef void up(self) noexcept nogil:
        cdef unsigned char* t
        self.n = _next_level(self.cur, self.n, self.nxt)
        t = self.cur
        self.cur = self.nxt
        self.nxt = t

    def __dealloc__(self):
        free(self.cur)
        free(self.nxt)


def merkle_root(leaves):
    """Root of the Merkle tree over `leaves` (a sequence of bytes)."""
    cdef _Packed p = _Packed(leaves)
    if p.n == 0:
        return EMPTY_ROOT
    cdef _Levels t = _Levels(p)
    with nogil:
        while t.n > 1:
            t.up()
    return PyBytes_FromStringAndSize(<char*>t.cur, 32)


def merkle_proof(leaves, Py_ssize_t index):
    """Inclusion proof of leaf `index`: the sibling hashes from the leaf level upwards."""
    cdef _Packed p = _Packed(leaves)
    cdef Py_ssize_t count = p.n, i = index
    if not 0 <= index < count:
        raise IndexError(f"leaf index {index} out of range for {count} leaves")
    cdef _Levels t = _Levels(p)
    siblings = []
    while t.n > 1:
        if i & 1:
            siblings.append(PyBytes_FromStringAndSize(<char*>t.cur + 32 * (i - 1), 32))
        elif i + 1 < t.n:
            siblings.append(PyBytes_FromStringAndSize(<char*>t.cur + 32 * (i + 1), 32))
        with nogil:
            t.up()
        i >>= 1
    return Proof(index=index, count=count, siblings=tuple(siblings))


def leaf_hash(leaf):
    cdef bytes b = leaf if type(leaf) is bytes else bytes(memoryview(leaf))
    cdef unsigned char out[32]
    _blake3(_LEAF_KEY, KEYED_HASH, <const unsigned char*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), out)
    return PyBytes_FromStringAndSize(<char*>out, 32)


def node_hash(left, right):
    cdef bytes l = bytes(memoryview(left)), r = bytes(memoryview(right))
    cdef unsigned char out[32]
    if len(l) != 32 or len(r) != 32:
        raise ValueError("Merkle node children are 32-byte hashes")
    _node(<const unsigned char*>PyBytes_AS_STRING(l), <const unsigned char*>PyBytes_AS_STRING(r), out)
    return PyBytes_FromStringAndSize(<char*>out, 32)

