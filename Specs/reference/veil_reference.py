"""An independent implementation of Veil's own primitives, written from Specs/primitives.md.

It shares no code with the Swift implementation and no keystream with libsodium: ChaCha20
comes from OpenSSL (through `cryptography`), HMAC-SHA-256 from Python's hashlib, and the
field arithmetic, Shamir sharing and fixed-point codec are plain Python integers and floats.
Section numbers refer to Specs/primitives.md.
"""

from __future__ import annotations

import hashlib
import itertools
import hmac
import math

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms


class Refused(Exception):
    """An input the specification refuses; `code` is the error name the vectors use."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# --- 7.1 HKDF-SHA-256 --------------------------------------------------------------------

def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    if not 1 <= length <= 255 * 32:
        raise Refused("outputLengthOutOfRange")
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


# --- 7.2 VeilKDF --------------------------------------------------------------------------

_LABEL_CHARACTERS = set(b"abcdefghijklmnopqrstuvwxyz0123456789.-/")


def veil_kdf(ikm: bytes, label: str, salt: bytes = b"", context: bytes = b"", length: int = 32) -> bytes:
    raw = label.encode("utf-8")
    if not 1 <= len(raw) <= 64 or any(c not in _LABEL_CHARACTERS for c in raw):
        raise Refused("invalidLabel")
    return hkdf_sha256(ikm, salt, b"veil/v1/" + raw + b"\x00" + context, length)


# --- ChaCha20 keystream (RFC 8439, IETF variant) --------------------------------------------

def chacha20_keystream(key: bytes, length: int, counter: int = 0, nonce: bytes = bytes(12)) -> bytes:
    # OpenSSL's ChaCha20 takes a 16-byte IV: the 32-bit block counter (little-endian), then the nonce.
    cipher = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce), mode=None)
    return cipher.encryptor().update(bytes(length))


# --- 3.3 Deterministic generator ------------------------------------------------------------

class Generator:
    """The ChaCha20 generator of section 3.3: 64-bit little-endian words of the keystream."""

    def __init__(self, seed: bytes):
        if len(seed) != 32:
            raise Refused("invalidLength")
        self._key = veil_kdf(seed, "drbg")
        self._buffer = b""
        self._offset = 0
        self._block = 0

    def next(self) -> int:
        if self._offset == len(self._buffer):
            # Any refill size gives the same stream; 4 blocks at a time.
            self._buffer = chacha20_keystream(self._key, 256, counter=self._block)
            self._block += 4
            self._offset = 0
        word = int.from_bytes(self._buffer[self._offset:self._offset + 8], "little")
        self._offset += 8
        return word

    def bytes(self, n: int) -> bytes:
        """Section 3.2: ⌈n/8⌉ words, little-endian, truncated to n bytes."""
        out = b"".join(self.next().to_bytes(8, "little") for _ in range((n + 7) // 8))
        return out[:n]


# --- export.md 5.2 Coordinate subset -------------------------------------------------------

def below(generator: Generator, bound: int) -> int:
    """A uniform integer in [0, bound): words below (2^64 - bound) mod bound are rejected."""
    reject_below = (2**64 - bound) % bound
    while True:
        v = generator.next()
        if v >= reject_below:
            return v % bound


def coordinate_subset(length: int, size: int, seed: bytes) -> list[int]:
    """The k = size of the d - 1 = length - 1 update coordinates the seed picks (a partial
    Fisher-Yates shuffle), sorted, then the weight's d - 1."""
    if length < 2 or not 1 <= size <= length - 1 or len(seed) != 32:
        raise Refused("invalidSpecification")
    generator = Generator(seed)
    order = list(range(length - 1))
    for i in range(size):
        j = i + below(generator, length - 1 - i)
        order[i], order[j] = order[j], order[i]
    return sorted(order[:size]) + [length - 1]


def subset_compress(payload: list[float], indices: list[int]) -> list[float]:
    """What a participant sends: the chosen update values times (d - 1)/k, then the weight."""
    scale = (len(payload) - 1) / (len(indices) - 1)
    return [payload[i] * scale for i in indices[:-1]] + [payload[-1]]


# --- 8 Mask expansion ----------------------------------------------------------------------

def mask_expansion(seed: bytes, label: bytes, bits: int, count: int) -> list[int]:
    if not 1 <= bits <= 64:
        raise Refused("bitWidthOutOfRange")
    if len(seed) != 32:
        raise Refused("invalidLength")
    key = veil_kdf(seed, "mask-expansion", context=label)
    width = (bits + 7) // 8
    stream = chacha20_keystream(key, width * count)
    modulus = 1 << bits
    return [int.from_bytes(stream[width * i:width * (i + 1)], "little") % modulus for i in range(count)]


# --- 9 Shamir secret sharing over GF(2^61 - 1) ------------------------------------------------

P = (1 << 61) - 1
CHUNK = 7


def _chunks(secret: bytes) -> list[bytes]:
    return [secret[i:i + CHUNK] for i in range(0, len(secret), CHUNK)]


def _check_indices(indices: list[int], n: int) -> None:
    seen = set()
    for x in indices:
        if not 1 <= x <= n:
            raise Refused("indexOutOfRange")
        if x in seen:
            raise Refused("duplicateIndex")
        seen.add(x)


def _check_scheme(t: int, n: int) -> None:
    if not (1 <= t <= n <= 2**32 - 1):
        raise Refused("invalidThreshold")


def shamir_split(secret: bytes, t: int, n: int, generator: Generator, indices: list[int] | None = None) -> list[bytes]:
    _check_scheme(t, n)
    if not 1 <= len(secret) <= 32:
        raise Refused("invalidSecretLength")
    indices = list(range(1, n + 1)) if indices is None else indices
    _check_indices(indices, n)
    if len(indices) < t:
        raise Refused("notEnoughShares")
    values = {x: [] for x in indices}
    for chunk in _chunks(secret):
        coefficients = [int.from_bytes(chunk, "little")]
        for _ in range(1, t):
            while True:
                v = generator.next() & P
                if v != P:
                    break
            coefficients.append(v)
        for x in indices:
            values[x].append(sum(a * pow(x, k, P) for k, a in enumerate(coefficients)) % P)
    header = lambda x: x.to_bytes(4, "little") + bytes([len(secret)])
    return [header(x) + b"".join(v.to_bytes(8, "little") for v in values[x]) for x in indices]


def shamir_decode(share: bytes) -> tuple[int, int, list[int]]:
    if len(share) < 5:
        raise Refused("malformedShare")
    index, length = int.from_bytes(share[:4], "little"), share[4]
    if index == 0 or not 1 <= length <= 32:
        raise Refused("malformedShare")
    m = (length + CHUNK - 1) // CHUNK
    if len(share) != 5 + 8 * m:
        raise Refused("malformedShare")
    values = [int.from_bytes(share[5 + 8 * j:13 + 8 * j], "little") for j in range(m)]
    if any(v >= P for v in values):
        raise Refused("malformedShare")
    return index, length, values


def _checked_shares(shares: list[bytes], t: int, n: int) -> list:
    """Parses shares with the checks of reconstruction (primitives.md 9.5), in its order."""
    _check_scheme(t, n)
    decoded = [shamir_decode(s) for s in shares]
    if not decoded:
        raise Refused("notEnoughShares")
    if len({length for _, length, _ in decoded}) != 1:
        raise Refused("inconsistentShareLengths")
    _check_indices([x for x, _, _ in decoded], n)
    if len(decoded) < t:
        raise Refused("notEnoughShares")
    return decoded


def shamir_decode_wrong(shares: list[bytes], t: int, n: int) -> tuple[bytes, list[int]]:
    """Decoding (primitives.md 9.6) by exhaustive search, not Berlekamp-Welch: for each chunk,
    the polynomial through some t of the points that agrees with at least N - e of them."""
    decoded = _checked_shares(shares, t, n)
    points = sorted(decoded)
    e = (len(points) - t) // 2
    length = points[0][1]
    wrong, out = set(), b""
    for j, chunk_start in enumerate(range(0, length, CHUNK)):
        found = None
        for subset in itertools.combinations(range(len(points)), t):
            xs = [points[i][0] for i in subset]
            ys = [points[i][2][j] for i in subset]

            def at(x, xs=xs, ys=ys):
                total = 0
                for i, (xi, yi) in enumerate(zip(xs, ys)):
                    num = den = 1
                    for k, xk in enumerate(xs):
                        if k != i:
                            num = num * (x - xk) % P
                            den = den * (xi - xk) % P
                    total += yi * num * pow(den, P - 2, P)
                return total % P

            off = [x for x, _, values in points if at(x) != values[j]]
            if len(off) <= e:
                found = (at(0), off)
                break
        if found is None:
            raise Refused("tooManyWrongShares")
        s, off = found
        wrong.update(off)
        width = min(CHUNK, length - chunk_start)
        if s >= 1 << (8 * width):
            raise Refused("inconsistentShares")
        out += s.to_bytes(width, "little")
    return out, sorted(wrong)


def shamir_reconstruct(shares: list[bytes], t: int, n: int) -> bytes:
    decoded = _checked_shares(shares, t, n)
    chosen = sorted(decoded)[:t]
    xs = [x for x, _, _ in chosen]
    lambdas = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % P
                den = den * (xj - xi) % P
        lambdas.append(num * pow(den, P - 2, P) % P)
    length = chosen[0][1]
    out = b""
    for j, chunk_start in enumerate(range(0, length, CHUNK)):
        width = min(CHUNK, length - chunk_start)
        s = sum(lam * values[j] for lam, (_, _, values) in zip(lambdas, chosen)) % P
        if s >= 1 << (8 * width):
            raise Refused("inconsistentShares")
        out += s.to_bytes(width, "little")
    return out


# --- 10 Fixed-point codec ------------------------------------------------------------------


def protobuf_varint(value: int) -> bytes:
    """A protobuf base-128 varint (unsigned, least significant group first)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class Codec:
    def __init__(self, clip: float, fractional_bits: int, bits: int, max_addends: int):
        if not (math.isfinite(clip) and clip > 0):
            raise Refused("invalidClip")
        if not 0 <= fractional_bits <= 62:
            raise Refused("fractionalBitsOutOfRange")
        if not 1 <= bits <= 64:
            raise Refused("bitWidthOutOfRange")
        if max_addends < 1:
            raise Refused("invalidAddendCount")
        scaled = math.ldexp(clip, fractional_bits)
        if not scaled < 2.0**63:
            raise Refused("sumCouldWrap")
        self.max_magnitude = math.ceil(scaled)
        if max_addends * self.max_magnitude > 2 ** (bits - 1) - 1:
            raise Refused("sumCouldWrap")
        self.clip, self.f, self.bits = float(clip), fractional_bits, bits

    def encode(self, values: list[float], generator: Generator) -> list[int]:
        out = []
        for x in values:
            if not math.isfinite(x):
                raise Refused("nonFiniteValue")
            y = math.ldexp(min(max(x, -self.clip), self.clip), self.f)
            floor = math.floor(y)
            fraction = y - floor
            u = (generator.next() >> 11) * 2.0**-53
            v = floor + (1 if u < fraction else 0)
            out.append(v % (1 << self.bits))
        return out

    def decode(self, element: int) -> float:
        signed = element - (1 << self.bits) if element >= 1 << (self.bits - 1) else element
        return math.ldexp(float(signed), -self.f)
