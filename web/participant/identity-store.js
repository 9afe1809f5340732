// The browser participant's identity across page loads, in IndexedDB (scoped to this page's
// origin): {id, signingSeed, tlsPrivateKey, certificatePem, caPem}.
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

/** Saves (replaces) the identity. The seed is copied into the store; the caller keeps its own copy. */
export async function saveIdentity(identity) {
  validate(identity);
  const record = {
    version: 1,
    id: identity.id,
    signingSeed: Uint8Array.from(identity.signingSeed),
    tlsPrivateKey: identity.tlsPrivateKey ?? null,
    certificatePem: identity.certificatePem,
    caPem: identity.caPem,
    saved: Date.now(),
  };
  try {
    await transact("readwrite", (store) => store.put(record, KEY));
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

/** Deletes the stored identity (the seed and the key with it). */
export async function deleteIdentity() {
  await transact("readwrite", (store) => store.delete(KEY));
}
