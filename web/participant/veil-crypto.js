// Veil's own constructions (Specs/primitives.md) in JavaScript, on libsodium compiled to
// WebAssembly (./sodium.js): HKDF-SHA-256 and VeilKDF (section 7), the deterministic
// generator VEIL-CHACHA20-DRBG (3.3) and drawing bytes from it (3.2), VEIL-MASK-EXPANSION (8),
// VEIL-SHAMIR over GF(2^61 − 1) (9), VEIL-FIXED-POINT (10) and ristretto255 with
// Chaum–Pedersen equality proofs, VEIL-RISTRETTO255 / VEIL-DLEQ (12). Integers that may exceed 2^53
// are BigInt. Refusals throw a VeilError whose `code` is the specification's error name.
//
// Written from the specification text; the section numbers below are primitives.md's.

/** An input the specification refuses; `code` is the name the vector files use. */
export class VeilError extends Error {
  constructor(code, detail) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "VeilError";
    this.code = code;
  }
}

const ZERO_NONCE = new Uint8Array(12);
const EMPTY = new Uint8Array(0);
const TWO_64 = 1n << 64n;
const MASK_64 = TWO_64 - 1n;

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** LE_4(n): n as 4 little-endian bytes. */
export function le32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

/** Lower-case hex. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** LE(B): the integer whose little-endian encoding is B (BigInt). */
export function leToBigInt(bytes, start = 0, end = bytes.length) {
  let v = 0n;
  for (let i = end - 1; i >= start; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

/** LE_n(x) for 0 ≤ x < 2^(8n). */
export function bigIntToLe(value, n) {
  let v = BigInt(value);
  if (v < 0n || v >> BigInt(8 * n) !== 0n) throw new RangeError(`${value} does not fit in ${n} bytes`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

// --- 7.1 HKDF-SHA-256 -----------------------------------------------------------------------

export const HKDF_MAX_LENGTH = 255 * 32;

/** RFC 5869 with HMAC-SHA-256; L in 1…8160, else outputLengthOutOfRange. */
export function hkdfSha256(sodium, ikm, salt, info, length) {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_MAX_LENGTH) {
    throw new VeilError("outputLengthOutOfRange", `HKDF output of ${length} bytes`);
  }
  const prk = sodium.hmacSha256(salt, ikm);
  const okm = new Uint8Array(length);
  let block = EMPTY;
  try {
    for (let i = 1, offset = 0; offset < length; i++) {
      const next = sodium.hmacSha256(prk, block, info, Uint8Array.of(i));
      block.fill(0);
      block = next;
      okm.set(block.subarray(0, Math.min(32, length - offset)), offset);
      offset += 32;
    }
  } finally {
    prk.fill(0);
    block.fill(0);
  }
  return okm;
}

// --- 7.2 VeilKDF ------------------------------------------------------------------------------

const LABEL_PREFIX = new TextEncoder().encode("veil/v1/");
const LABEL_CHARACTER = /^[a-z0-9.\-/]$/;

function labelBytes(label) {
  if (typeof label !== "string") throw new VeilError("invalidLabel", "the label must be a string");
  const raw = new TextEncoder().encode(label);
  if (raw.length < 1 || raw.length > 64) throw new VeilError("invalidLabel", `a label of ${raw.length} bytes`);
  for (const c of raw) {
    if (!LABEL_CHARACTER.test(String.fromCharCode(c))) throw new VeilError("invalidLabel", `byte 0x${c.toString(16)}`);
  }
  return raw;
}

/** HKDF-SHA-256(ikm, salt, "veil/v1/" ‖ label ‖ 0x00 ‖ context, L). */
export function veilKdf(sodium, ikm, label, salt = EMPTY, context = EMPTY, length = 32) {
  const info = concat(LABEL_PREFIX, labelBytes(label), Uint8Array.of(0), context);
  return hkdfSha256(sodium, ikm, salt, info, length);
}

// --- 3.3 VEIL-CHACHA20-DRBG -------------------------------------------------------------------

const DRBG_REFILL_BLOCKS = 4; // any refill size gives the same stream
const MAX_BLOCKS = 2 ** 32;

/** The deterministic generator: next() is the i-th little-endian 64-bit word of ChaCha20(K). */
export class ChaChaGenerator {
  constructor(sodium, seed) {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new VeilError("invalidLength", `a seed of ${seed && seed.length} bytes, not 32`);
    }
    this.sodium = sodium;
    this.key = veilKdf(sodium, seed, "drbg", EMPTY, EMPTY, 32);
    this.buffer = EMPTY;
    this.offset = 0;
    this.block = 0; // the next block counter to produce
  }

  /** A BigInt in 0…2^64 − 1. */
  next() {
    if (this.offset === this.buffer.length) {
      if (this.block >= MAX_BLOCKS) throw new VeilError("generatorExhausted", "2^32 ChaCha20 blocks used");
      const blocks = Math.min(DRBG_REFILL_BLOCKS, MAX_BLOCKS - this.block);
      this.buffer.fill(0);
      this.buffer = this.sodium.chacha20IetfKeystream(64 * blocks, ZERO_NONCE, this.block, this.key);
      this.block += blocks;
      this.offset = 0;
    }
    const word = leToBigInt(this.buffer, this.offset, this.offset + 8);
    this.buffer.fill(0, this.offset, this.offset + 8);
    this.offset += 8;
    return word;
  }

  /** Section 3.2: ⌈n/8⌉ words, LE_8 each, the first n bytes. */
  bytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 8) {
      const word = bigIntToLe(this.next(), 8);
      out.set(word.subarray(0, Math.min(8, n - i)), i);
      word.fill(0);
    }
    return out;
  }

  /** Wipes the key and the unused keystream. */
  dispose() {
    this.key.fill(0);
    this.buffer.fill(0);
  }
}

/** The system generator (section 3.1): randombytes_buf, 8 bytes at a time. */
export class SystemGenerator {
  constructor(sodium) {
    this.sodium = sodium;
  }

  next() {
    const b = this.sodium.randomBytes(8);
    const word = leToBigInt(b);
    b.fill(0);
    return word;
  }

  bytes(n) {
    return this.sodium.randomBytes(n);
  }
}

// --- 8 VEIL-MASK-EXPANSION --------------------------------------------------------------------

/** d elements of Z_(2^b) (BigInt) from a 32-byte seed and a label (bytes). */
export function maskExpansion(sodium, seed, label, bits, count) {
  if (!Number.isInteger(bits) || bits < 1 || bits > 64) throw new VeilError("bitWidthOutOfRange", `b = ${bits}`);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new VeilError("invalidLength", "the mask seed must be 32 bytes");
  const width = Math.ceil(bits / 8);
  if (!Number.isInteger(count) || count < 0 || count > 2 ** 38 / width) throw new VeilError("tooLong", `d = ${count}`);
  const key = veilKdf(sodium, seed, "mask-expansion", EMPTY, label, 32);
  const stream = sodium.chacha20IetfKeystream(width * count, ZERO_NONCE, 0, key);
  key.fill(0);
  const modulus = 1n << BigInt(bits);
  const out = new Array(count);
  for (let i = 0; i < count; i++) out[i] = leToBigInt(stream, width * i, width * i + width) % modulus;
  stream.fill(0);
  return out;
}

// --- 9 VEIL-SHAMIR over GF(p), p = 2^61 − 1 ---------------------------------------------------

export const SHAMIR_P = (1n << 61n) - 1n;
const P = SHAMIR_P;
const CHUNK = 7;

const mod = (a) => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

function powMod(base, exponent) {
  let result = 1n, b = mod(base), e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

/** a^(−1) mod p by Fermat (a ≠ 0). */
const inverse = (a) => powMod(a, P - 2n);

function checkScheme(t, n) {
  if (!Number.isInteger(t) || !Number.isInteger(n) || !(1 <= t && t <= n && n <= 2 ** 32 - 1)) {
    throw new VeilError("invalidThreshold", `t = ${t}, n = ${n}`);
  }
}

function checkIndices(indices, n) {
  const seen = new Set();
  for (const x of indices) {
    if (!Number.isInteger(x) || x < 1 || x > n) throw new VeilError("indexOutOfRange", `index ${x} outside 1…${n}`);
    if (seen.has(x)) throw new VeilError("duplicateIndex", `index ${x}`);
    seen.add(x);
  }
}

const chunkCount = (length) => Math.ceil(length / CHUNK);
const chunkWidth = (length, j) => Math.min(CHUNK, length - CHUNK * j);

/** y = Σ_k a_k x^k mod p (Horner). */
function evaluate(coefficients, x) {
  const bx = BigInt(x);
  let y = 0n;
  for (let k = coefficients.length - 1; k >= 0; k--) y = (y * bx + coefficients[k]) % P;
  return y;
}

/** draw(): next() AND (2^61 − 1), repeated until it is not p. */
function drawElement(generator) {
  for (;;) {
    const v = generator.next() & P;
    if (v !== P) return v;
  }
}

/** Section 9.3–9.4: the encoded shares, in the order of `indices` (default 1…n). */
export function shamirSplit(secret, t, n, generator, indices = null) {
  checkScheme(t, n);
  if (!(secret instanceof Uint8Array) || secret.length < 1 || secret.length > 32) {
    throw new VeilError("invalidSecretLength", `a secret of ${secret && secret.length} bytes`);
  }
  const xs = indices === null ? Array.from({ length: n }, (_, i) => i + 1) : indices;
  checkIndices(xs, n);
  if (xs.length < t) throw new VeilError("notEnoughShares", `${xs.length} indices for threshold ${t}`);
  const m = chunkCount(secret.length);
  const values = xs.map(() => new Array(m));
  for (let j = 0; j < m; j++) {
    const coefficients = [leToBigInt(secret, CHUNK * j, CHUNK * j + chunkWidth(secret.length, j))];
    for (let k = 1; k < t; k++) coefficients.push(drawElement(generator));
    xs.forEach((x, i) => {
      values[i][j] = evaluate(coefficients, x);
    });
    coefficients.fill(0n);
  }
  return xs.map((x, i) => encodeShare(x, secret.length, values[i]));
}

/** share(x) = LE_4(x) ‖ LE_1(ℓ) ‖ LE_8(y_0) ‖ … ‖ LE_8(y_{m−1}). */
export function encodeShare(index, length, values) {
  const out = new Uint8Array(5 + 8 * values.length);
  out.set(bigIntToLe(index, 4), 0);
  out[4] = length;
  values.forEach((v, j) => out.set(bigIntToLe(v, 8), 5 + 8 * j));
  return out;
}

/** Section 9.4's decoding: { index, length, values }, or malformedShare. */
export function decodeShare(share) {
  if (!(share instanceof Uint8Array) || share.length < 5) throw new VeilError("malformedShare", "shorter than 5 bytes");
  const index = Number(leToBigInt(share, 0, 4));
  const length = share[4];
  if (index === 0) throw new VeilError("malformedShare", "index 0");
  if (length < 1 || length > 32) throw new VeilError("malformedShare", `secret length ${length}`);
  const m = chunkCount(length);
  if (share.length !== 5 + 8 * m) throw new VeilError("malformedShare", `${share.length} bytes, expected ${5 + 8 * m}`);
  const values = [];
  for (let j = 0; j < m; j++) {
    const v = leToBigInt(share, 5 + 8 * j, 13 + 8 * j);
    if (v >= P) throw new VeilError("malformedShare", "a value not below p");
    values.push(v);
  }
  return { index, length, values };
}

/** The checks of section 9.5, in its order; the decoded shares. */
function checkedShares(shares, t, n) {
  checkScheme(t, n);
  const decoded = shares.map(decodeShare);
  if (decoded.length === 0) throw new VeilError("notEnoughShares", "no share");
  if (new Set(decoded.map((s) => s.length)).size !== 1) throw new VeilError("inconsistentShareLengths");
  checkIndices(decoded.map((s) => s.index), n);
  if (decoded.length < t) throw new VeilError("notEnoughShares", `${decoded.length} shares for threshold ${t}`);
  return decoded;
}

/** Section 9.5 steps 4–5: the secret from its chunk values. */
function assemble(length, chunks) {
  const out = new Uint8Array(length);
  chunks.forEach((s, j) => {
    const width = chunkWidth(length, j);
    if (s >> BigInt(8 * width) !== 0n) throw new VeilError("inconsistentShares", `chunk ${j} is not below 2^${8 * width}`);
    out.set(bigIntToLe(s, width), CHUNK * j);
  });
  return out;
}

/** Lagrange coefficients at 0 for the index set xs: λ_i = Π_{j≠i} x_j (x_j − x_i)^(−1). */
export function lagrangeAtZero(xs) {
  return xs.map((xi, i) => {
    let num = 1n, den = 1n;
    xs.forEach((xj, j) => {
      if (j === i) return;
      num = (num * BigInt(xj)) % P;
      den = mod(den * (BigInt(xj) - BigInt(xi)));
    });
    return (num * inverse(den)) % P;
  });
}

/** Section 9.5: the secret from the t shares with the smallest indices. */
export function shamirReconstruct(shares, t, n) {
  const decoded = checkedShares(shares, t, n);
  const chosen = decoded.slice().sort((a, b) => a.index - b.index).slice(0, t);
  const lambdas = lagrangeAtZero(chosen.map((s) => s.index));
  const length = chosen[0].length;
  const chunks = [];
  for (let j = 0; j < chunkCount(length); j++) {
    let s = 0n;
    chosen.forEach((share, i) => {
      s = (s + lambdas[i] * share.values[j]) % P;
    });
    chunks.push(s);
  }
  return assemble(length, chunks);
}

/**
 * Gauss–Jordan elimination mod p on the augmented matrix rows (each [a_0 … a_{u−1}, rhs]).
 * Returns a solution (unknowns without a pivot are 0), or null when there is none.
 */
function solve(rows, unknowns) {
  let rank = 0;
  const pivots = [];
  for (let col = 0; col < unknowns && rank < rows.length; col++) {
    const r = rows.findIndex((row, i) => i >= rank && row[col] !== 0n);
    if (r < 0) continue;
    [rows[rank], rows[r]] = [rows[r], rows[rank]];
    const inv = inverse(rows[rank][col]);
    rows[rank] = rows[rank].map((v) => (v * inv) % P);
    for (let i = 0; i < rows.length; i++) {
      if (i === rank || rows[i][col] === 0n) continue;
      const factor = rows[i][col];
      rows[i] = rows[i].map((v, c) => mod(v - factor * rows[rank][c]));
    }
    pivots.push(col);
    rank++;
  }
  for (let i = rank; i < rows.length; i++) if (rows[i][unknowns] !== 0n) return null;
  const solution = new Array(unknowns).fill(0n);
  pivots.forEach((col, i) => {
    solution[col] = rows[i][unknowns];
  });
  return solution;
}

/** Berlekamp–Welch for one chunk: P (t coefficients) agreeing with ≥ N − e points, or null. */
function berlekampWelch(points, t, e) {
  const unknowns = t + 2 * e; // Q_0 … Q_{t+e−1}, E_0 … E_{e−1}
  const rows = points.map(([x, y]) => {
    const bx = BigInt(x);
    const row = [];
    let power = 1n;
    const powers = [];
    for (let k = 0; k <= t + e; k++) {
      powers.push(power);
      power = (power * bx) % P;
    }
    for (let k = 0; k < t + e; k++) row.push(powers[k]);
    for (let k = 0; k < e; k++) row.push(mod(-y * powers[k]));
    row.push((y * powers[e]) % P);
    return row;
  });
  const solution = solve(rows, unknowns);
  if (solution === null) return null;
  const q = solution.slice(0, t + e);
  const errorLocator = solution.slice(t + e).concat([1n]); // monic, degree e
  // Q / E: quotient of degree < t, remainder of degree < e.
  const quotient = new Array(t).fill(0n);
  for (let k = t + e - 1; k >= e; k--) {
    const c = q[k];
    quotient[k - e] = c;
    for (let i = 0; i <= e; i++) q[k - e + i] = mod(q[k - e + i] - c * errorLocator[i]);
  }
  if (q.some((v) => v !== 0n)) return null;
  return quotient;
}

/** Section 9.6: { secret, wrongIndices (ascending) } from N ≥ t shares, setting ≤ ⌊(N − t)/2⌋ per chunk aside. */
export function shamirDecode(shares, t, n) {
  const decoded = checkedShares(shares, t, n);
  const e = Math.floor((decoded.length - t) / 2);
  const length = decoded[0].length;
  const wrong = new Set();
  const chunks = [];
  for (let j = 0; j < chunkCount(length); j++) {
    const points = decoded.map((s) => [s.index, s.values[j]]);
    const polynomial = berlekampWelch(points, t, e);
    if (polynomial === null) throw new VeilError("tooManyWrongShares", `chunk ${j}`);
    const off = points.filter(([x, y]) => evaluate(polynomial, x) !== y).map(([x]) => x);
    if (off.length > e) throw new VeilError("tooManyWrongShares", `chunk ${j}: ${off.length} wrong, at most ${e}`);
    off.forEach((x) => wrong.add(x));
    chunks.push(polynomial[0]);
  }
  return { secret: assemble(length, chunks), wrongIndices: [...wrong].sort((a, b) => a - b) };
}

// --- 10 VEIL-FIXED-POINT ----------------------------------------------------------------------

/** The fixed-point codec: reals ↔ Z_(2^b) (encodings are BigInt in 0…2^b − 1). */
export class FixedPointCodec {
  constructor(clip, fractionalBits, bits, maxAddends) {
    if (typeof clip !== "number" || !Number.isFinite(clip) || !(clip > 0)) throw new VeilError("invalidClip", `c = ${clip}`);
    if (!Number.isInteger(fractionalBits) || fractionalBits < 0 || fractionalBits > 62) {
      throw new VeilError("fractionalBitsOutOfRange", `f = ${fractionalBits}`);
    }
    if (!Number.isInteger(bits) || bits < 1 || bits > 64) throw new VeilError("bitWidthOutOfRange", `b = ${bits}`);
    if (!Number.isInteger(maxAddends) || maxAddends < 1) throw new VeilError("invalidAddendCount", `n = ${maxAddends}`);
    const scaled = clip * 2 ** fractionalBits; // exact: a power of two
    if (!(scaled < 2 ** 63)) throw new VeilError("sumCouldWrap", `c = ${clip}, f = ${fractionalBits}: c·2^f is not below 2^63`);
    this.maxMagnitude = BigInt(Math.ceil(scaled));
    if (BigInt(maxAddends) * this.maxMagnitude > (1n << BigInt(bits - 1)) - 1n) {
      throw new VeilError("sumCouldWrap", `c = ${clip}, f = ${fractionalBits}, b = ${bits}, n = ${maxAddends}`);
    }
    this.clip = clip;
    this.f = fractionalBits;
    this.bits = bits;
    this.modulus = 1n << BigInt(bits);
  }

  /** One draw per element, in order. */
  encode(values, generator) {
    return values.map((x) => {
      if (typeof x !== "number" || !Number.isFinite(x)) throw new VeilError("nonFiniteValue", `${x}`);
      const y = Math.min(Math.max(x, -this.clip), this.clip) * 2 ** this.f;
      const floor = Math.floor(y);
      const fraction = y - floor;
      const u = Number(generator.next() >> 11n) * 2 ** -53;
      const v = BigInt(floor) + (u < fraction ? 1n : 0n);
      return ((v % this.modulus) + this.modulus) % this.modulus;
    });
  }

  /** A sum σ in Z_(2^b), read as signed, times 2^−f. */
  decode(sum) {
    const s = BigInt(sum);
    const signed = s >= this.modulus >> 1n ? s - this.modulus : s;
    return Number(signed) * 2 ** -this.f;
  }
}

// --- 12 ristretto255 and equality proofs (VEIL-RISTRETTO255, VEIL-DLEQ) ------------------------
// On libsodium's crypto_core_ristretto255_* and crypto_scalarmult_ristretto255[_base]
// (./sodium.js). Scalars and elements are 32-byte Uint8Arrays.

/** ℓ = 2^252 + 27742317777372353535851937790883648493, the group order. */
export const RISTRETTO255_L = (1n << 252n) + 27742317777372353535851937790883648493n;
const L_BYTES = bigIntToLe(RISTRETTO255_L, 32);
const DLEQ_NONCE_LABEL = concat(new TextEncoder().encode("veil/v1/dleq/nonce"), Uint8Array.of(0));
const DLEQ_CHALLENGE_LABEL = concat(new TextEncoder().encode("veil/v1/dleq/challenge"), Uint8Array.of(0));

/** libsodium refused the operation (SodiumError with code −1), as opposed to any other failure. */
function sodiumRefused(error) {
  return error instanceof Error && error.name === "SodiumError" && error.code === -1;
}

/** Without branching on the bytes: 1 if every byte is zero, else 0. */
function allZero(bytes) {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return ((acc - 1) >>> 31) & 1;
}

/** Without branching on the bytes: 1 if LE(bytes) < ℓ (the borrow out of LE(bytes) − ℓ), else 0. */
function belowL(bytes) {
  let borrow = 0;
  for (let i = 0; i < 32; i++) borrow = ((bytes[i] - L_BYTES[i] - borrow) >>> 31) & 1;
  return borrow;
}

/** Constant-time equality of two byte strings of the same (public) length. */
/** Whether two byte arrays are equal, in time that depends on their length only. */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i] ^ b[i];
  return acc === 0;
}

/** 12.1 A scalar: 32 bytes, LE, below ℓ; anything else is invalidScalar. Returns a copy. */
export function ristretto255Scalar(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw new VeilError("invalidScalar", `a scalar of ${bytes && bytes.length} bytes, not 32`);
  }
  if (!belowL(bytes)) throw new VeilError("invalidScalar", "a scalar not below ℓ");
  return bytes.slice();
}

/** 12.1 Reduce(X): LE(X) mod ℓ as LE_32, for a 64-byte X. */
export function ristretto255Reduce(sodium, wide) {
  if (!(wide instanceof Uint8Array) || wide.length !== 64) {
    throw new VeilError("invalidLength", `Reduce of ${wide && wide.length} bytes, not 64`);
  }
  return sodium.ristretto255ScalarReduce(wide);
}

/** 12.1 An accepted element: a canonical encoding (RFC 9496 DECODE succeeds) other than the identity. */
export function ristretto255Element(sodium, bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw new VeilError("invalidPoint", `an element of ${bytes && bytes.length} bytes, not 32`);
  }
  if (!sodium.ristretto255IsValidPoint(bytes)) throw new VeilError("invalidPoint", "not a canonical ristretto255 encoding");
  if (allZero(bytes)) throw new VeilError("invalidPoint", "the identity");
  return bytes.slice();
}

/** 12.1 A 32-byte private key given directly: a scalar below ℓ and not zero (invalidScalar). */
export function ristretto255PrivateKeyFromBytes(bytes) {
  const x = ristretto255Scalar(bytes);
  if (allZero(x)) throw new VeilError("invalidScalar", "a zero private key");
  return x;
}

/** 12.1 A private key drawn from a generator (3.2): 64 bytes reduced, drawn again while zero. */
export function ristretto255PrivateKey(sodium, generator) {
  for (;;) {
    const wide = generator.bytes(64);
    const x = ristretto255Reduce(sodium, wide);
    wide.fill(0);
    if (!allZero(x)) return x;
  }
}

/** 12.1 The public key x·B of a private key x. */
export function ristretto255PublicKey(sodium, privateKey) {
  const x = ristretto255PrivateKeyFromBytes(privateKey);
  try {
    return sodium.scalarmultRistretto255Base(x);
  } finally {
    x.fill(0);
  }
}

/** 12.1 Agreement: K = x·P, encoded; P must be accepted (invalidPoint), an identity K is weakPublicKey. */
export function ristretto255Agree(sodium, privateKey, publicKey) {
  const point = ristretto255Element(sodium, publicKey);
  const x = ristretto255PrivateKeyFromBytes(privateKey);
  try {
    return sodium.scalarmultRistretto255(x, point);
  } catch (error) {
    if (sodiumRefused(error)) throw new VeilError("weakPublicKey", "x·P is the identity");
    throw error;
  } finally {
    x.fill(0);
  }
}

function frame(ctx) {
  if (!(ctx instanceof Uint8Array)) throw new VeilError("invalidLength", "the context must be bytes");
  return concat(bigIntToLe(ctx.length, 4), ctx);
}

/** H(…) = Reduce(SHA-512(…)). */
function dleqHash(sodium, ...parts) {
  const message = concat(...parts);
  const digest = sodium.hashSha512(message);
  try {
    return sodium.ristretto255ScalarReduce(digest);
  } finally {
    digest.fill(0);
    message.fill(0);
  }
}

/**
 * 12.2 Prove(x, Y, ctx): { shared: K = x·Y, proof: LE_32(c) ‖ LE_32(s) }, deterministic in
 * (x, Y, ctx). x must be a non-zero scalar (invalidScalar), Y an accepted element (invalidPoint).
 */
export function dleqProve(sodium, privateKey, yElement, ctx) {
  const y = ristretto255Element(sodium, yElement);
  const x = ristretto255PrivateKeyFromBytes(privateKey);
  const f = frame(ctx);
  let r = null, cx = null;
  try {
    const X = sodium.scalarmultRistretto255Base(x);
    const K = ristretto255Agree(sodium, x, y);
    r = dleqHash(sodium, DLEQ_NONCE_LABEL, x, y, f);
    const A1 = sodium.scalarmultRistretto255Base(r);
    const A2 = sodium.scalarmultRistretto255(r, y);
    const c = dleqHash(sodium, DLEQ_CHALLENGE_LABEL, X, y, K, A1, A2, f);
    cx = sodium.ristretto255ScalarMul(c, x);
    const s = sodium.ristretto255ScalarSub(r, cx);
    return { shared: K, proof: concat(c, s) };
  } finally {
    x.fill(0);
    if (r) r.fill(0);
    if (cx) cx.fill(0);
  }
}

/**
 * 12.2 Verify(X, Y, K, proof, ctx): true iff the proof verifies. X, Y and K must be accepted
 * elements and c, s scalars below ℓ; a scalar multiplication with an identity result (s or c
 * zero) fails; c is compared in constant time. Never throws for a bad proof or bad elements.
 */
export function dleqVerify(sodium, xElement, yElement, kElement, proof, ctx) {
  if (!(proof instanceof Uint8Array) || proof.length !== 64) return false;
  let X, Y, K, c, s;
  try {
    X = ristretto255Element(sodium, xElement);
    Y = ristretto255Element(sodium, yElement);
    K = ristretto255Element(sodium, kElement);
    c = ristretto255Scalar(proof.subarray(0, 32));
    s = ristretto255Scalar(proof.subarray(32, 64));
  } catch (error) {
    if (error instanceof VeilError) return false;
    throw error;
  }
  let A1, A2;
  try {
    A1 = sodium.ristretto255Add(sodium.scalarmultRistretto255Base(s), sodium.scalarmultRistretto255(c, X));
    A2 = sodium.ristretto255Add(sodium.scalarmultRistretto255(s, Y), sodium.scalarmultRistretto255(c, K));
  } catch (error) {
    if (sodiumRefused(error)) return false; // an identity product
    throw error;
  }
  const expected = dleqHash(sodium, DLEQ_CHALLENGE_LABEL, X, Y, K, A1, A2, frame(ctx));
  return equalBytes(expected, c);
}
