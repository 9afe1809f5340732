"""ristretto255 (RFC 9496 §4) and the equality-of-discrete-logarithms proof of Specs/primitives.md §12,
in plain Python integers: no libsodium (the Swift implementation uses libsodium's
crypto_core_ristretto255_*), only hashlib's SHA-512.

Points are kept in extended twisted-Edwards coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, xy = T/Z,
on -x^2 + y^2 = 1 + d x^2 y^2 over GF(2^255 - 19). Scalar multiplication is a 4-bit fixed window
(not constant time: this is a checker, not an implementation that holds secrets).
"""

from __future__ import annotations

import hashlib
import hmac

from veil_reference import Refused

# RFC 9496 §4.1, the decimal constants as the RFC lists them.
P = 2**255 - 19
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
INVSQRT_A_MINUS_D = 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = 1159843021668779879193775521855586647937357759715417654439879720876111806838
D_MINUS_ONE_SQ = 40440834346308536858101042469323190826248399146238708352240133220865137265952
# The group order (primitives.md §12.1).
L = 2**252 + 27742317777372353535851937790883648493

assert SQRT_M1 * SQRT_M1 % P == P - 1
assert D == -121665 * pow(121666, P - 2, P) % P


def _negative(x: int) -> bool:
    """IS_NEGATIVE: the least significant bit of the canonical representative."""
    return (x % P) & 1 == 1


def _abs(x: int) -> int:
    x %= P
    return P - x if x & 1 else x


def sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    """RFC 9496 §4.2 SQRT_RATIO_M1(u, v): (was_square, r) with r the non-negative root of u/v or of SQRT_M1·u/v."""
    u %= P
    v %= P
    v3 = v * v % P * v % P
    v7 = v3 * v3 % P * v % P
    r = u * v3 % P * pow(u * v7 % P, (P - 5) // 8, P) % P
    check = v * r % P * r % P
    correct = check == u
    flipped = check == (-u) % P
    flipped_i = check == (-u) * SQRT_M1 % P
    if flipped or flipped_i:
        r = r * SQRT_M1 % P
    return correct or flipped, _abs(r)


IDENTITY = (0, 1, 1, 0)


def add(p1: tuple, p2: tuple) -> tuple:
    """Extended-coordinates addition for a = -1 (Hisil, Wong, Carter, Dawson 2008, "add-2008-hwcd-3")."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 % P * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def double(p1: tuple) -> tuple:
    """"dbl-2008-hwcd" for a = -1."""
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def negate(p1: tuple) -> tuple:
    x, y, z, t = p1
    return (-x % P, y, z, -t % P)


def multiply(k: int, point: tuple) -> tuple:
    """k·point, 4-bit fixed window."""
    k %= L
    table = [IDENTITY, point]
    for _ in range(14):
        table.append(add(table[-1], point))
    out = IDENTITY
    for shift in range(252, -1, -4):
        out = double(double(double(double(out))))
        nibble = (k >> shift) & 15
        if nibble:
            out = add(out, table[nibble])
    return out


def equal(p1: tuple, p2: tuple) -> bool:
    """RFC 9496 §4.5: x1·y2 == y1·x2 or y1·y2 == x1·x2."""
    x1, y1, _, _ = p1
    x2, y2, _, _ = p2
    return (x1 * y2 - y1 * x2) % P == 0 or (y1 * y2 - x1 * x2) % P == 0


def decode(data: bytes) -> tuple | None:
    """RFC 9496 §4.3.1; None when decoding fails."""
    if len(data) != 32:
        return None
    s = int.from_bytes(data, "little")
    if s >= P or _negative(s):
        return None
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 % P * u1) - u2_sqr) % P
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x % P * v % P
    x = _abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or _negative(t) or y == 0:
        return None
    return (x, y, 1, t)


def encode(point: tuple) -> bytes:
    """RFC 9496 §4.3.2."""
    x0, y0, z0, t0 = point
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = sqrt_ratio_m1(1, u1 * u2 % P * u2 % P)
    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 % P * t0 % P
    ix0 = x0 * SQRT_M1 % P
    iy0 = y0 * SQRT_M1 % P
    enchanted_denominator = den1 * INVSQRT_A_MINUS_D % P
    rotate = _negative(t0 * z_inv)
    if rotate:
        x, y, den_inv = iy0, ix0, enchanted_denominator
    else:
        x, y, den_inv = x0, y0, den2
    if _negative(x * z_inv):
        y = -y % P
    s = _abs(den_inv * (z0 - y))
    return s.to_bytes(32, "little")


# The Ed25519 base point (RFC 8032 §5.1): y = 4/5, x the non-negative root.
_BY = 4 * pow(5, P - 2, P) % P
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
BASE = (_BX, _BY, 1, _BX * _BY % P)
assert (-_BX * _BX + _BY * _BY - 1 - D * _BX * _BX % P * _BY * _BY) % P == 0

# Fixed-base multiplication: 4-bit windows of precomputed multiples of B (64 windows × 16).
_BASE_TABLE: list[list[tuple]] = []


def _base_table() -> list[list[tuple]]:
    if not _BASE_TABLE:
        window = BASE
        for _ in range(64):
            row = [IDENTITY, window]
            for _ in range(14):
                row.append(add(row[-1], window))
            _BASE_TABLE.append(row)
            window = double(double(double(double(window))))
    return _BASE_TABLE


def multiply_base(k: int) -> tuple:
    k %= L
    out = IDENTITY
    for i, row in enumerate(_base_table()):
        nibble = (k >> (4 * i)) & 15
        if nibble:
            out = add(out, row[nibble])
    return out


# --- primitives.md §12.1: scalars, elements, keys, agreement ----------------------------------

def reduce(wide: bytes) -> bytes:
    """Reduce(X): LE(X) mod ℓ as LE_32."""
    return (int.from_bytes(wide, "little") % L).to_bytes(32, "little")


def scalar(data: bytes) -> int:
    """A 32-byte scalar below ℓ (refused otherwise)."""
    if len(data) != 32 or int.from_bytes(data, "little") >= L:
        raise Refused("invalidScalar")
    return int.from_bytes(data, "little")


def element(data: bytes) -> tuple:
    """An accepted element: the canonical encoding of an element other than the identity."""
    point = decode(data)
    if point is None or equal(point, IDENTITY):
        raise Refused("invalidPoint")
    return point


def is_element(data: bytes) -> bool:
    try:
        element(data)
        return True
    except Refused:
        return False


def private_key(generator) -> int:
    """§12.1: 64 bytes from the generator (primitives.md §3.2), reduced; drawn again if zero."""
    while True:
        x = int.from_bytes(generator.bytes(64), "little") % L
        if x:
            return x


_MEMO: dict = {}


def base(x: int) -> bytes:
    """x·B, encoded (memoised: the replay asks for the same public keys many times)."""
    key = ("base", x)
    if key not in _MEMO:
        _MEMO[key] = encode(multiply_base(x))
    return _MEMO[key]


def agree(x: int, public: bytes) -> bytes:
    """K = x·P, encoded; refused for a point that is not an accepted element, or an identity result."""
    key = ("agree", x, public)
    if key not in _MEMO:
        point = element(public)
        shared = multiply(x, point)
        if equal(shared, IDENTITY):
            raise Refused("weakPublicKey")
        _MEMO[key] = encode(shared)
    return _MEMO[key]


# --- primitives.md §12.2: the Chaum–Pedersen proof ----------------------------------------------

def _frame(ctx: bytes) -> bytes:
    return len(ctx).to_bytes(4, "little") + ctx


def _h(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % L


def prove(x: int, y_encoded: bytes, ctx: bytes) -> tuple[bytes, bytes]:
    """Prove(x, Y, ctx) → (K, proof = LE_32(c) ‖ LE_32(s))."""
    y_point = element(y_encoded)
    x_encoded = base(x)
    k_encoded = agree(x, y_encoded)
    r = _h(b"veil/v1/dleq/nonce\x00", x.to_bytes(32, "little"), y_encoded, _frame(ctx))
    a1 = encode(multiply_base(r))
    a2 = encode(multiply(r, y_point))
    c = _h(b"veil/v1/dleq/challenge\x00", x_encoded, y_encoded, k_encoded, a1, a2, _frame(ctx))
    s = (r - c * x) % L
    return k_encoded, c.to_bytes(32, "little") + s.to_bytes(32, "little")


def verify(x_encoded: bytes, y_encoded: bytes, k_encoded: bytes, proof: bytes, ctx: bytes) -> bool:
    """Verify(X, Y, K, proof, ctx)."""
    key = ("verify", x_encoded, y_encoded, k_encoded, proof, ctx)
    if key in _MEMO:
        return _MEMO[key]
    _MEMO[key] = result = _verify(x_encoded, y_encoded, k_encoded, proof, ctx)
    return result


def _verify(x_encoded: bytes, y_encoded: bytes, k_encoded: bytes, proof: bytes, ctx: bytes) -> bool:
    if len(proof) != 64:
        return False
    try:
        x_point, y_point, k_point = element(x_encoded), element(y_encoded), element(k_encoded)
        c, s = scalar(proof[:32]), scalar(proof[32:])
    except Refused:
        return False
    sb, cx = multiply_base(s), multiply(c, x_point)
    sy, ck = multiply(s, y_point), multiply(c, k_point)
    if any(equal(p, IDENTITY) for p in (sb, cx, sy, ck)):
        return False
    a1, a2 = encode(add(sb, cx)), encode(add(sy, ck))
    expected = _h(b"veil/v1/dleq/challenge\x00", x_encoded, y_encoded, k_encoded, a1, a2, _frame(ctx))
    return hmac.compare_digest(expected.to_bytes(32, "little"), proof[:32])


# --- the vector file -----------------------------------------------------------------------------

def check(group: dict, test: dict, expect) -> None:
    h = bytes.fromhex
    op = test["operation"]
    if op == "base":
        expect(base(scalar(h(test["scalar"]))).hex(), test["element"], "element")
    elif op == "decode":
        point = element(h(test["element"]))
        expect(encode(point).hex(), test["element"], "re-encoding")
    elif op == "reduce":
        expect(reduce(h(test["wide"])).hex(), test["scalar"], "scalar")
    elif op == "agree":
        x = scalar(h(test["scalar"]))
        if x == 0:
            raise Refused("invalidScalar")
        expect(agree(x, h(test["point"])).hex(), test["shared"], "shared")
    elif op == "prove":
        x = scalar(h(test["scalar"]))
        shared, proof = prove(x, h(test["point"]), h(test["context"]))
        expect(shared.hex(), test["shared"], "shared")
        expect(proof.hex(), test["proof"], "proof")
        if not verify(base(x), h(test["point"]), shared, proof, h(test["context"])):
            raise AssertionError("the proof it made does not verify")
    elif op == "verify":
        if not verify(h(test["element"]), h(test["point"]), h(test["shared"]), h(test["proof"]), h(test["context"])):
            raise Refused("invalidProof")
    else:
        raise AssertionError(f"unknown operation {op}")
