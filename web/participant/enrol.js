// Enrolment of a browser participant with the federation CA. Specs/browser.md, section 2, is
// normative for everything here; Specs/wire.md §2 and §2.1 define the request it must match.
//
//   import { loadSodium } from "./sodium.js";
//   import { makeEnrolmentRequest, enrol } from "./enrol.js";
//   const sodium = await loadSodium();
//   const { requestPem, tlsKeyPair, signingSeed } = await makeEnrolmentRequest(sodium, "alice");
//   const { certificatePem, caPem } = await enrol("https://ca.example", token, requestPem);
//
// A browser cannot present a CA-issued client certificate it did not make itself, so it makes
// its own keys and sends the CA the same PKCS #10 request `veil ca request` writes natively:
// subject CN = id, the P-256 TLS key (a non-extractable WebCrypto key, which signs the request),
// and an extension request carrying the role, the Ed25519 signing key and the signing-key
// binding. `veil ca sign` checks it unchanged.
//
// Nothing secret is logged. The Ed25519 seed is drawn with crypto.getRandomValues and returned
// to the caller, who owns that one buffer; every other copy made here (libsodium's 64-byte
// secret key, which begins with the seed) is overwritten with zeros once the binding is signed.

import { concat, le32 } from "./veil-crypto.js";

/** The id or role is not one a CA would certify; nothing was made. */
export class EnrolmentInputError extends Error {
  constructor(message) {
    super(message);
    this.name = "EnrolmentInputError";
  }
}

/** The request could not be built (an unexpected key encoding, a failed self-check). */
export class EnrolmentRequestError extends Error {
  constructor(message) {
    super(message);
    this.name = "EnrolmentRequestError";
  }
}

/**
 * The enrolment endpoint refused the request or could not be reached. `status` is the HTTP
 * status (0 when no answer came), `serverError` the server's JSON `error` text, if it sent one.
 */
export class EnrolmentError extends Error {
  constructor(status, serverError, message) {
    super(message ?? (serverError ? `HTTP ${status}: ${serverError}` : `HTTP ${status}`));
    this.name = "EnrolmentError";
    this.status = status;
    this.serverError = serverError ?? null;
  }
}

// --- Veil's constants (Specs/wire.md §2) ------------------------------------------------

/** The roles a browser may request: a coordinator is a server with host names, never a page. */
export const ROLES = Object.freeze(["participant", "key-holder"]);
export const OID_ROLE = "1.3.6.1.4.1.32473.1.1";
export const OID_SIGNING_KEY = "1.3.6.1.4.1.32473.1.2";
export const OID_SIGNING_KEY_BINDING = "1.3.6.1.4.1.32473.1.3";
export const BINDING_CONTEXT = "veil/v1/ca/signing-key-binding";

const OID_COMMON_NAME = "2.5.4.3";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"; // PKCS #9
const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** The DER SubjectPublicKeyInfo of every P-256 key, up to the 65-byte uncompressed point. */
const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
  0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
]);
const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 64; // 91

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Refuses anything but 1–64 of `a–z A–Z 0–9 . - _`, and `ca` (Specs/wire.md §2). */
export function validateId(id) {
  if (typeof id !== "string") throw new EnrolmentInputError("the id must be a string");
  if (!ID_PATTERN.test(id)) {
    throw new EnrolmentInputError(`invalid id ${JSON.stringify(id)}: 1–64 of a–z A–Z 0–9 . - _`);
  }
  if (id === "ca") throw new EnrolmentInputError('invalid id "ca": it names the CA itself');
  return id;
}

export function validateRole(role) {
  if (!ROLES.includes(role)) {
    throw new EnrolmentInputError(`invalid role ${JSON.stringify(role)}: one of ${ROLES.join(", ")}`);
  }
  return role;
}

// --- DER (X.690), the few types a certificate request needs ---------------------------------

/** The length octets: short form below 128, else 0x80 | n followed by n big-endian bytes. */
function derLength(length) {
  if (!Number.isSafeInteger(length) || length < 0) throw new EnrolmentRequestError(`bad DER length ${length}`);
  if (length < 0x80) return Uint8Array.of(length);
  const bytes = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Uint8Array.from([0x80 | bytes.length, ...bytes]);
}

/** One tag-length-value; `content` is the already-encoded contents. */
export function tlv(tag, ...content) {
  const body = concat(...content);
  return concat(Uint8Array.of(tag), derLength(body.length), body);
}

const TAG = Object.freeze({
  INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, OID: 0x06, UTF8_STRING: 0x0c,
  SEQUENCE: 0x30, SET: 0x31, CONTEXT_0: 0xa0,
});

const sequence = (...items) => tlv(TAG.SEQUENCE, ...items);
const set = (...items) => tlv(TAG.SET, ...items); // only ever one element here: no DER sorting needed
const octetString = (bytes) => tlv(TAG.OCTET_STRING, bytes);
const utf8String = (text) => tlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
const bitString = (bytes) => tlv(TAG.BIT_STRING, Uint8Array.of(0), bytes); // no unused bits

/** An OBJECT IDENTIFIER from its dotted form: 40·a + b, then base-128 arcs (high bit = more). */
export function oid(dotted) {
  const arcs = dotted.split(".").map((arc) => {
    if (!/^(0|[1-9][0-9]*)$/.test(arc)) throw new EnrolmentRequestError(`bad OID ${dotted}`);
    return BigInt(arc);
  });
  if (arcs.length < 2 || arcs[0] > 2n || (arcs[0] < 2n && arcs[1] > 39n)) throw new EnrolmentRequestError(`bad OID ${dotted}`);
  const out = [];
  for (const arc of [arcs[0] * 40n + arcs[1], ...arcs.slice(2)]) {
    const septets = [Number(arc & 0x7fn)];
    for (let n = arc >> 7n; n > 0n; n >>= 7n) septets.unshift(Number(n & 0x7fn) | 0x80);
    out.push(...septets);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

/** A non-negative INTEGER from big-endian magnitude bytes: minimal, with a 0x00 if the top bit is set. */
export function unsignedInteger(bytes) {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const magnitude = bytes.length === 0 ? Uint8Array.of(0) : bytes.subarray(start);
  return tlv(TAG.INTEGER, magnitude[0] & 0x80 ? concat(Uint8Array.of(0), magnitude) : magnitude);
}

/** WebCrypto's ECDSA signature (IEEE P1363: r ‖ s, 32 bytes each) as DER ECDSA-Sig-Value. */
export function ecdsaP1363ToDer(signature) {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new EnrolmentRequestError(`an ECDSA P-256 signature is 64 bytes (r ‖ s), not ${signature?.length}`);
  }
  return sequence(unsignedInteger(signature.subarray(0, 32)), unsignedInteger(signature.subarray(32)));
}

/** An Extension without the critical field (DER omits the default FALSE). */
function extension(dotted, valueDer) {
  return sequence(oid(dotted), octetString(valueDer));
}

// --- the request ---------------------------------------------------------------------------

/**
 * The bytes the Ed25519 key signs (Specs/wire.md §2.1):
 * "veil/v1/ca/signing-key-binding" ‖ 0x00 ‖ LE_4(|id|) ‖ id ‖ LE_4(|role|) ‖ role ‖ SHA-256(spki).
 * `spki` is the DER SubjectPublicKeyInfo of the TLS key; SHA-256 is libsodium's.
 */
export function bindingMessage(sodium, id, role, spki) {
  const encoder = new TextEncoder();
  const idBytes = encoder.encode(id), roleBytes = encoder.encode(role);
  return concat(
    encoder.encode(BINDING_CONTEXT), Uint8Array.of(0),
    le32(idBytes.length), idBytes,
    le32(roleBytes.length), roleBytes,
    sodium.hashSha256(spki));
}

/** Checks that WebCrypto's exported key is the 91-byte DER SPKI of a P-256 point, uncompressed. */
export function checkP256Spki(spki) {
  const ok = spki.length === P256_SPKI_LENGTH && P256_SPKI_PREFIX.every((b, i) => spki[i] === b);
  if (!ok) throw new EnrolmentRequestError("the exported TLS key is not an uncompressed P-256 SubjectPublicKeyInfo");
  return spki;
}

/**
 * The DER CertificationRequestInfo (RFC 2986), field for field as `veil ca request` writes it:
 * version 0, subject CN = id (UTF8String), the SPKI, and [0] attributes holding one
 * extensionRequest with the role, signing-key and binding extensions, in that order.
 */
export function certificationRequestInfo({ id, role, spki, signingPublicKey, binding }) {
  const subject = sequence(set(sequence(oid(OID_COMMON_NAME), utf8String(id))));
  const extensions = sequence(
    extension(OID_ROLE, utf8String(role)),
    extension(OID_SIGNING_KEY, octetString(signingPublicKey)),
    extension(OID_SIGNING_KEY_BINDING, octetString(binding)));
  const attributes = tlv(TAG.CONTEXT_0, sequence(oid(OID_EXTENSION_REQUEST), set(extensions)));
  return sequence(unsignedInteger(Uint8Array.of(0)), subject, spki, attributes);
}

/** The DER CertificationRequest: info, ecdsa-with-SHA256 (no parameters), BIT STRING of the DER signature. */
export function certificationRequest(info, derSignature) {
  return sequence(info, sequence(oid(OID_ECDSA_WITH_SHA256)), bitString(derSignature));
}

/** PEM with 64-character lines, as `veil ca request` writes it (ending in a newline). */
export function pem(label, der) {
  let binary = "";
  for (const byte of der) binary += String.fromCharCode(byte);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Signs `info` with the P-256 key (WebCrypto, ECDSA with SHA-256) and returns the DER request. */
export async function signRequest(info, privateKey) {
  const p1363 = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, info));
  return certificationRequest(info, ecdsaP1363ToDer(p1363));
}

/** A P-256 key pair for TLS: the private key non-extractable, usable only to sign. */
export async function generateTlsKeyPair() {
  return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
}

/** A 32-byte Ed25519 seed from crypto.getRandomValues. */
export function generateSigningSeed() {
  return crypto.getRandomValues(new Uint8Array(32));
}

/**
 * Makes the holder's keys and its certificate request.
 * Returns { requestPem, requestDer, tlsKeyPair, signingSeed, signingPublicKey }: the P-256 pair
 * as WebCrypto CryptoKeys (the private key non-extractable), the Ed25519 seed (the caller's to
 * keep, and to zero when done with it) and its public key.
 * @throws EnrolmentInputError before anything is made when the id or role is invalid.
 */
export async function makeEnrolmentRequest(sodium, id, role = "participant") {
  validateId(id);
  validateRole(role);
  const tlsKeyPair = await generateTlsKeyPair();
  const spki = checkP256Spki(new Uint8Array(await crypto.subtle.exportKey("spki", tlsKeyPair.publicKey)));
  const signingSeed = generateSigningSeed();
  let secretKey = null;
  try {
    const keys = sodium.signSeedKeypair(signingSeed);
    secretKey = keys.secretKey; // seed ‖ public key: a copy of the seed, zeroed below
    const message = bindingMessage(sodium, id, role, spki);
    const binding = sodium.signDetached(message, secretKey);
    sodium.signVerifyDetached(binding, message, keys.publicKey); // throws if it does not verify
    const info = certificationRequestInfo({ id, role, spki, signingPublicKey: keys.publicKey, binding });
    const requestDer = await signRequest(info, tlsKeyPair.privateKey);
    return {
      requestPem: pem("CERTIFICATE REQUEST", requestDer),
      requestDer,
      tlsKeyPair,
      signingSeed,
      signingPublicKey: keys.publicKey,
    };
  } catch (error) {
    signingSeed.fill(0); // nothing is returned: no copy of the seed survives
    throw error;
  } finally {
    if (secretKey) secretKey.fill(0);
  }
}

// --- the enrolment endpoint ----------------------------------------------------------------

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

function enrolUrl(endpoint) {
  let url;
  try {
    url = new URL(String(endpoint).replace(/\/+$/, "") + "/enrol");
  } catch {
    throw new EnrolmentError(0, null, `the enrolment endpoint ${JSON.stringify(String(endpoint))} is not a URL`);
  }
  // The token is a secret: it travels over TLS, except to this machine (local testing).
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.has(url.hostname))) {
    throw new EnrolmentError(0, null, `the enrolment endpoint must be https (or http on loopback), not ${url.origin}`);
  }
  return url;
}

const isCertificatePem = (text) =>
  typeof text === "string" && /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/.test(text);

/**
 * Sends the request and the one-time token to `endpoint + "/enrol"`; returns the certificate
 * and the CA's certificate, both PEM. A non-2xx answer throws an EnrolmentError with the status
 * and the server's JSON `error` text; so does a network failure (status 0) or a 2xx answer that
 * is not `{"certificate": PEM, "ca": PEM}`. The token is never logged nor put in an error.
 */
export async function enrol(endpoint, token, requestPem) {
  if (typeof token !== "string" || token.length === 0) throw new EnrolmentInputError("the enrolment token must be a non-empty string");
  if (typeof requestPem !== "string" || !requestPem.startsWith("-----BEGIN CERTIFICATE REQUEST-----")) {
    throw new EnrolmentInputError("the request must be a PEM CERTIFICATE REQUEST");
  }
  const url = enrolUrl(endpoint);
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, request: requestPem }),
      cache: "no-store",
      credentials: "omit",
      redirect: "error", // a redirect would resend the token somewhere else
    });
  } catch (error) {
    throw new EnrolmentError(0, null, `the enrolment endpoint ${url.origin} could not be reached: ${error?.message ?? error}`);
  }
  let body = null;
  const text = await response.text().catch(() => "");
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const serverError = body && typeof body.error === "string" ? body.error : null;
    throw new EnrolmentError(response.status, serverError,
      serverError ? undefined : `HTTP ${response.status} ${response.statusText}`.trim());
  }
  if (!body || !isCertificatePem(body.certificate) || !isCertificatePem(body.ca)) {
    throw new EnrolmentError(response.status, null, `HTTP ${response.status}, but the answer is not {"certificate": PEM, "ca": PEM}`);
  }
  return { certificatePem: body.certificate, caPem: body.ca };
}
