// The browser participant's identity across page loads, in IndexedDB (scoped to this page's
// origin): {id, signingSeed, tlsPrivateKey, certificatePem, caPem}, and with it the log of the
// SecAgg sessions the identity took part in (sessionLog below).
//
// What protects what:
// - tlsPrivateKey is the non-extractable WebCrypto CryptoKey made by enrol.js; IndexedDB keeps it
//   by structured clone, so it stays non-extractable: no script, this origin's included, can
//   read its bytes (it can still *use* it to sign).
// - signingSeed (the 32-byte Ed25519 seed that signs every protocol message) is stored as plain
//   bytes. It is NECESSARILY READABLE BY EVERY SCRIPT OF THIS ORIGIN: WebCrypto cannot hold an
//   Ed25519 key that libsodium (the page's only Ed25519, Specs/browser.md §1) can use, so the
//   seed must come back into JavaScript memory to sign. Anything that runs script on this origin
//   (an XSS, a malicious extension with access to the page, a compromised same-origin page) can
//   read it and act as this participant. Serve the page from an origin of its own, with the CSP
//   of participate.html, and nothing else on it. Clearing the site's data deletes the identity.
// - The seed is never logged, put in an error message or in the DOM by this module.
//
// An ES module; imports nothing.

const DB_NAME = "veil-participant";
const DB_VERSION = 1;
const STORE = "identity";
const KEY = "current";

export class IdentityStoreError extends Error {
  constructor(message) {
    super(message);
    this.name = "IdentityStoreError";
  }
}

function open(indexedDB = globalThis.indexedDB) {
  if (!indexedDB) return Promise.reject(new IdentityStoreError("this browser has no IndexedDB"));
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new IdentityStoreError(`cannot open the identity store: ${request.error?.name ?? "unknown error"}`));
    request.onblocked = () => reject(new IdentityStoreError("the identity store is blocked by another tab"));
  });
}

function transact(mode, body) {
  return open().then((db) => new Promise((resolve, reject) => {
    let result;
    const tx = db.transaction(STORE, mode);
    const store = tx.objectStore(STORE);
    const request = body(store);
    request.onsuccess = () => { result = request.result; };
    tx.oncomplete = () => { db.close(); resolve(result); };
    const fail = () => {
      db.close();
      reject(new IdentityStoreError(`the identity store failed: ${tx.error?.name ?? request.error?.name ?? "aborted"}`));
    };
    tx.onerror = fail;
    tx.onabort = fail;
  }));
}

function validate(identity) {
  if (!identity || typeof identity !== "object") throw new IdentityStoreError("not an identity");
  const { id, signingSeed, tlsPrivateKey, certificatePem, caPem } = identity;
  if (typeof id !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new IdentityStoreError("the identity's id is not a Veil id");
  if (!(signingSeed instanceof Uint8Array) || signingSeed.length !== 32) {
    throw new IdentityStoreError("the identity's signing seed is not 32 bytes");
  }
  if (tlsPrivateKey !== undefined && tlsPrivateKey !== null && !(tlsPrivateKey instanceof CryptoKey)) {
    throw new IdentityStoreError("the identity's TLS key is not a CryptoKey");
  }
  if (typeof certificatePem !== "string" || typeof caPem !== "string") {
    throw new IdentityStoreError("the identity's certificates are not PEM text");
  }
}

function sameSeed(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * One readwrite transaction that reads the stored record and may replace it: `change(record)`
 * (the record or undefined) returns the record to put, or null to leave the store as it is, and
 * may throw to abort. Resolves to what `change` returned once the transaction has committed.
 */
function update(change) {
  return open().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    let result = null;
    let refusal = null;
    const get = store.get(KEY);
    get.onsuccess = () => {
      const record = get.result;
      try {
        result = change(record);
        if (result !== null) store.put(result, KEY); // cloned now, synchronously
      } catch (error) {
        refusal = error;
        tx.abort();
      } finally {
        if (record?.signingSeed instanceof Uint8Array) record.signingSeed.fill(0);
      }
    };
    tx.oncomplete = () => { db.close(); resolve(result); };
    const fail = () => {
      db.close();
      reject(refusal ?? new IdentityStoreError(`the identity store failed: ${tx.error?.name ?? get.error?.name ?? "aborted"}`));
    };
    tx.onerror = fail;
    tx.onabort = fail;
  }));
}

/**
 * Saves (replaces) the identity. The seed is copied into the store; the caller keeps its own copy.
 * The session log is kept when the same identity (id and seed) is saved again, and starts empty
 * for any other.
 */
export async function saveIdentity(identity) {
  validate(identity);
  const record = {
    version: 1,
    id: identity.id,
    signingSeed: Uint8Array.from(identity.signingSeed),
    tlsPrivateKey: identity.tlsPrivateKey ?? null,
    certificatePem: identity.certificatePem,
    caPem: identity.caPem,
    sessions: [],
    saved: Date.now(),
  };
  try {
    await update((old) => {
      if (old && old.id === record.id && sameSeed(old.signingSeed, record.signingSeed) && Array.isArray(old.sessions)) {
        record.sessions = old.sessions;
      }
      return record;
    });
  } finally {
    record.signingSeed.fill(0); // the structured clone in the store is the copy that stays
  }
}

/** The stored identity, or null when none is stored. A malformed record is refused. */
export async function loadIdentity() {
  const record = await transact("readonly", (store) => store.get(KEY));
  if (record === undefined || record === null) return null;
  if (record.version !== 1) throw new IdentityStoreError(`an identity record of unknown version ${record.version}`);
  const identity = {
    id: record.id,
    signingSeed: record.signingSeed,
    tlsPrivateKey: record.tlsPrivateKey ?? null,
    certificatePem: record.certificatePem,
    caPem: record.caPem,
  };
  validate(identity);
  return identity;
}

/** Deletes the stored identity (the seed and the key with it, and its session log). */
export async function deleteIdentity() {
  await transact("readwrite", (store) => store.delete(KEY));
}

// --- the sessions the identity took part in ------------------------------------------------------
// One set of R0 keys per SecAgg session (ParticipantSession.swift: a second R0 in the same session
// would let the server show different keys to different neighbours). The page makes a new
// BrowserParticipant for every connection and loses everything on a reload, so the set of session
// ids lives here, with the identity: the newest SESSION_LOG_LIMIT, the oldest dropped.

export const SESSION_LOG_LIMIT = 10000;
const SESSION_ID = /^[0-9a-f]{2,128}$/;

/**
 * Records that the stored identity `id` takes part in `session` (the session id, lower-case hex),
 * in one transaction: true when it was not recorded before (and now is, committed), false when
 * it was. Throws IdentityStoreError when it cannot be recorded (no identity, another identity
 * stored, the store failing): the caller must then not take part.
 */
export async function claimSession(id, session, limit = SESSION_LOG_LIMIT) {
  if (typeof session !== "string" || !SESSION_ID.test(session)) throw new IdentityStoreError("a session id is lower-case hex");
  if (!Number.isInteger(limit) || limit < 1) throw new IdentityStoreError("a session log holds at least one session");
  let first = false;
  await update((record) => {
    if (!record || record.version !== 1) throw new IdentityStoreError("no identity is stored to record the session with");
    if (record.id !== id) throw new IdentityStoreError(`the stored identity is ${record.id}, not ${id}`);
    const sessions = Array.isArray(record.sessions) ? record.sessions : [];
    if (sessions.includes(session)) return null;
    sessions.push(session);
    if (sessions.length > limit) sessions.splice(0, sessions.length - limit);
    record.sessions = sessions;
    first = true;
    return record;
  });
  return first;
}

/** The session log of the stored identity `id`, for BrowserParticipant's `sessionLog`: {claim(session)}. */
export function sessionLog(id, { limit = SESSION_LOG_LIMIT } = {}) {
  return Object.freeze({ claim: (session) => claimSession(id, session, limit) });
}
