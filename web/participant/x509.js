// A strict, minimal reader of the federation's X.509 certificates (Specs/wire.md §2), as
// `veil ca` issues them (Sources/VeilService/CA/FederationCA.swift), and the checks
// FederationIdentity(certificate:ca:now:) makes (Sources/VeilService/CA/FederationIdentity.swift):
// issued by the CA (issuer = the CA's subject, ECDSA P-256 with SHA-256 by the CA's key), valid
// at `now`, a subject common name that is a Veil id, Veil's role extension
// (1.3.6.1.4.1.32473.1.1, a DER UTF8String) equal to the role asked for, and its signing-key
// extension (1.3.6.1.4.1.32473.1.2, a DER OCTET STRING of 32 bytes). A certificate, the CA's
// included, with a critical extension this reader does not understand is refused (RFC 5280 §4.2).
//
// DER only (X.690): definite, minimal lengths; no trailing bytes anywhere; every structure is
// read field by field and anything unexpected is refused. WebCrypto verifies the signature
// (its only use here); nothing else is trusted from the certificate until it has verified.
// An ES module.

import { equalBytes } from "./veil-crypto.js";

/** Why a certificate is refused. `code` is one of the codes below (they mirror CredentialError). */
export class CertificateError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "CertificateError";
    this.code = code;
  }
}

export const CERTIFICATE_ERRORS = Object.freeze([
  "malformed", // not a DER certificate of the shape `veil ca` issues
  "notIssuedByFederation", // issuer, algorithm or signature not the CA's
  "expired", // not valid at `now`
  "invalidName", // no common name, or not 1–64 of a–z A–Z 0–9 . - _
  "missingExtension", // no (or a malformed) role or signing-key extension
  "wrongRole", // a role other than the one asked for
  "invalidCA", // the CA certificate itself cannot be read, or is not one this reader can honour
  "unhandledCriticalExtension", // a critical extension this reader does not understand (RFC 5280 §4.2)
]);

export const ROLES = Object.freeze(["coordinator", "participant", "key-holder"]);
export const OID_ROLE = "1.3.6.1.4.1.32473.1.1";
export const OID_SIGNING_KEY = "1.3.6.1.4.1.32473.1.2";
/**
 * The extensions this reader understands, by OID: a certificate (or the CA's) with any other
 * extension marked critical is refused (RFC 5280 §4.2: "A certificate-using system MUST reject
 * the certificate if it encounters a critical extension it does not recognize"). Those `veil ca`
 * writes: basic constraints, key usage, extended key usage and the subject alternative name
 * (which constrain the holder's TLS key, not its Veil identity, so they take nothing from it),
 * and Veil's role and signing key, which it acts on; the key identifiers are never critical.
 */
export const UNDERSTOOD_EXTENSIONS = Object.freeze(new Set([
  "2.5.29.19", // basic constraints
  "2.5.29.15", // key usage
  "2.5.29.37", // extended key usage
  "2.5.29.17", // subject alternative name
  "2.5.29.14", // subject key identifier
  "2.5.29.35", // authority key identifier
  "1.3.6.1.4.1.32473.1.1", // Veil's role
  "1.3.6.1.4.1.32473.1.2", // Veil's signing key
]));
const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_P256 = "1.2.840.10045.3.1.7";
const OID_COMMON_NAME = "2.5.4.3";
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

const TAG = Object.freeze({
  BOOLEAN: 0x01, INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06,
  UTF8String: 0x0c, PrintableString: 0x13, UTCTime: 0x17, GeneralizedTime: 0x18,
  SEQUENCE: 0x30, SET: 0x31, VERSION: 0xa0, ISSUER_UID: 0x81, SUBJECT_UID: 0x82, EXTENSIONS: 0xa3,
});

function malformed(what) {
  return new CertificateError("malformed", `the certificate is not well-formed DER: ${what}`);
}

// --- DER -------------------------------------------------------------------------------------

/** One TLV at `offset` of `bytes`: {tag, start (of the value), end, header (offset of the tag)}. */
function readTlv(bytes, offset, limit) {
  if (offset + 2 > limit) throw malformed("truncated header");
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw malformed("multi-byte tag");
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length === 0x80) throw malformed("indefinite length");
  if (length > 0x80) {
    const count = length & 0x7f;
    if (count > 4) throw malformed("length of more than 4 bytes");
    if (start + count > limit) throw malformed("truncated length");
    if (bytes[start] === 0) throw malformed("non-minimal length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
    if (length < 0x80) throw malformed("long form for a short length");
    start += count;
  }
  const end = start + length;
  if (end > limit) throw malformed("a length past the end");
  return { tag, start, end, header: offset };
}

/** A cursor over the children of a constructed value. */
class Reader {
  constructor(bytes, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.offset = start;
    this.end = end;
  }

  get done() { return this.offset === this.end; }

  peekTag() { return this.offset < this.end ? this.bytes[this.offset] : -1; }

  read(tag, what) {
    const tlv = readTlv(this.bytes, this.offset, this.end);
    if (tlv.tag !== tag) throw malformed(`${what}: tag 0x${tlv.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    this.offset = tlv.end;
    return tlv;
  }

  /** The children of a constructed TLV. */
  enter(tag, what) {
    const tlv = this.read(tag, what);
    return new Reader(this.bytes, tlv.start, tlv.end);
  }

  value(tlv) { return this.bytes.subarray(tlv.start, tlv.end); }

  raw(tlv) { return this.bytes.subarray(tlv.header, tlv.end); }

  finish(what) { if (!this.done) throw malformed(`trailing bytes in ${what}`); }
}

function decodeOid(value) {
  if (value.length === 0) throw malformed("an empty OBJECT IDENTIFIER");
  const arcs = [];
  let arc = 0;
  for (let i = 0; i < value.length; i++) {
    if (arc === 0 && value[i] === 0x80) throw malformed("a non-minimal OBJECT IDENTIFIER arc");
    arc = arc * 128 + (value[i] & 0x7f);
    if (arc > Number.MAX_SAFE_INTEGER / 256) throw malformed("an OBJECT IDENTIFIER arc too large");
    if ((value[i] & 0x80) === 0) {
      arcs.push(arc);
      arc = 0;
    } else if (i === value.length - 1) {
      throw malformed("a truncated OBJECT IDENTIFIER");
    }
  }
  const first = arcs[0] < 40 ? 0 : arcs[0] < 80 ? 1 : 2;
  return [first, arcs[0] - 40 * first, ...arcs.slice(1)].join(".");
}

function readOid(reader, what) {
  return decodeOid(reader.value(reader.read(TAG.OID, what)));
}

/** A DER INTEGER's content as minimal two's complement; returns the magnitude bytes of a positive one. */
function positiveInteger(value, what) {
  if (value.length === 0) throw malformed(`${what}: an empty INTEGER`);
  if (value.length > 1 && ((value[0] === 0 && value[1] < 0x80) || (value[0] === 0xff && value[1] >= 0x80))) {
    throw malformed(`${what}: a non-minimal INTEGER`);
  }
  if (value[0] & 0x80) throw malformed(`${what}: a negative INTEGER`);
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return value.subarray(i);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeText(tag, value, what) {
  try {
    if (tag === TAG.UTF8String) return utf8.decode(value);
    if (tag === TAG.PrintableString) {
      const text = String.fromCharCode(...value);
      if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw new Error("not printable");
      return text;
    }
  } catch {
    throw malformed(`${what}: an undecodable string`);
  }
  throw malformed(`${what}: not a UTF8String or PrintableString`);
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as milliseconds since 1970. */
function decodeTime(tlv, value, what) {
  const text = String.fromCharCode(...value);
  const m = tlv.tag === TAG.UTCTime
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw malformed(`${what}: not a DER time`);
  let year = Number(m[1]);
  if (tlv.tag === TAG.UTCTime) year += year < 50 ? 2000 : 1900; // RFC 5280 §4.1.2.5.1
  const [month, day, hour, minute, second] = m.slice(2).map(Number);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw malformed(`${what}: not a valid date`);
  }
  return ms;
}

function readTime(reader, what) {
  const tag = reader.peekTag();
  if (tag !== TAG.UTCTime && tag !== TAG.GeneralizedTime) throw malformed(`${what}: not a time`);
  const tlv = reader.read(tag, what);
  return decodeTime(tlv, reader.value(tlv), what);
}

// --- The certificate -----------------------------------------------------------------------------

/** The first common name of a Name (RDNSequence), or null. Every RDN must be well-formed. */
function commonName(nameReader) {
  let cn = null;
  while (!nameReader.done) {
    const set = nameReader.enter(TAG.SET, "a relative distinguished name");
    if (set.done) throw malformed("an empty relative distinguished name");
    while (!set.done) {
      const attribute = set.enter(TAG.SEQUENCE, "an attribute");
      const type = readOid(attribute, "an attribute type");
      const tag = attribute.peekTag();
      const tlv = readTlv(attribute.bytes, attribute.offset, attribute.end);
      attribute.offset = tlv.end;
      attribute.finish("an attribute");
      if (type === OID_COMMON_NAME && cn === null) cn = decodeText(tag, attribute.value(tlv), "the common name");
    }
  }
  return cn;
}

/** The P-256 SubjectPublicKeyInfo, whole, checked to be id-ecPublicKey on prime256v1 with an uncompressed point. */
function readP256Spki(reader) {
  const tlv = reader.read(TAG.SEQUENCE, "the subject public key info");
  const spki = new Reader(reader.bytes, tlv.start, tlv.end);
  const algorithm = spki.enter(TAG.SEQUENCE, "the key algorithm");
  const keyType = readOid(algorithm, "the key type");
  const curve = algorithm.done ? null : readOid(algorithm, "the curve");
  algorithm.finish("the key algorithm");
  const bits = spki.value(spki.read(TAG.BIT_STRING, "the public key"));
  spki.finish("the subject public key info");
  if (keyType !== OID_EC_PUBLIC_KEY || curve !== OID_P256 || bits.length !== 66 || bits[0] !== 0 || bits[1] !== 4) {
    return null;
  }
  return reader.raw(tlv);
}

/** The signature algorithm: ecdsa-with-SHA256 without parameters (RFC 5758), else null. */
function readSignatureAlgorithm(reader) {
  const algorithm = reader.enter(TAG.SEQUENCE, "the signature algorithm");
  const oid = readOid(algorithm, "the signature algorithm");
  const bare = algorithm.done;
  return oid === OID_ECDSA_SHA256 && bare ? oid : null;
}

/**
 * Parses a DER certificate into its parts. Throws CertificateError("malformed") unless it is one
 * X.509 v3 certificate, DER, with nothing after it.
 */
export function parseCertificate(der) {
  if (!(der instanceof Uint8Array)) throw malformed("not bytes");
  const top = new Reader(der);
  const certificateTlv = top.read(TAG.SEQUENCE, "the certificate");
  top.finish("the certificate");
  const certificate = new Reader(der, certificateTlv.start, certificateTlv.end);
  const tbsTlv = certificate.read(TAG.SEQUENCE, "the to-be-signed certificate");
  const outerAlgorithm = readSignatureAlgorithm(certificate);
  const signatureBits = certificate.value(certificate.read(TAG.BIT_STRING, "the signature"));
  certificate.finish("the certificate");

  const tbs = new Reader(der, tbsTlv.start, tbsTlv.end);
  const version = tbs.enter(TAG.VERSION, "the version");
  const versionValue = version.value(version.read(TAG.INTEGER, "the version"));
  version.finish("the version");
  if (versionValue.length !== 1 || versionValue[0] !== 2) throw malformed("not an X.509 v3 certificate");
  const serial = positiveInteger(tbs.value(tbs.read(TAG.INTEGER, "the serial number")), "the serial number");
  if (serial.length > 20) throw malformed("a serial number longer than 20 bytes");
  const innerAlgorithm = readSignatureAlgorithm(tbs);
  const issuerTlv = tbs.read(TAG.SEQUENCE, "the issuer");
  const issuer = tbs.raw(issuerTlv);
  const validity = tbs.enter(TAG.SEQUENCE, "the validity");
  const notBefore = readTime(validity, "notBefore");
  const notAfter = readTime(validity, "notAfter");
  validity.finish("the validity");
  const subjectTlv = tbs.read(TAG.SEQUENCE, "the subject");
  const subject = tbs.raw(subjectTlv);
  const subjectCommonName = commonName(new Reader(der, subjectTlv.start, subjectTlv.end));
  commonName(new Reader(der, issuerTlv.start, issuerTlv.end)); // the issuer must be a well-formed Name too
  const publicKey = readP256Spki(tbs);
  if (tbs.peekTag() === TAG.ISSUER_UID || tbs.peekTag() === TAG.SUBJECT_UID) throw malformed("unique identifiers");
  const extensions = new Map();
  if (!tbs.done) {
    const wrapper = tbs.enter(TAG.EXTENSIONS, "the extensions");
    const list = wrapper.enter(TAG.SEQUENCE, "the extensions");
    wrapper.finish("the extensions");
    if (list.done) throw malformed("an empty extension list");
    while (!list.done) {
      const extension = list.enter(TAG.SEQUENCE, "an extension");
      const oid = readOid(extension, "an extension's id");
      let critical = false;
      if (extension.peekTag() === TAG.BOOLEAN) {
        const value = extension.value(extension.read(TAG.BOOLEAN, "an extension's criticality"));
        // DER: TRUE is 0xff, and the DEFAULT FALSE is never written.
        if (value.length !== 1 || value[0] !== 0xff) throw malformed("an extension's criticality is not DER");
        critical = true;
      }
      const value = extension.value(extension.read(TAG.OCTET_STRING, "an extension's value"));
      extension.finish("an extension");
      if (extensions.has(oid)) throw malformed(`the extension ${oid} appears twice`);
      extensions.set(oid, { critical, value });
    }
  }
  tbs.finish("the to-be-signed certificate");

  return {
    tbs: der.subarray(tbsTlv.header, tbsTlv.end),
    signatureAlgorithmsMatch: outerAlgorithm !== null && innerAlgorithm !== null,
    signatureBits,
    issuer,
    subject,
    commonName: subjectCommonName,
    notBefore,
    notAfter,
    publicKey, // the SPKI DER, or null when not a P-256 key
    extensions,
  };
}

/**
 * ECDSA-Sig-Value (DER, inside the BIT STRING) → IEEE P1363 r ‖ s, 32 bytes each, or null when it
 * is not one (wrong shape, non-minimal or negative integers, or a value wider than 32 bytes).
 */
export function ecdsaDerToP1363(bitString) {
  try {
    if (bitString.length < 1 || bitString[0] !== 0) return null; // no unused bits
    const top = new Reader(bitString, 1, bitString.length);
    const sequence = top.enter(TAG.SEQUENCE, "the ECDSA signature");
    top.finish("the ECDSA signature");
    const out = new Uint8Array(64);
    for (const half of [0, 1]) {
      const magnitude = positiveInteger(sequence.value(sequence.read(TAG.INTEGER, "r or s")), "r or s");
      if (magnitude.length > 32) return null;
      out.set(magnitude, half * 32 + 32 - magnitude.length); // left-padded with zeros
    }
    sequence.finish("the ECDSA signature");
    return out;
  } catch (error) {
    if (error instanceof CertificateError) return null;
    throw error;
  }
}

/** The OIDs of the critical extensions of a parsed certificate that this reader does not understand. */
export function unhandledCriticalExtensions(parsed) {
  return [...parsed.extensions].filter(([oid, e]) => e.critical && !UNDERSTOOD_EXTENSIONS.has(oid)).map(([oid]) => oid);
}

/** The CA's certificate, parsed: its subject and P-256 public key (a CryptoKey for verifying). */
async function readCA(caDer) {
  let ca;
  try {
    ca = parseCertificate(caDer);
  } catch (error) {
    throw new CertificateError("invalidCA", `the CA certificate cannot be read: ${error.message}`);
  }
  if (!ca.publicKey) throw new CertificateError("invalidCA", "the CA certificate's key is not a P-256 key");
  const unhandled = unhandledCriticalExtensions(ca);
  if (unhandled.length > 0) {
    throw new CertificateError("invalidCA", `the CA certificate has a critical extension this participant does not understand (${unhandled.join(", ")})`);
  }
  const key = await crypto.subtle.importKey("spki", ca.publicKey, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  return { subject: ca.subject, key };
}

const caCache = new WeakMap();

/**
 * Checks a holder's certificate as FederationIdentity(certificate:ca:now:) and requiring(role)
 * do. `now`: a Date or milliseconds since 1970 (default: the current time).
 * Returns {id, role, signingKey: Uint8Array(32), notBefore: Date, notAfter: Date}.
 * Throws CertificateError with a code of CERTIFICATE_ERRORS.
 */
export async function verifyCertificate(der, caDer, role, now = Date.now()) {
  if (!ROLES.includes(role)) throw new TypeError(`unknown role ${role}`);
  const when = now instanceof Date ? now.getTime() : Number(now);
  if (!Number.isFinite(when)) throw new TypeError("now must be a Date or a number of milliseconds");
  const c = parseCertificate(der);
  let ca = caCache.get(caDer);
  if (!ca) {
    ca = await readCA(caDer);
    caCache.set(caDer, ca);
  }
  const subject = c.commonName ?? "an unnamed subject";
  const signature = c.signatureAlgorithmsMatch ? ecdsaDerToP1363(c.signatureBits) : null;
  // Issued by the CA: its subject as the issuer, and its signature over the TBS bytes.
  const issued = signature !== null && equalBytes(c.issuer, ca.subject)
    && await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ca.key, signature, c.tbs);
  if (!issued) {
    throw new CertificateError("notIssuedByFederation", `the certificate of ${subject} was not issued by this federation's CA`);
  }
  const unhandled = unhandledCriticalExtensions(c);
  if (unhandled.length > 0) {
    throw new CertificateError("unhandledCriticalExtension",
      `the certificate of ${subject} has a critical extension this participant does not understand (${unhandled.join(", ")}): refused (RFC 5280 §4.2)`);
  }
  if (!(c.notBefore <= when && when <= c.notAfter)) {
    throw new CertificateError("expired", `the certificate of ${subject} is not valid now`);
  }
  if (c.commonName === null) throw new CertificateError("invalidName", "the certificate has no subject common name");
  if (!ID_PATTERN.test(c.commonName)) {
    throw new CertificateError("invalidName", "the certificate's common name is not a Veil id (1–64 of a–z A–Z 0–9 . - _)");
  }
  const roleValue = extensionContent(c.extensions.get(OID_ROLE), TAG.UTF8String);
  let certifiedRole = null;
  if (roleValue !== null) {
    try { certifiedRole = utf8.decode(roleValue); } catch { certifiedRole = null; }
  }
  if (certifiedRole === null || !ROLES.includes(certifiedRole)) {
    throw new CertificateError("missingExtension", "the certificate lacks Veil's role extension");
  }
  const key = extensionContent(c.extensions.get(OID_SIGNING_KEY), TAG.OCTET_STRING);
  if (key === null) throw new CertificateError("missingExtension", "the certificate lacks Veil's signing key extension");
  if (key.length !== 32) {
    throw new CertificateError("missingExtension", "the certificate lacks Veil's signing key (32 bytes) extension");
  }
  if (certifiedRole !== role) {
    throw new CertificateError("wrongRole", `a ${certifiedRole} certificate where a ${role} one is needed`);
  }
  return {
    id: c.commonName,
    role: certifiedRole,
    signingKey: Uint8Array.from(key),
    notBefore: new Date(c.notBefore),
    notAfter: new Date(c.notAfter),
  };
}

/** The content of an extension whose value is exactly one TLV with `tag`, or null. */
function extensionContent(extension, tag) {
  if (!extension) return null;
  try {
    const reader = new Reader(extension.value);
    const tlv = reader.read(tag, "an extension's value");
    reader.finish("an extension's value");
    return reader.value(tlv);
  } catch (error) {
    if (error instanceof CertificateError) return null;
    throw error;
  }
}

// --- PEM -------------------------------------------------------------------------------------

/** The DER of the one PEM block labelled `label` (default CERTIFICATE); throws CertificateError. */
export function pemToDer(text, label = "CERTIFICATE") {
  if (typeof text !== "string") throw malformed("PEM is not text");
  const re = new RegExp(`^\\s*-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+?)-----END ${label}-----\\s*$`);
  const m = re.exec(text);
  if (!m) throw malformed(`not one PEM ${label}`);
  try {
    const binary = atob(m[1].replace(/[\r\n]/g, ""));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    throw malformed("PEM whose base64 does not decode");
  }
}

/** DER → PEM (64-character lines, each ending in \n). */
export function derToPem(der, label = "CERTIFICATE") {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
