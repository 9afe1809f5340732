// The masking participant of Veil's secure aggregation (Specs/secagg.md, normative) in browser
// JavaScript: the session (§3) and its neighbour graph (§3.1), keys and masks (§4), the message
// encodings (§5), the participant's state machine R0–R4 (§6), and the parameter rules of §2
// (rules 1–4) with the participant's own policy floor (§2.2). It follows the native client
// (Sources/VeilSecAgg/client/SecAggClient.swift and Sources/VeilSecAgg/shared/*.swift): the same
// checks in the same order, the same abort reasons, the same bytes.
//
// Primitives come from ./sodium.js (libsodium.wasm) and ./veil-crypto.js; nothing here
// re-implements them. The client is sans-IO: start() and handle(bytes) return what to send, and
// all its randomness comes from the injected generator, so a seeded run is reproducible.
//
// Secrets (the encryption and masking keys, the self-mask seed, shares, AEAD keys, pairwise seeds)
// are zeroed when no longer needed and never appear in errors. handle() never throws: bad input
// from the coordinator becomes { aborted: code, round, detail }.

import {
  VeilError, concat, equalBytes, le32, veilKdf, ChaChaGenerator, maskExpansion, shamirSplit, decodeShare, ristretto255Element,
  ristretto255PrivateKey, ristretto255PublicKey, ristretto255Agree, dleqProve, dleqVerify,
} from "./veil-crypto.js";

const ENCODER = new TextEncoder();
const ZERO_NONCE = new Uint8Array(12);
const EMPTY_BYTES = new Uint8Array(0);
const utf8z = (text) => concat(ENCODER.encode(text), Uint8Array.of(0));

const MESSAGE_DOMAIN = utf8z("veil/v1/secagg/message");
const SESSION_DOMAIN = utf8z("veil/v1/secagg/session");
const POSSESSION_DOMAIN = utf8z("veil/v1/secagg/key-possession");
const COMPLAINT_DOMAIN = utf8z("veil/v1/secagg/complaint");
const SELF_MASK_LABEL = utf8z("veil/v1/secagg/self-mask");
const PAIRWISE_MASK_LABEL = utf8z("veil/v1/secagg/pairwise-mask");
const COMMITMENT_DOMAIN = utf8z("veil/v1/secagg/self-mask-commitment");
const SURVIVORS_DOMAIN = utf8z("veil/v1/secagg/survivors");
const SHARES_SIGNED_DOMAIN = utf8z("veil/v1/secagg/shares-signed");
const SHARES_AD_DOMAIN = utf8z("veil/v1/secagg/shares");
const ENDORSEMENT_DOMAIN = utf8z("veil/v1/secagg/share");

export const SERVER = 0;
const VERSION = 1;
const MAX_BODY_BYTES = 1 << 27;
const SECRET_BYTES = 32; // s_u and b_u
const SHARE_BYTES = 45; // an encoded share of a 32-byte secret
const SIGNATURE_BYTES = 64;
const PLAINTEXT_BYTES = 2 * SHARE_BYTES + 2 * SIGNATURE_BYTES; // 218
const CIPHERTEXT_BYTES = PLAINTEXT_BYTES + 16; // 234
const ENTRY_BYTES = 4 + 32 + 24 + CIPHERTEXT_BYTES + SIGNATURE_BYTES; // 358
const KIND_SELF_MASK_SEED = 0;
const KIND_MASKING_KEY = 1;
export const MAX_CLIENT_COUNT = 1 << 20;
const THRESHOLD_FLOOR = 2;

/** The round names of the native client (SecAggRound.description). */
export const ROUND_NAMES = ["R0AdvertiseKeys", "R1ShareKeys", "R2MaskedInputCollection", "R3ConsistencyCheck", "R4Unmasking"];

/** A refusal: `code` is the specification's name (parameter error, policy refusal, abort reason). */
export class SecAggError extends Error {
  constructor(code, detail) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "SecAggError";
    this.code = code;
    this.detail = detail || "";
  }
}

// --- bytes ----------------------------------------------------------------------------------------

function isBytes(x, length) {
  return x instanceof Uint8Array && (length === undefined || x.length === length);
}

/** Reads canonical encodings; every failure is a SecAggError "malformed" (ByteCoding.swift). */
class ByteReader {
  constructor(bytes) {
    this.bytes = bytes;
    this.offset = 0;
  }
  get remaining() {
    return this.bytes.length - this.offset;
  }
  raw(count, field) {
    if (count < 0 || this.remaining < count) {
      throw new SecAggError("malformed", `malformed message: ${field}: needs ${count} bytes, ${this.remaining} left`);
    }
    const out = this.bytes.slice(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }
  u8(field) {
    return this.raw(1, field)[0];
  }
  u32(field) {
    const b = this.raw(4, field);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }
  blob(field, max = 2 ** 30) {
    const count = this.u32(field);
    if (count > max) throw new SecAggError("malformed", `malformed message: ${field}: length ${count} exceeds ${max}`);
    return this.raw(count, field);
  }
  count(field, itemBytes) {
    const count = this.u32(field);
    if (count > Math.floor(this.remaining / Math.max(itemBytes, 1))) {
      throw new SecAggError("malformed", `malformed message: ${field}: ${count} items cannot fit in ${this.remaining} bytes`);
    }
    return count;
  }
  finish(what) {
    if (this.remaining !== 0) throw new SecAggError("malformed", `malformed message: ${what}: ${this.remaining} trailing bytes`);
  }
}

/** §5 SignedMessage: { sessionId, round, sender, recipient, body, signature }, or malformed. */
export function decodeSignedMessage(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new SecAggError("malformed", "malformed message: not bytes");
  const reader = new ByteReader(bytes);
  if (reader.u8("version") !== VERSION) throw new SecAggError("malformed", "malformed message: unknown message version");
  const sessionId = reader.raw(32, "session id");
  const round = reader.u8("round");
  if (round > 4) throw new SecAggError("malformed", "malformed message: unknown round");
  const sender = reader.u32("sender");
  const recipient = reader.u32("recipient");
  const body = reader.blob("body", MAX_BODY_BYTES);
  const signature = reader.raw(SIGNATURE_BYTES, "signature");
  reader.finish("message");
  return { sessionId, round, sender, recipient, body, signature };
}

function unsignedEncoding(sessionId, round, sender, recipient, body) {
  return concat(Uint8Array.of(VERSION), sessionId, Uint8Array.of(round), le32(sender), le32(recipient), le32(body.length), body);
}

/** The canonical encoding of a message, signed with a 64-byte Ed25519 secret key. */
export function encodeSignedMessage(sodium, secretKey, sessionId, round, sender, recipient, body) {
  const unsigned = unsignedEncoding(sessionId, round, sender, recipient, body);
  const signature = sodium.signDetached(concat(MESSAGE_DOMAIN, unsigned), secretKey);
  return concat(unsigned, signature);
}

function verifySignature(sodium, publicKey, message, signature) {
  if (!isBytes(publicKey, 32) || !isBytes(signature, SIGNATURE_BYTES)) return false;
  try {
    return sodium.signVerifyDetached(signature, message, publicKey) === true;
  } catch {
    return false;
  }
}

function messageSignedBy(sodium, m, publicKey) {
  return verifySignature(sodium, publicKey,
    concat(MESSAGE_DOMAIN, unsignedEncoding(m.sessionId, m.round, m.sender, m.recipient, m.body)), m.signature);
}

// --- §2 threat model and parameter rules ------------------------------------------------------

/** γ as the exact decimal it is written as: { numerator, denominator } (BigInt), or null. */
function decimalFraction(value) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return null;
  let text = String(value).toLowerCase();
  let exponent = 0;
  const e = text.indexOf("e");
  if (e >= 0) {
    exponent = Number(text.slice(e + 1));
    if (!Number.isInteger(exponent)) return null;
    text = text.slice(0, e);
  }
  const parts = text.split(".");
  if (parts.length < 1 || parts.length > 2) return null;
  const fraction = parts.length === 2 ? parts[1] : "";
  let digits = parts[0] + fraction;
  let places = fraction.length - exponent;
  while (places < 0) {
    digits += "0";
    places += 1;
  }
  while (places > 0 && digits.length > 1 && digits.endsWith("0")) {
    digits = digits.slice(0, -1);
    places -= 1;
  }
  if (places > 18 || !/^[0-9]+$/.test(digits)) return null;
  const numerator = BigInt(digits);
  if (numerator >= 1n << 64n) return null;
  return { numerator, denominator: 10n ** BigInt(places) };
}

const ceilProduct = (f, n) => {
  const p = f.numerator * BigInt(n);
  return Number(p / f.denominator + (p % f.denominator > 0n ? 1n : 0n));
};
const floorProduct = (f, n) => Number((f.numerator * BigInt(n)) / f.denominator);

// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: relative error near 1e-15).
const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
function lgamma(x) {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}
const logChoose = (n, k) => lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
function hypergeometricPmf(population, marked, draws, x) {
  if (x < 0 || x > marked || draws - x < 0 || draws - x > population - marked) return 0;
  return Math.exp(logChoose(marked, x) + logChoose(population - marked, draws - x) - logChoose(population, draws));
}
function upperTail(population, marked, draws, atLeast) {
  const top = Math.min(marked, draws);
  if (atLeast > top) return 0;
  let sum = 0;
  for (let x = Math.max(atLeast, 0); x <= top; x++) sum += hypergeometricPmf(population, marked, draws, x);
  return sum;
}
function lowerTail(population, marked, draws, below) {
  const bottom = Math.max(0, draws - (population - marked));
  if (below <= bottom) return 0;
  let sum = 0;
  const end = Math.min(below, Math.min(marked, draws) + 1);
  for (let x = bottom; x < end; x++) sum += hypergeometricPmf(population, marked, draws, x);
  return sum;
}

const ADVERSARIES = { "honest-but-curious": 0, "malicious": 1 };

/** The threat model of §2 (ThreatModel.swift): refuses what the spec refuses (invalidThreatModel). */
export class ThreatModel {
  constructor({ adversary, corruptFraction, dropoutFraction, securityBits = 40, population = null }) {
    const byte = typeof adversary === "number" ? adversary : ADVERSARIES[adversary];
    if (byte !== 0 && byte !== 1) throw new SecAggError("invalidThreatModel", `invalid threat model: unknown adversary ${adversary}`);
    const corrupt = decimalFraction(corruptFraction), dropout = decimalFraction(dropoutFraction);
    if (!(corruptFraction >= 0 && corruptFraction < 1 && dropoutFraction >= 0 && dropoutFraction < 1
          && corruptFraction + dropoutFraction < 1) || corrupt === null || dropout === null) {
      throw new SecAggError("invalidThreatModel",
        `invalid threat model: corrupt fraction ${corruptFraction} and dropout fraction ${dropoutFraction} must be in [0, 1) with a sum below 1`);
    }
    if (!Number.isInteger(securityBits) || securityBits < 1 || securityBits > 128) {
      throw new SecAggError("invalidThreatModel", `invalid threat model: security bits ${securityBits} must be in 1...128`);
    }
    if (population !== null && population !== undefined && !(Number.isInteger(population) && population >= 2)) {
      throw new SecAggError("invalidThreatModel", `invalid threat model: a population of ${population} cannot be sampled from`);
    }
    this.adversary = byte; // 0 honest-but-curious server, 1 malicious server
    this.corruptFraction = corruptFraction;
    this.dropoutFraction = dropoutFraction;
    this.securityBits = securityBits;
    this.population = population ?? null;
    this.corrupt = corrupt;
    this.dropout = dropout;
  }

  /** n_C = max(1, ⌈γn⌉) exactly, or the 2^−σ hypergeometric tail of a sampled cohort. */
  corruptCount(n) {
    if (this.population === null || n >= this.population) return Math.max(1, ceilProduct(this.corrupt, n));
    const marked = ceilProduct(this.corrupt, this.population);
    const bound = 2 ** -this.securityBits;
    let tail = 0;
    let c = Math.min(marked, n);
    while (c > 0) {
      const next = tail + hypergeometricPmf(this.population, marked, n, c);
      if (next > bound) break;
      tail = next;
      c -= 1;
    }
    return Math.max(1, c);
  }

  /** ⌊δn⌋. */
  dropoutCount(n) {
    return floorProduct(this.dropout, n);
  }
}

/** The smallest threshold rules 1, 2 and 4 allow: { minimum, why } or { refused: SecAggError }. */
function requirement(n, k, model) {
  const corrupt = model.corruptCount(n);
  if (model.adversary === 0 && k === n - 1) {
    return { minimum: corrupt + 1, why: `an honest-but-curious server colluding with n_C = ${corrupt} participants learns an input once n_C ≥ t (Bonawitz et al. 2017, Theorem 6.3: secure iff t > n_C)` };
  }
  if (model.adversary === 0) {
    const bound = 2 ** -model.securityBits / n;
    let t = THRESHOLD_FLOOR;
    while (t <= k + 1 && upperTail(n - 1, corrupt, k, t) > bound) t += 1;
    return { minimum: t, why: `with ${corrupt} corrupt participants among ${n}, some participant has t = t_min − 1 corrupt neighbours with probability above 2^-${model.securityBits} (Bell et al. 2020, semi-honest security)` };
  }
  if (k === n - 1) {
    return { minimum: Math.floor((n + corrupt) / 2) + 1, why: `a malicious server could show two survivor views, each signed by t participants, when 2t ≤ n + n_C (Bonawitz et al. 2017, §6: t > (n + n_C)/2 with n_C = ${corrupt})` };
  }
  return { refused: new SecAggError("maliciousRequiresCompleteGraph",
    `a malicious server needs the complete graph (k = ${n - 1}), not k = ${k}: on a sparse graph it could drop honest participants on purpose to cut the graph and learn the sums of small groups`) };
}

const disconnectionProbability = (n, k, model) => n * Math.pow(model.corruptFraction + model.dropoutFraction, Math.floor(k / 2));

/** §2: checks n, t, k (and d when given) against the graph's shape and rules 1–4; throws SecAggError. */
export function validateParameters(n, t, k, model, dimension = undefined) {
  if (!(Number.isInteger(n) && n >= 2 && n <= MAX_CLIENT_COUNT)) {
    throw new SecAggError("clientCountOutOfRange", `${n} participants: a session needs 2...${MAX_CLIENT_COUNT}`);
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= n - 1)) {
    throw new SecAggError("neighborCountOutOfRange", `${k} neighbours for ${n} participants: need 1 ≤ k ≤ n − 1`);
  }
  if (!(k === n - 1 || k % 2 === 0 || n % 2 === 0)) {
    throw new SecAggError("hararyGraphUndefined", `a ${k}-regular Harary graph on ${n} vertices does not exist: k odd needs n even`);
  }
  if (!(Number.isInteger(t) && t >= THRESHOLD_FLOOR && t <= k + 1)) {
    throw new SecAggError("thresholdOutOfRange", `threshold ${t} with ${k} neighbours: need 2 ≤ t ≤ k + 1 (with t = 1 each share is the secret)`);
  }
  const rule = requirement(n, k, model);
  if (rule.refused) throw rule.refused;
  if (t < rule.minimum) {
    throw new SecAggError("thresholdTooLow", `threshold ${t} is below the minimum ${rule.minimum} for this threat model: ${rule.why}`);
  }
  if (k < n - 1) {
    const failure = disconnectionProbability(n, k, model);
    if (!(failure <= 2 ** -model.securityBits)) {
      throw new SecAggError("graphTooSparse", `${k} neighbours for ${n} participants: honest survivors may split into groups whose sums the server learns separately, with probability up to ${failure} > 2^-${model.securityBits} (Bell et al. 2020: n·(γ+δ)^⌊k/2⌋)`);
    }
  }
  if (dimension !== undefined && !(Number.isInteger(dimension) && dimension >= 1)) {
    throw new SecAggError("dimensionOutOfRange", `vector length ${dimension} must be at least 1`);
  }
}

/** §2.1: the recommended { neighborCount, threshold } for n, or noParametersMeet. */
export function recommendParameters(n, model, correctnessBits = 20) {
  const target = 2 ** -correctnessBits;
  let candidates = [];
  for (let k = 2; k < n - 1; k += 2) candidates.push(k);
  candidates.push(n - 1);
  if (model.adversary === 1) candidates = [n - 1];
  for (const k of candidates) {
    if (k < n - 1 && disconnectionProbability(n, k, model) > 2 ** -model.securityBits) continue;
    const rule = requirement(n, k, model);
    if (rule.refused || rule.minimum > k + 1) continue;
    const t = rule.minimum;
    validateParameters(n, t, k, model);
    const dropped = model.dropoutCount(n);
    const bound = dropped > 0 ? Math.min(1, n * lowerTail(n - 1, n - 1 - dropped, k, t)) : 0;
    if (bound <= target) return { neighborCount: k, threshold: t };
  }
  throw new SecAggError("noParametersMeet", `no (k, t) for ${n} participants meets the threat model`);
}

/** §2.2: what a participant requires of every session it joins, whatever the server proposes. */
export class SecAggPolicy {
  constructor({ adversary = "malicious", corruptFraction, dropoutFraction, securityBits = 40, minCohort, minContributors, population = null }) {
    this.threatModel = new ThreatModel({ adversary, corruptFraction, dropoutFraction, securityBits, population });
    if (!(Number.isInteger(minCohort) && minCohort >= 2 && Number.isInteger(minContributors) && minContributors >= THRESHOLD_FLOOR)) {
      throw new SecAggError("invalidThreatModel",
        `invalid threat model: the smallest cohort (${minCohort}) and the fewest contributors (${minContributors}) must be at least 2`);
    }
    this.minCohort = minCohort;
    this.minContributors = minContributors;
  }

  /** Throws SecAggError (cohortTooSmall, releaseBelowFloor, or the parameter rule's code). */
  check(clientCount, threshold, neighborCount) {
    if (!(clientCount >= this.minCohort)) {
      throw new SecAggError("cohortTooSmall", `a cohort of ${clientCount} is below the ${this.minCohort} this participant's policy requires`);
    }
    if (!(threshold >= this.minContributors)) {
      throw new SecAggError("releaseBelowFloor",
        `threshold ${threshold} would let a sum of fewer than the ${this.minContributors} contributors this participant's policy requires be released`);
    }
    try {
      validateParameters(clientCount, threshold, neighborCount, this.threatModel);
    } catch (error) {
      if (error instanceof SecAggError) throw new SecAggError(error.code, `under this participant's own threat model: ${error.detail}`);
      throw error;
    }
  }

  /** The smallest threshold this policy accepts for (n, k), or null. */
  requiredThreshold(n, k) {
    if (n < this.minCohort || !(n >= 2 && k >= 1 && k <= n - 1)) return null;
    const rule = requirement(n, k, this.threatModel);
    if (rule.refused || rule.minimum > k + 1) return null;
    const required = Math.max(rule.minimum, this.minContributors);
    return required <= k + 1 ? required : null;
  }
}

// --- §3 session and §3.1 neighbour graph ------------------------------------------------------

const TWO_64 = 1n << 64n;

function uniformBelow(generator, bound) {
  const b = BigInt(bound);
  const rejectBelow = TWO_64 % b;
  for (;;) {
    const v = generator.next();
    if (v >= rejectBelow) return Number(v % b);
  }
}

export class SecAggSession {
  /** Validates the parameters (§2, as SecAggParameters does) and computes the session id and graph. */
  static create(sodium, { clientCount, threshold, neighborCount, bits, dimension, adversary, corruptFraction = 0,
                          dropoutFraction = 0, securityBits = 40, serverKey, clientKeys, nonce, context }) {
    const model = new ThreatModel({ adversary, corruptFraction, dropoutFraction, securityBits });
    validateParameters(clientCount, threshold, neighborCount, model, dimension);
    if (!(Number.isInteger(bits) && bits >= 1 && bits <= 64)) throw new SecAggError("bitWidthOutOfRange", `b = ${bits}`);
    if (!Array.isArray(clientKeys) || clientKeys.length !== clientCount) {
      throw new SecAggError("rosterSize", `roster of ${clientKeys && clientKeys.length} identities for ${clientCount} participants`);
    }
    if (!isBytes(serverKey, 32) || !clientKeys.every((k) => isBytes(k, 32))) throw new SecAggError("invalidIdentityKey", "identity keys are 32 bytes");
    if (!isBytes(nonce, 32)) throw new SecAggError("nonceLength", `session nonce of ${nonce && nonce.length} bytes, expected 32`);
    if (!isBytes(context, 32)) throw new SecAggError("contextLength", `session context of ${context && context.length} bytes, expected 32`);
    return new SecAggSession(sodium, { clientCount, threshold, neighborCount, bits, dimension, model, serverKey, clientKeys, nonce, context });
  }

  constructor(sodium, p) {
    this.sodium = sodium;
    this.clientCount = p.clientCount;
    this.threshold = p.threshold;
    this.neighborCount = p.neighborCount;
    this.bits = p.bits;
    this.dimension = p.dimension;
    this.threatModel = p.model;
    this.serverKey = p.serverKey.slice();
    this.clientKeys = p.clientKeys.map((k) => k.slice());
    this.nonce = p.nonce.slice();
    this.context = p.context.slice();
    this._id = sodium.hashSha256(concat(SESSION_DOMAIN, this.nonce, le32(p.clientCount), le32(p.threshold), le32(p.neighborCount),
      Uint8Array.of(p.bits), le32(p.dimension), Uint8Array.of(p.model.adversary), this.serverKey, ...this.clientKeys, this.context));
    const n = p.clientCount, k = p.neighborCount;
    const ring = Array.from({ length: n }, (_, i) => i + 1);
    if (k < n - 1) {
      const seed = veilKdf(sodium, this._id, "secagg/graph");
      const generator = new ChaChaGenerator(sodium, seed);
      seed.fill(0);
      for (let i = n - 1; i > 0; i--) {
        const j = uniformBelow(generator, i + 1);
        [ring[i], ring[j]] = [ring[j], ring[i]];
      }
      generator.dispose();
    }
    this.ring = ring;
    this.position = new Array(n);
    ring.forEach((id, p2) => { this.position[id - 1] = p2; });
  }

  get id() {
    return this._id.slice();
  }

  /** Whether party is a participant 1…n. */
  isParticipant(party) {
    return Number.isInteger(party) && party >= 1 && party <= this.clientCount;
  }

  /** The identity key of party (0: the server), or null. */
  identity(party) {
    if (party === SERVER) return this.serverKey;
    return this.isParticipant(party) ? this.clientKeys[party - 1] : null;
  }

  /** N(position), ascending (§3.1). */
  neighbors(position) {
    const n = this.clientCount, k = this.neighborCount;
    if (!this.isParticipant(position)) throw new SecAggError("unknownParticipant", `participant ${position} is not in the roster`);
    if (k === n - 1) return Array.from({ length: n }, (_, i) => i + 1).filter((v) => v !== position);
    const p = this.position[position - 1];
    const out = new Set();
    for (let offset = 1; offset <= Math.floor(k / 2); offset++) {
      out.add(this.ring[(p + offset) % n]);
      out.add(this.ring[(p - offset + n) % n]);
    }
    if (k % 2 === 1) out.add(this.ring[(p + Math.floor(n / 2)) % n]);
    return [...out].sort((a, b) => a - b);
  }

  /** Whether a and b (participants) are neighbours. */
  areNeighbors(a, b) {
    if (!this.isParticipant(a) || !this.isParticipant(b) || a === b) return false;
    const n = this.clientCount, k = this.neighborCount;
    if (k === n - 1) return true;
    const distance = Math.abs(this.position[a - 1] - this.position[b - 1]);
    const ringDistance = Math.min(distance, n - distance);
    return ringDistance <= Math.floor(k / 2) || (k % 2 === 1 && distance === Math.floor(n / 2));
  }
}

// --- §4 keys and masks --------------------------------------------------------------------------

const pairContext = (a, b) => concat(le32(Math.min(a, b)), le32(Math.max(a, b)));
let BASE_POINT = null; // B, the ristretto255 generator's encoding
function basePoint(sodium) {
  if (BASE_POINT === null) {
    const one = new Uint8Array(32);
    one[0] = 1;
    BASE_POINT = sodium.scalarmultRistretto255Base(one);
  }
  return BASE_POINT;
}
const possessionContext = (sessionId, owner) => concat(POSSESSION_DOMAIN, sessionId, le32(owner));
const complaintContext = (sessionId, accuser, accused) => concat(COMPLAINT_DOMAIN, sessionId, le32(accuser), le32(accused));
const sharesAssociatedData = (sessionId, sender, recipient) => concat(SHARES_AD_DOMAIN, sessionId, le32(sender), le32(recipient));
const sharesSignedBytes = (sessionId, sender, recipient, recipientKey, nonce, ciphertext) =>
  concat(SHARES_SIGNED_DOMAIN, sessionId, le32(sender), le32(recipient), recipientKey, nonce, ciphertext);
const endorsementBytes = (sessionId, owner, kind, share) => concat(ENDORSEMENT_DOMAIN, sessionId, le32(owner), Uint8Array.of(kind), share);

/** Whether a 45-byte encoded share is a share of a 32-byte secret at index `recipient` (§9.4 decoding). */
function shareFor(share, recipient) {
  try {
    const decoded = decodeShare(share);
    return decoded.index === recipient && decoded.length === SECRET_BYTES;
  } catch (error) {
    if (error instanceof VeilError) return false;
    throw error;
  }
}

/** Adds (sign +1) or subtracts (−1) a mask into a BigInt vector mod 2^b. */
function fold(vector, mask, sign, modulus) {
  if (sign > 0) {
    for (let i = 0; i < vector.length; i++) {
      const v = vector[i] + mask[i];
      vector[i] = v >= modulus ? v - modulus : v;
    }
  } else {
    for (let i = 0; i < vector.length; i++) {
      const v = vector[i] - mask[i];
      vector[i] = v < 0n ? v + modulus : v;
    }
  }
}

/**
 * Elements of Z_(2^b), b ≤ 64, as two 32-bit limbs each (lo, hi; hi is 0 when b ≤ 32): masking
 * folds d keystream words into d inputs, and BigInt arithmetic per element would dominate it.
 * Every limb operation below is on integers below 2^34, exact in doubles.
 */
class Limbs {
  constructor(bits, count) {
    this.bits = bits;
    this.lo = new Uint32Array(count);
    this.hi = new Uint32Array(count);
    // The bits of each limb that Z_(2^b) keeps: 2^32 is written as 0 (no mask) for a full limb.
    this.loModulus = bits >= 32 ? 2 ** 32 : 2 ** bits;
    this.hiModulus = bits > 32 ? 2 ** (bits - 32) : 1;
  }

  static fromBigInts(values, bits) {
    const limbs = new Limbs(bits, values.length);
    if (bits <= 32) {
      // Each value is below 2^32 already: one conversion, no BigInt arithmetic.
      for (let i = 0; i < values.length; i++) limbs.lo[i] = Number(values[i]);
      return limbs;
    }
    for (let i = 0; i < values.length; i++) {
      limbs.lo[i] = Number(values[i] & 0xffffffffn);
      limbs.hi[i] = Number(values[i] >> 32n);
    }
    return limbs;
  }

  /** Adds (sign +1) or subtracts (−1) the mask expanded from `seed` (primitives §8), mod 2^b. */
  foldMask(sodium, seed, label, sign) {
    const count = this.lo.length, width = Math.ceil(this.bits / 8);
    const key = veilKdf(sodium, seed, "mask-expansion", EMPTY_BYTES, label, 32);
    const stream = sodium.chacha20IetfKeystream(width * count, ZERO_NONCE, 0, key);
    key.fill(0);
    const { lo, hi, loModulus, hiModulus } = this;
    const words = (this.bits === 32 || this.bits === 64) ? wordsOf(stream) : null;
    if (words !== null) {
      // The common rings, word by word: b = 32 (one word an element) and b = 64 (two).
      const step = this.bits / 32;
      for (let i = 0, at = 0; i < count; i++, at += step) {
        let l = sign > 0 ? lo[i] + words[at] : lo[i] - words[at];
        let carry = 0;
        if (l >= 4294967296) { l -= 4294967296; carry = 1; } else if (l < 0) { l += 4294967296; carry = -1; }
        lo[i] = l;
        if (step === 2) hi[i] = (sign > 0 ? hi[i] + words[at + 1] : hi[i] - words[at + 1]) + carry; // Uint32Array wraps mod 2^32
      }
      stream.fill(0);
      return;
    }
    const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
    for (let i = 0, at = 0; i < count; i++, at += width) {
      // The element's little-endian bytes: the first four the low limb, the rest the high one.
      let mLo = 0, mHi = 0;
      if (width >= 4) {
        mLo = view.getUint32(at, true);
        if (width === 8) mHi = view.getUint32(at + 4, true);
        else for (let j = width - 1; j >= 4; j--) mHi = mHi * 256 + stream[at + j];
      } else {
        for (let j = width - 1; j >= 0; j--) mLo = mLo * 256 + stream[at + j];
      }
      if (loModulus !== 2 ** 32) mLo %= loModulus;
      if (hiModulus !== 2 ** 32) mHi %= hiModulus;
      let l, h;
      if (sign > 0) {
        l = lo[i] + mLo;
        h = hi[i] + mHi;
        if (l >= loModulus) { l -= loModulus; h += 1; }
        if (h >= hiModulus) h -= hiModulus;
      } else {
        l = lo[i] - mLo;
        h = hi[i] - mHi;
        if (l < 0) { l += loModulus; h -= 1; }
        if (h < 0) h += hiModulus;
      }
      lo[i] = l;
      hi[i] = h;
    }
    stream.fill(0);
  }

  toBigInts() {
    return Array.from(this.lo, (l, i) => (BigInt(this.hi[i]) << 32n) | BigInt(l));
  }

  /** d elements of ⌈b/8⌉ little-endian bytes (§5). */
  encode() {
    const width = Math.ceil(this.bits / 8), count = this.lo.length;
    const out = new Uint8Array(count * width);
    const words = (this.bits === 32 || this.bits === 64) ? wordsOf(out) : null;
    if (words !== null) {
      if (this.bits === 32) words.set(this.lo);
      else for (let i = 0; i < count; i++) { words[2 * i] = this.lo[i]; words[2 * i + 1] = this.hi[i]; }
      return out;
    }
    for (let i = 0, at = 0; i < count; i++, at += width) {
      let l = this.lo[i], h = this.hi[i];
      for (let j = 0; j < width; j++) {
        if (j < 4) {
          out[at + j] = l & 0xff;
          l >>>= 8;
        } else {
          out[at + j] = h & 0xff;
          h >>>= 8;
        }
      }
    }
    return out;
  }

  wipe() {
    this.lo.fill(0);
    this.hi.fill(0);
  }
}

/** The bytes as little-endian 32-bit words, without a copy, or null where that view would be wrong. */
function wordsOf(bytes) {
  if (!LITTLE_ENDIAN || bytes.byteOffset % 4 !== 0 || bytes.length % 4 !== 0) return null;
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * One participant's masking work in R2 (§6): x + self mask(b_u) + Σ Δ_uv · pairwise mask(u, v) mod 2^b,
 * for the pairwise seeds given (peer → 32-byte seed, ascending), as limbs.
 */
function maskLimbs(sodium, session, id, input, selfMaskSeed, pairwiseSeeds) {
  const sessionId = session._id;
  const masked = Limbs.fromBigInts(input, session.bits);
  masked.foldMask(sodium, selfMaskSeed, concat(SELF_MASK_LABEL, sessionId), +1);
  for (const [peer, seed] of pairwiseSeeds) {
    masked.foldMask(sodium, seed, concat(PAIRWISE_MASK_LABEL, sessionId), id < peer ? +1 : -1);
  }
  return masked;
}

/** The masked input as R2 sends it: d elements of ⌈b/8⌉ little-endian bytes (§5). */
export function maskedVectorBytes(sodium, session, id, input, selfMaskSeed, pairwiseSeeds) {
  const masked = maskLimbs(sodium, session, id, input, selfMaskSeed, pairwiseSeeds);
  try {
    return masked.encode();
  } finally {
    masked.wipe();
  }
}

/** The same as BigInts (exposed for the tests). */
export function maskInput(sodium, session, id, input, selfMaskSeed, pairwiseSeeds) {
  const masked = maskLimbs(sodium, session, id, input, selfMaskSeed, pairwiseSeeds);
  const values = masked.toBigInts();
  masked.wipe();
  return values;
}

/** The masking with BigInt arithmetic and veil-crypto.js's maskExpansion: what the limbs must equal. */
export function maskInputReference(sodium, session, id, input, selfMaskSeed, pairwiseSeeds) {
  const sessionId = session._id;
  const bits = session.bits, d = session.dimension;
  const modulus = 1n << BigInt(bits);
  const masked = input.slice();
  const selfMask = maskExpansion(sodium, selfMaskSeed, concat(SELF_MASK_LABEL, sessionId), bits, d);
  fold(masked, selfMask, +1, modulus);
  selfMask.fill(0n);
  for (const [peer, seed] of pairwiseSeeds) {
    const mask = maskExpansion(sodium, seed, concat(PAIRWISE_MASK_LABEL, sessionId), bits, d);
    fold(masked, mask, id < peer ? +1 : -1, modulus);
    mask.fill(0n);
  }
  return masked;
}

// --- §6 the participant ----------------------------------------------------------------------------

/** An abort reason inside the state machine. */
class Abort extends Error {
  constructor(code, detail) {
    super(code);
    this.code = code;
    this.detail = detail || code;
  }
}

const wrap = (error) => (error instanceof SecAggError ? new Abort(error.code, error.detail || error.message) : error);

const AWAITED = { advertiseKeys: 0, shareKeys: 1, maskedInputCollection: 2, consistencyCheck: 3, unmasking: 4 };

export class SecAggClient {
  constructor(sodium, session, position, signingSeed, input, generator) {
    if (!(session instanceof SecAggSession)) throw new SecAggError("invalidSession", "not a SecAggSession");
    if (!session.isParticipant(position)) throw new SecAggError("unknownParticipant", `participant ${position} is not in the roster`);
    if (!isBytes(signingSeed, 32)) throw new SecAggError("identityMismatch", "the identity seed must be 32 bytes");
    const { publicKey, secretKey } = sodium.signSeedKeypair(signingSeed);
    if (!equalBytes(publicKey, session.identity(position))) {
      secretKey.fill(0);
      throw new SecAggError("identityMismatch", `the identity key given for participant ${position} is not the roster's`);
    }
    const modulus = 1n << BigInt(session.bits);
    if (!Array.isArray(input) || input.length !== session.dimension
        || !input.every((x) => typeof x === "bigint" && x >= 0n && x < modulus)) {
      secretKey.fill(0);
      throw new SecAggError("inputShape", `input must be ${session.dimension} BigInts in [0, 2^${session.bits})`);
    }
    if (!generator || typeof generator.next !== "function" || typeof generator.bytes !== "function") {
      secretKey.fill(0);
      throw new SecAggError("invalidGenerator", "the generator needs next() and bytes(n)");
    }
    this.sodium = sodium;
    this.session = session;
    this.id = position;
    this._identity = secretKey; // seed ‖ public key: zeroed once the client has finished
    this._generator = generator;
    this._state = "advertiseKeys";
    this._s = { input: input.slice() };
    this._abort = null;
  }

  get completed() {
    return this._state === "completed";
  }

  /** The abort { code, round, detail }, or null. */
  get abort() {
    return this._abort;
  }

  /** The round whose server message the client waits for (0…4), or null when finished. */
  get awaitedRound() {
    return this._state in AWAITED ? AWAITED[this._state] : null;
  }

  /** R0: draws c_u and s_u and advertises C_u, s_u^PK and the proof of possession of c_u. */
  start() {
    if (this._state !== "advertiseKeys") return { ignored: true };
    try {
      const sodium = this.sodium;
      const encryption = ristretto255PrivateKey(sodium, this._generator);
      const masking = this._generator.bytes(32);
      const encryptionPublic = ristretto255PublicKey(sodium, encryption);
      const maskingPublic = sodium.scalarmultBase(masking);
      const { shared, proof } = dleqProve(sodium, encryption, basePoint(sodium),
        possessionContext(this.session._id, this.id));
      shared.fill(0);
      this._s.encryption = encryption;
      this._s.encryptionPublic = encryptionPublic;
      this._s.masking = masking;
      this._state = "shareKeys";
      return { send: this._message(0, concat(encryptionPublic, maskingPublic, proof)) };
    } catch (error) {
      return this._fail(0, error instanceof Abort ? error : new Abort("internalError", String(error && error.name)));
    }
  }

  /** Handles a server message (its encoding). Never throws. */
  handle(bytes) {
    const round = this.awaitedRound;
    if (round === null) return { ignored: true };
    let message;
    try {
      message = decodeSignedMessage(bytes);
    } catch (error) {
      return this._fail(round, error instanceof SecAggError ? new Abort("malformed", error.detail) : new Abort("malformed", "unreadable"));
    }
    try {
      this._envelope(message, round);
      switch (this._state) {
        case "shareKeys": return { send: this._shareKeys(message.body) };
        case "maskedInputCollection": return { send: this._maskedInput(message.body) };
        case "consistencyCheck": return { send: this._consistency(message.body) };
        case "unmasking": return { send: this._unmask(message.body) };
        case "advertiseKeys": throw new Abort("wrongRound", `expected a message of ${ROUND_NAMES[0]}, received one of ${ROUND_NAMES[message.round]}`);
        default: return { ignored: true };
      }
    } catch (error) {
      const reason = wrap(error);
      return this._fail(round, reason instanceof Abort ? reason : new Abort("internalError", String(error && error.name)));
    }
  }

  // --- checks and helpers ---

  _envelope(m, round) {
    if (!equalBytes(m.sessionId, this.session._id)) throw new Abort("wrongSession", "the message belongs to another session");
    if (m.round !== round) throw new Abort("wrongRound", `expected a message of ${ROUND_NAMES[round]}, received one of ${ROUND_NAMES[m.round]}`);
    if (m.sender !== SERVER) throw new Abort("wrongSender", `the message claims sender ${m.sender}`);
    if (m.recipient !== this.id) throw new Abort("wrongRecipient", `the message is addressed to ${m.recipient}`);
    if (!messageSignedBy(this.sodium, m, this.session.serverKey)) throw new Abort("invalidSignature", "the signature of party 0 does not verify");
  }

  _requireNeighbourhood(remaining) {
    if (remaining < this.session.threshold) {
      throw new Abort("notEnoughNeighbors", `${remaining} of the neighbourhood remain, ${this.session.threshold} needed`);
    }
  }

  _message(round, body) {
    return encodeSignedMessage(this.sodium, this._identity, this.session._id, round, this.id, SERVER, body);
  }

  _fail(round, abort) {
    this._wipe();
    this._state = "aborted";
    this._abort = { code: abort.code, round: ROUND_NAMES[round], detail: abort.detail };
    return { aborted: abort.code, round: ROUND_NAMES[round], detail: abort.detail };
  }

  /** Zeroes every secret the client holds, its identity key included (it has finished). */
  _wipe() {
    this._wipeRound();
    if (this._identity) this._identity.fill(0);
  }

  /** Zeroes the round secrets (keys, seed, input, AEAD keys, shares). */
  _wipeRound() {
    const s = this._s || {};
    for (const key of ["encryption", "masking", "selfMaskSeed"]) if (s[key]) s[key].fill(0);
    if (s.input) s.input.fill(0n);
    if (s.shareKeys) for (const k of s.shareKeys.values()) k.fill(0);
    if (s.held) for (const h of s.held.values()) for (const part of [h.maskingShare, h.seedShare]) part.fill(0);
    if (s.ownShares) for (const part of [s.ownShares.maskingShare, s.ownShares.seedShare]) part.fill(0);
    this._s = {};
  }

  // --- rounds ---

  /** R1: check the neighbours' signed keys; deal, endorse, encrypt and sign shares of s_u and b_u. */
  _shareKeys(body) {
    const sodium = this.sodium, session = this.session, sessionId = session._id, id = this.id, s = this._s;
    const reader = new ByteReader(body);
    const count = reader.count("advertisements", 4);
    const advertisements = [];
    for (let i = 0; i < count; i++) {
      const blob = reader.blob("advertisement");
      try {
        advertisements.push(decodeSignedMessage(blob));
      } catch (error) {
        throw wrap(error);
      }
    }
    reader.finish("KeysBroadcast");
    const peers = new Map(); // v → { encryptionKey, maskingKey }
    for (const a of advertisements) {
      const peer = a.sender;
      if (!equalBytes(a.sessionId, sessionId)) throw new Abort("wrongSession", "an advertisement belongs to another session");
      if (a.round !== 0) throw new Abort("wrongRound", `expected a message of ${ROUND_NAMES[0]}, received one of ${ROUND_NAMES[a.round]}`);
      if (a.recipient !== SERVER) throw new Abort("wrongRecipient", `the message is addressed to ${a.recipient}`);
      if (!session.areNeighbors(id, peer) || peers.has(peer)) {
        throw new Abort("unexpectedPeer", `party ${peer} is not an expected neighbour (or appears twice)`);
      }
      const key = session.identity(peer);
      if (key === null || !messageSignedBy(sodium, a, key)) throw new Abort("invalidSignature", `the signature of party ${peer} does not verify`);
      const r = new ByteReader(a.body);
      let encryptionKey;
      try {
        encryptionKey = ristretto255Element(sodium, r.raw(32, "encryption key"));
      } catch (error) {
        if (error instanceof VeilError) throw new Abort("malformed", "malformed message: the encryption key is not an accepted ristretto255 element");
        throw wrap(error);
      }
      const maskingKey = r.raw(32, "masking key");
      const proof = r.raw(64, "possession proof");
      r.finish("AdvertiseKeys");
      if (!dleqVerify(sodium, encryptionKey, basePoint(sodium), encryptionKey, proof, possessionContext(sessionId, peer))) {
        throw new Abort("invalidKeyProof", `participant ${peer}'s proof that it knows its encryption key does not verify`);
      }
      peers.set(peer, { encryptionKey, maskingKey });
    }
    this._requireNeighbourhood(peers.size + 1);

    const holders = [...peers.keys(), id].sort((a, b) => a - b);
    const selfMaskSeed = this._generator.bytes(SECRET_BYTES);
    const maskingShares = shamirSplit(s.masking, session.threshold, session.clientCount, this._generator, holders);
    const seedShares = shamirSplit(selfMaskSeed, session.threshold, session.clientCount, this._generator, holders);
    const shareKeys = new Map();
    const entries = [];
    let own = null;
    holders.forEach((holder, i) => {
      const shares = {
        maskingShare: maskingShares[i],
        maskingEndorsement: sodium.signDetached(endorsementBytes(sessionId, id, KIND_MASKING_KEY, maskingShares[i]), this._identity),
        seedShare: seedShares[i],
        seedEndorsement: sodium.signDetached(endorsementBytes(sessionId, id, KIND_SELF_MASK_SEED, seedShares[i]), this._identity),
      };
      if (holder === id) {
        own = shares;
        return;
      }
      const recipientKey = peers.get(holder).encryptionKey;
      let shared;
      try {
        shared = ristretto255Agree(sodium, s.encryption, recipientKey);
      } catch (error) {
        if (error instanceof VeilError) throw new Abort("weakPeerKey", `participant ${holder} advertised a key of small order`);
        throw error;
      }
      const key = veilKdf(sodium, shared, "secagg/share-key", sessionId, pairContext(id, holder));
      shared.fill(0);
      shareKeys.set(holder, key);
      const nonce = this._generator.bytes(24);
      const plaintext = concat(shares.maskingShare, shares.seedShare, shares.maskingEndorsement, shares.seedEndorsement);
      const ciphertext = sodium.aeadEncrypt(plaintext, sharesAssociatedData(sessionId, id, holder), nonce, key);
      plaintext.fill(0);
      shares.maskingShare.fill(0);
      shares.seedShare.fill(0);
      const signature = sodium.signDetached(sharesSignedBytes(sessionId, id, holder, recipientKey, nonce, ciphertext), this._identity);
      entries.push(concat(le32(holder), recipientKey, nonce, ciphertext, signature));
    });
    const commitment = sodium.hashSha256(concat(COMMITMENT_DOMAIN, sessionId, le32(id), selfMaskSeed));
    s.peers = peers;
    s.shareKeys = shareKeys;
    s.selfMaskSeed = selfMaskSeed;
    s.ownShares = own;
    this._state = "maskedInputCollection";
    return this._message(1, concat(commitment, le32(entries.length), ...entries));
  }

  /** R2: open the neighbours' shares (complaining about bad ones), then mask the input. */
  _maskedInput(body) {
    const sodium = this.sodium, session = this.session, sessionId = session._id, id = this.id, s = this._s;
    const reader = new ByteReader(body);
    const count = reader.count("shares", ENTRY_BYTES);
    const entries = [];
    for (let i = 0; i < count; i++) {
      entries.push({
        peer: reader.u32("peer"), recipientKey: reader.raw(32, "recipient key"), nonce: reader.raw(24, "nonce"),
        ciphertext: reader.raw(CIPHERTEXT_BYTES, "ciphertext"), signature: reader.raw(SIGNATURE_BYTES, "share signature"),
      });
    }
    reader.finish("SharesForward");
    const held = new Map([[id, s.ownShares]]);
    s.ownShares = null;
    s.held = held; // wiped with the rest if this round aborts
    const sent = new Set();
    const opened = new Map();
    for (const entry of entries) {
      const peer = entry.peer;
      const key = s.shareKeys.get(peer);
      if (key === undefined || sent.has(peer)) throw new Abort("unexpectedPeer", `party ${peer} is not an expected neighbour (or appears twice)`);
      sent.add(peer);
      let plaintext = null;
      try {
        plaintext = sodium.aeadDecrypt(entry.ciphertext, sharesAssociatedData(sessionId, peer, id), entry.nonce, key);
      } catch {
        plaintext = null;
      }
      if (plaintext === null) continue;
      if (plaintext.length === PLAINTEXT_BYTES) {
        const maskingShare = plaintext.slice(0, SHARE_BYTES);
        const seedShare = plaintext.slice(SHARE_BYTES, 2 * SHARE_BYTES);
        if (shareFor(maskingShare, id) && shareFor(seedShare, id)) {
          opened.set(peer, {
            maskingShare, seedShare,
            maskingEndorsement: plaintext.slice(2 * SHARE_BYTES, 2 * SHARE_BYTES + SIGNATURE_BYTES),
            seedEndorsement: plaintext.slice(2 * SHARE_BYTES + SIGNATURE_BYTES),
          });
        } else {
          maskingShare.fill(0);
          seedShare.fill(0);
        }
      }
      plaintext.fill(0);
    }
    for (const owner of [...opened.keys()].sort((a, b) => a - b)) {
      const key = session.identity(owner);
      const shares = opened.get(owner);
      if (verifySignature(sodium, key, endorsementBytes(sessionId, owner, KIND_MASKING_KEY, shares.maskingShare), shares.maskingEndorsement)
          && verifySignature(sodium, key, endorsementBytes(sessionId, owner, KIND_SELF_MASK_SEED, shares.seedShare), shares.seedEndorsement)) {
        held.set(owner, shares);
      } else {
        shares.maskingShare.fill(0);
        shares.seedShare.fill(0);
      }
    }
    const complaints = [];
    const accused = new Set();
    for (const entry of entries) {
      const peer = entry.peer;
      if (held.has(peer)) continue;
      accused.add(peer);
      const key = session.identity(peer);
      if (key !== null && equalBytes(entry.recipientKey, s.encryptionPublic)
          && verifySignature(sodium, key, sharesSignedBytes(sessionId, peer, id, entry.recipientKey, entry.nonce, entry.ciphertext), entry.signature)) {
        // Signed by the neighbour and not opening: prove it with K = c_u·C_peer.
        let proved;
        try {
          proved = dleqProve(sodium, s.encryption, s.peers.get(peer).encryptionKey, complaintContext(sessionId, id, peer));
        } catch (error) {
          if (error instanceof VeilError) throw new Abort("weakPeerKey", `participant ${peer} advertised a key of small order`);
          throw error;
        }
        complaints.push(concat(le32(peer), Uint8Array.of(1), proved.shared, proved.proof));
      } else {
        complaints.push(concat(le32(peer), Uint8Array.of(0)));
      }
    }
    this._requireNeighbourhood(held.size);

    // Pairwise agreement with each held neighbour, ascending, before any mask is expanded.
    const peers = [...held.keys()].filter((v) => v !== id).sort((a, b) => a - b);
    const seeds = [];
    try {
      for (const peer of peers) {
        let secret;
        try {
          secret = sodium.scalarmult(s.masking, s.peers.get(peer).maskingKey);
        } catch {
          throw new Abort("weakPeerKey", `participant ${peer} advertised a key of small order`);
        }
        seeds.push([peer, veilKdf(sodium, secret, "secagg/pairwise-seed", sessionId, pairContext(id, peer))]);
        secret.fill(0);
      }
      const vector = maskedVectorBytes(sodium, session, id, s.input, s.selfMaskSeed, seeds);
      // What R3 and R4 need: the shares held, who sent, who was accused. Everything else goes.
      const next = { held, sent, accused };
      s.ownShares = null;
      s.held = null;
      this._wipeRound();
      this._s = next;
      this._state = "consistencyCheck";
      return this._message(2, concat(le32(complaints.length), ...complaints, vector));
    } finally {
      for (const [, seed] of seeds) seed.fill(0);
    }
  }

  /** R3: check the survivor and dropped lists against what this participant saw; sign their digest. */
  _consistency(body) {
    const session = this.session, n = session.clientCount, id = this.id, s = this._s;
    const reader = new ByteReader(body);
    const size = Math.ceil(n / 8);
    const readBitmap = (field) => {
      const bytes = reader.raw(size, field);
      if (n % 8 !== 0 && (bytes[bytes.length - 1] >> (n % 8)) !== 0) {
        throw new Abort("malformed", `malformed message: bitmap has bits set beyond participant ${n}`);
      }
      return bytes;
    };
    const survivors = readBitmap("survivors");
    const dropped = readBitmap("dropped");
    reader.finish("SurvivorList");
    const has = (bitmap, v) => v >= 1 && v <= n && (bitmap[(v - 1) >> 3] & (1 << ((v - 1) & 7))) !== 0;
    for (let v = 1; v <= n; v++) {
      if (has(survivors, v) && has(dropped, v)) throw new Abort("survivorListsOverlap", `participant ${v} is listed both as survivor and as dropped`);
    }
    if (!has(survivors, id)) throw new Abort("listedAsDropped", "the server lists this participant as dropped");
    let survivorCount = 0;
    for (let v = 1; v <= n; v++) if (has(survivors, v)) survivorCount += 1;
    if (survivorCount < session.threshold) throw new Abort("tooFewSurvivors", `${survivorCount} participants remain, ${session.threshold} needed`);
    let surviving = 1;
    for (const peer of session.neighbors(id)) {
      const sentShares = s.sent.has(peer), survived = has(survivors, peer), gone = has(dropped, peer);
      if (sentShares && !survived && !gone) {
        throw new Abort("inconsistentSurvivorLists", `the survivor lists are inconsistent: neighbour ${peer} sent shares but is in neither list`);
      }
      if (!sentShares && (survived || gone)) {
        throw new Abort("inconsistentSurvivorLists", `the survivor lists are inconsistent: neighbour ${peer} never sent shares but is listed`);
      }
      if (survived && s.accused.has(peer)) {
        throw new Abort("inconsistentSurvivorLists", `the survivor lists are inconsistent: neighbour ${peer}, whose shares did not open, is listed as a survivor`);
      }
      if (survived) surviving += 1;
    }
    this._requireNeighbourhood(surviving);
    const digest = this.sodium.hashSha256(concat(SURVIVORS_DOMAIN, session._id, survivors, dropped));
    this._s = { held: s.held, survivors, dropped, has, digest };
    this._state = "unmasking";
    return this._message(3, digest);
  }

  /** R4: require t matching consistency signatures, then reveal one share per owner held. */
  _unmask(body) {
    const sodium = this.sodium, session = this.session, id = this.id, s = this._s;
    const reader = new ByteReader(body);
    const count = reader.count("signatures", 68);
    const entries = [];
    for (let i = 0; i < count; i++) entries.push({ signer: reader.u32("signer"), signature: reader.raw(64, "signature") });
    reader.finish("SignaturesForward");
    const signers = new Set([id]);
    for (const entry of entries) {
      if (entry.signer === id || !session.isParticipant(entry.signer) || !s.has(s.survivors, entry.signer) || signers.has(entry.signer)) {
        throw new Abort("unexpectedPeer", `party ${entry.signer} is not an expected neighbour (or appears twice)`);
      }
      signers.add(entry.signer);
      const claimed = { sessionId: session._id, round: 3, sender: entry.signer, recipient: SERVER, body: s.digest, signature: entry.signature };
      if (!messageSignedBy(sodium, claimed, session.identity(entry.signer))) {
        throw new Abort("invalidSignature", `the signature of party ${entry.signer} does not verify`);
      }
    }
    if (signers.size < session.threshold) {
      throw new Abort("notEnoughConsistencySignatures", `${signers.size} matching consistency signatures, ${session.threshold} needed`);
    }
    const revealed = [];
    for (const owner of [...s.held.keys()].sort((a, b) => a - b)) {
      const shares = s.held.get(owner);
      if (s.has(s.survivors, owner)) {
        revealed.push(concat(le32(owner), Uint8Array.of(KIND_SELF_MASK_SEED), shares.seedShare, shares.seedEndorsement));
      } else if (s.has(s.dropped, owner)) {
        revealed.push(concat(le32(owner), Uint8Array.of(KIND_MASKING_KEY), shares.maskingShare, shares.maskingEndorsement));
      }
    }
    const message = this._message(4, concat(le32(revealed.length), ...revealed));
    for (const r of revealed) r.fill(0);
    this._wipe();
    this._state = "completed";
    return message;
  }

}
