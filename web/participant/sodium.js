// libsodium 1.0.20 compiled to WebAssembly (Scripts/build-libsodium-wasm.sh), for the browser
// participant. Specs/browser.md, section 1, is normative for everything here.
//
//   import { loadSodium } from "./sodium.js";
//   const sodium = await loadSodium();            // fetches ./libsodium.wasm next to this file
//   const shared = sodium.scalarmult(secretKey, publicKey);
//
// The module's bytes are hashed with crypto.subtle.digest before they are compiled; anything
// but the pinned SHA-256 below is refused. Every libsodium return code is checked: a non-zero
// one throws a SodiumError naming the function. Inputs are copied into the module's memory and
// every region used is overwritten with zeros before it is freed, whatever it held.

/** SHA-256 of web/participant/libsodium.wasm (also in libsodium.wasm.sha256; the build's --check compares the three). */
export const LIBSODIUM_WASM_SHA256 = "bfa5b6d3b37c2e2d7814ec027e006d165ee1657627834bd1b5c49b0ad0bdb893";

// WASI errno values (wasi_snapshot_preview1).
const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_NOSYS = 52;
const ERRNO_SPIPE = 70;
const RANDOM_CHUNK = 65536; // crypto.getRandomValues fills at most 65,536 bytes per call

/** A libsodium function returned a non-zero code, or was given an input of the wrong length. */
export class SodiumError extends Error {
  constructor(fn, message, code) {
    super(`${fn}: ${message}`);
    this.name = "SodiumError";
    this.function = fn;
    this.code = code;
  }
}

/** The module failed its integrity check or could not be loaded; nothing was instantiated. */
export class SodiumLoadError extends Error {
  constructor(message) {
    super(message);
    this.name = "SodiumLoadError";
  }
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchOk(fetchFn, url, what) {
  const response = await fetchFn(url, { cache: "no-store" });
  if (!response.ok) throw new SodiumLoadError(`${what}: HTTP ${response.status} for ${url}`);
  return response;
}

/**
 * The WASI imports: random_get from crypto.getRandomValues, fd_write to the console, proc_exit
 * throws, fd_close/fd_seek/poll_oneoff and anything else answer an error code without effect.
 */
function wasiImports(getMemory, stats) {
  const bytes = () => new Uint8Array(getMemory().buffer);
  const view = () => new DataView(getMemory().buffer);
  const pending = { 1: "", 2: "" };
  const known = {
    random_get(ptr, len) {
      ptr >>>= 0;
      len >>>= 0;
      for (let offset = 0; offset < len; offset += RANDOM_CHUNK) {
        const n = Math.min(RANDOM_CHUNK, len - offset);
        crypto.getRandomValues(new Uint8Array(getMemory().buffer, ptr + offset, n));
      }
      stats.randomGetCalls++;
      stats.randomGetBytes += len;
      return ERRNO_SUCCESS;
    },
    fd_write(fd, iovs, iovsLen, nwrittenPtr) {
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      const dv = view();
      let written = 0;
      let text = "";
      for (let i = 0; i < iovsLen; i++) {
        const base = dv.getUint32(iovs + 8 * i, true);
        const len = dv.getUint32(iovs + 8 * i + 4, true);
        text += new TextDecoder().decode(bytes().subarray(base, base + len));
        written += len;
      }
      const lines = (pending[fd] + text).split("\n");
      pending[fd] = lines.pop();
      for (const line of lines) (fd === 1 ? console.log : console.error)(`libsodium: ${line}`);
      dv.setUint32(nwrittenPtr, written, true);
      return ERRNO_SUCCESS;
    },
    fd_close() {
      return ERRNO_SUCCESS;
    },
    fd_seek() {
      return ERRNO_SPIPE;
    },
    poll_oneoff() {
      return ERRNO_NOSYS;
    },
    proc_exit(code) {
      throw new Error(`libsodium called proc_exit(${code})`);
    },
  };
  // Imports this build does not use, should another build ask for them: ENOSYS, no effect.
  return new Proxy(known, {
    get(target, name) {
      if (name in target) return target[name];
      return () => ERRNO_NOSYS;
    },
  });
}

/**
 * Fetches, checks and instantiates libsodium.wasm, calls sodium_init, and returns the wrappers.
 * Options: wasmUrl, sha256Url (default: next to this module), expectedSha256 (default: the
 * pinned LIBSODIUM_WASM_SHA256), fetch.
 */
export async function loadSodium(options = {}) {
  const wasmUrl = options.wasmUrl ?? new URL("./libsodium.wasm", import.meta.url);
  const sha256Url = options.sha256Url ?? new URL("./libsodium.wasm.sha256", import.meta.url);
  const expected = (options.expectedSha256 ?? LIBSODIUM_WASM_SHA256).toLowerCase();
  const fetchFn = options.fetch ?? fetch;

  const [wasmResponse, hashResponse] = await Promise.all([
    fetchOk(fetchFn, wasmUrl, "libsodium.wasm"),
    fetchOk(fetchFn, sha256Url, "libsodium.wasm.sha256"),
  ]);
  const published = (await hashResponse.text()).trim().toLowerCase();
  if (published !== expected) {
    throw new SodiumLoadError(`libsodium.wasm.sha256 names ${published}, but sodium.js pins ${expected}: refusing to load`);
  }
  const wasm = new Uint8Array(await wasmResponse.arrayBuffer());
  const actual = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", wasm)));
  if (actual !== expected) {
    throw new SodiumLoadError(`libsodium.wasm has SHA-256 ${actual}, expected ${expected}: refusing to instantiate it`);
  }

  let memory = null;
  const stats = { randomGetCalls: 0, randomGetBytes: 0 };
  const { instance } = await WebAssembly.instantiate(wasm, {
    wasi_snapshot_preview1: wasiImports(() => memory, stats),
  });
  memory = instance.exports.memory;
  instance.exports._initialize();
  const sodium = new Sodium(instance.exports);
  sodium.wasiStats = stats; // how much entropy the module has drawn through random_get
  const init = instance.exports.sodium_init();
  if (init !== 0 && init !== 1) throw new SodiumError("sodium_init", `returned ${init}`, init);
  return sodium;
}

/** The wrappers: Uint8Array in, Uint8Array out; each call allocates, copies, zeroes and frees. */
export class Sodium {
  constructor(exports) {
    this.x = exports;
  }

  // --- memory ---------------------------------------------------------------------------

  _heap() {
    return new Uint8Array(this.x.memory.buffer);
  }

  /** Runs body(alloc) and afterwards zeroes and frees everything alloc handed out. */
  _with(fn, body) {
    const regions = [];
    const alloc = (size, content) => {
      const ptr = this.x.malloc(Math.max(size, 1));
      if (ptr === 0) throw new SodiumError(fn, `malloc(${size}) failed`, -1);
      regions.push([ptr, Math.max(size, 1)]);
      if (content) this._heap().set(content, ptr);
      return ptr;
    };
    try {
      return body(alloc);
    } finally {
      const heap = this._heap();
      for (const [ptr, size] of regions) {
        heap.fill(0, ptr, ptr + size);
        this.x.free(ptr);
      }
    }
  }

  _read(ptr, size) {
    return this._heap().slice(ptr, ptr + size);
  }

  _check(fn, code) {
    if (code !== 0) throw new SodiumError(fn, `returned ${code}`, code);
  }

  /** libsodium's void functions: the call must return nothing. */
  _void(fn, result) {
    if (result !== undefined) throw new SodiumError(fn, `returned ${result}, expected nothing`, -1);
  }

  _length(fn, what, bytes, size) {
    if (!(bytes instanceof Uint8Array)) throw new SodiumError(fn, `${what} must be a Uint8Array`, -1);
    if (size !== undefined && bytes.length !== size) {
      throw new SodiumError(fn, `${what} must be ${size} bytes, not ${bytes.length}`, -1);
    }
  }

  // --- randomness -----------------------------------------------------------------------

  randomBytes(n) {
    const fn = "randombytes_buf";
    return this._with(fn, (alloc) => {
      const p = alloc(n);
      this.x.randombytes_buf(p, n);
      return this._read(p, n);
    });
  }

  // --- X25519 ---------------------------------------------------------------------------

  scalarmult(secretKey, publicKey) {
    const fn = "crypto_scalarmult_curve25519";
    this._length(fn, "secret key", secretKey, 32);
    this._length(fn, "public key", publicKey, 32);
    return this._with(fn, (alloc) => {
      const q = alloc(32), n = alloc(32, secretKey), p = alloc(32, publicKey);
      this._check(fn, this.x.crypto_scalarmult_curve25519(q, n, p));
      return this._read(q, 32);
    });
  }

  scalarmultBase(secretKey) {
    const fn = "crypto_scalarmult_curve25519_base";
    this._length(fn, "secret key", secretKey, 32);
    return this._with(fn, (alloc) => {
      const q = alloc(32), n = alloc(32, secretKey);
      this._check(fn, this.x.crypto_scalarmult_curve25519_base(q, n));
      return this._read(q, 32);
    });
  }

  // --- Ed25519 --------------------------------------------------------------------------

  /** { publicKey (32 bytes), secretKey (64 bytes: seed ‖ public key) } from a 32-byte seed. */
  signSeedKeypair(seed) {
    const fn = "crypto_sign_ed25519_seed_keypair";
    this._length(fn, "seed", seed, 32);
    return this._with(fn, (alloc) => {
      const pk = alloc(32), sk = alloc(64), s = alloc(32, seed);
      this._check(fn, this.x.crypto_sign_ed25519_seed_keypair(pk, sk, s));
      return { publicKey: this._read(pk, 32), secretKey: this._read(sk, 64) };
    });
  }

  signDetached(message, secretKey) {
    const fn = "crypto_sign_ed25519_detached";
    this._length(fn, "message", message);
    this._length(fn, "secret key", secretKey, 64);
    return this._with(fn, (alloc) => {
      const sig = alloc(64), siglen = alloc(8), m = alloc(message.length, message), sk = alloc(64, secretKey);
      this._check(fn, this.x.crypto_sign_ed25519_detached(sig, siglen, m, BigInt(message.length), sk));
      return this._read(sig, 64);
    });
  }

  /** Returns true; a signature that does not verify throws a SodiumError (code -1). */
  signVerifyDetached(signature, message, publicKey) {
    const fn = "crypto_sign_ed25519_verify_detached";
    this._length(fn, "signature", signature, 64);
    this._length(fn, "message", message);
    this._length(fn, "public key", publicKey, 32);
    return this._with(fn, (alloc) => {
      const sig = alloc(64, signature), m = alloc(message.length, message), pk = alloc(32, publicKey);
      this._check(fn, this.x.crypto_sign_ed25519_verify_detached(sig, m, BigInt(message.length), pk));
      return true;
    });
  }

  signPkToCurve25519(edPublicKey) {
    const fn = "crypto_sign_ed25519_pk_to_curve25519";
    this._length(fn, "public key", edPublicKey, 32);
    return this._with(fn, (alloc) => {
      const out = alloc(32), pk = alloc(32, edPublicKey);
      this._check(fn, this.x.crypto_sign_ed25519_pk_to_curve25519(out, pk));
      return this._read(out, 32);
    });
  }

  signSkToCurve25519(edSecretKey) {
    const fn = "crypto_sign_ed25519_sk_to_curve25519";
    this._length(fn, "secret key", edSecretKey, 64);
    return this._with(fn, (alloc) => {
      const out = alloc(32), sk = alloc(64, edSecretKey);
      this._check(fn, this.x.crypto_sign_ed25519_sk_to_curve25519(out, sk));
      return this._read(out, 32);
    });
  }

  // --- XChaCha20-Poly1305 ---------------------------------------------------------------

  /** C ‖ T (|P| + 16 bytes). */
  aeadEncrypt(message, ad, nonce, key) {
    const fn = "crypto_aead_xchacha20poly1305_ietf_encrypt";
    this._length(fn, "message", message);
    this._length(fn, "associated data", ad);
    this._length(fn, "nonce", nonce, 24);
    this._length(fn, "key", key, 32);
    return this._with(fn, (alloc) => {
      const clen = message.length + 16;
      const c = alloc(clen), clenP = alloc(8), m = alloc(message.length, message), a = alloc(ad.length, ad);
      const npub = alloc(24, nonce), k = alloc(32, key);
      this._check(fn, this.x.crypto_aead_xchacha20poly1305_ietf_encrypt(
        c, clenP, m, BigInt(message.length), a, BigInt(ad.length), 0, npub, k));
      const written = new DataView(this.x.memory.buffer).getBigUint64(clenP, true);
      if (written !== BigInt(clen)) throw new SodiumError(fn, `wrote ${written} bytes, expected ${clen}`, -1);
      return this._read(c, clen);
    });
  }

  /** P; a ciphertext that does not authenticate throws a SodiumError (code -1). */
  aeadDecrypt(ciphertext, ad, nonce, key) {
    const fn = "crypto_aead_xchacha20poly1305_ietf_decrypt";
    this._length(fn, "ciphertext", ciphertext);
    this._length(fn, "associated data", ad);
    this._length(fn, "nonce", nonce, 24);
    this._length(fn, "key", key, 32);
    if (ciphertext.length < 16) throw new SodiumError(fn, "ciphertext shorter than the 16-byte tag", -1);
    return this._with(fn, (alloc) => {
      const mlen = ciphertext.length - 16;
      const m = alloc(mlen), mlenP = alloc(8), c = alloc(ciphertext.length, ciphertext), a = alloc(ad.length, ad);
      const npub = alloc(24, nonce), k = alloc(32, key);
      this._check(fn, this.x.crypto_aead_xchacha20poly1305_ietf_decrypt(
        m, mlenP, 0, c, BigInt(ciphertext.length), a, BigInt(ad.length), npub, k));
      const written = new DataView(this.x.memory.buffer).getBigUint64(mlenP, true);
      if (written !== BigInt(mlen)) throw new SodiumError(fn, `wrote ${written} bytes, expected ${mlen}`, -1);
      return this._read(m, mlen);
    });
  }

  // --- ChaCha20 (IETF) ------------------------------------------------------------------

  /** message XOR ChaCha20(key, nonce, initial block counter ic). */
  chacha20IetfXorIc(message, nonce, ic, key) {
    const fn = "crypto_stream_chacha20_ietf_xor_ic";
    this._length(fn, "message", message);
    this._length(fn, "nonce", nonce, 12);
    this._length(fn, "key", key, 32);
    if (!Number.isInteger(ic) || ic < 0 || ic > 0xffffffff) throw new SodiumError(fn, `block counter ${ic} out of range`, -1);
    if (message.length > (2 ** 32 - ic) * 64) throw new SodiumError(fn, "the 32-bit block counter would wrap", -1);
    return this._with(fn, (alloc) => {
      const c = alloc(message.length), m = alloc(message.length, message), n = alloc(12, nonce), k = alloc(32, key);
      this._check(fn, this.x.crypto_stream_chacha20_ietf_xor_ic(c, m, BigInt(message.length), n, ic | 0, k));
      return this._read(c, message.length);
    });
  }

  /** length bytes of the ChaCha20 keystream (the XOR of zeros). */
  chacha20IetfKeystream(length, nonce, ic, key) {
    return this.chacha20IetfXorIc(new Uint8Array(length), nonce, ic, key);
  }

  // --- SHA-256, SHA-512 and HMAC-SHA-256 ---------------------------------------------------------

  hashSha256(message) {
    const fn = "crypto_hash_sha256";
    this._length(fn, "message", message);
    return this._with(fn, (alloc) => {
      const out = alloc(32), m = alloc(message.length, message);
      this._check(fn, this.x.crypto_hash_sha256(out, m, BigInt(message.length)));
      return this._read(out, 32);
    });
  }

  hashSha512(message) {
    const fn = "crypto_hash_sha512";
    this._length(fn, "message", message);
    return this._with(fn, (alloc) => {
      const out = alloc(64), m = alloc(message.length, message);
      this._check(fn, this.x.crypto_hash_sha512(out, m, BigInt(message.length)));
      return this._read(out, 64);
    });
  }

  /** HMAC-SHA-256(key, parts[0] ‖ parts[1] ‖ …); any key length (init/update/final). */
  hmacSha256(key, ...parts) {
    const fn = "crypto_auth_hmacsha256";
    this._length(fn, "key", key);
    for (const part of parts) this._length(fn, "message part", part);
    return this._with(fn, (alloc) => {
      const stateBytes = this.x.crypto_auth_hmacsha256_statebytes() >>> 0;
      const state = alloc(stateBytes), k = alloc(key.length, key), out = alloc(32);
      this._check("crypto_auth_hmacsha256_init", this.x.crypto_auth_hmacsha256_init(state, k, key.length));
      for (const part of parts) {
        const p = alloc(part.length, part);
        this._check("crypto_auth_hmacsha256_update", this.x.crypto_auth_hmacsha256_update(state, p, BigInt(part.length)));
      }
      this._check("crypto_auth_hmacsha256_final", this.x.crypto_auth_hmacsha256_final(state, out));
      return this._read(out, 32);
    });
  }

  // --- ristretto255 (RFC 9496 §4; Specs/primitives.md section 12) ------------------------
  // libsodium's own semantics: is_valid_point accepts every canonical encoding, the identity
  // (32 zero bytes) included; the scalar multiplications refuse (-1) a point that does not
  // decode and a result that is the identity; scalars are 32 bytes LE (the top bit is ignored).

  /** true iff p is the canonical encoding of a ristretto255 element (the identity included). */
  ristretto255IsValidPoint(p) {
    const fn = "crypto_core_ristretto255_is_valid_point";
    this._length(fn, "point", p, 32);
    return this._with(fn, (alloc) => {
      const code = this.x.crypto_core_ristretto255_is_valid_point(alloc(32, p));
      if (code !== 0 && code !== 1) throw new SodiumError(fn, `returned ${code}`, code);
      return code === 1;
    });
  }

  /** p + q, encoded; a p or q that does not decode throws a SodiumError (code -1). */
  ristretto255Add(p, q) {
    const fn = "crypto_core_ristretto255_add";
    this._length(fn, "first point", p, 32);
    this._length(fn, "second point", q, 32);
    return this._with(fn, (alloc) => {
      const r = alloc(32), a = alloc(32, p), b = alloc(32, q);
      this._check(fn, this.x.crypto_core_ristretto255_add(r, a, b));
      return this._read(r, 32);
    });
  }

  /** LE(wide) mod ℓ as 32 bytes, for a 64-byte wide. */
  ristretto255ScalarReduce(wide) {
    const fn = "crypto_core_ristretto255_scalar_reduce";
    this._length(fn, "wide scalar", wide, 64);
    return this._with(fn, (alloc) => {
      const r = alloc(32), s = alloc(64, wide);
      this._void(fn, this.x.crypto_core_ristretto255_scalar_reduce(r, s));
      return this._read(r, 32);
    });
  }

  /** x·y mod ℓ. */
  ristretto255ScalarMul(x, y) {
    const fn = "crypto_core_ristretto255_scalar_mul";
    this._length(fn, "first scalar", x, 32);
    this._length(fn, "second scalar", y, 32);
    return this._with(fn, (alloc) => {
      const z = alloc(32), a = alloc(32, x), b = alloc(32, y);
      this._void(fn, this.x.crypto_core_ristretto255_scalar_mul(z, a, b));
      return this._read(z, 32);
    });
  }

  /** (x − y) mod ℓ. */
  ristretto255ScalarSub(x, y) {
    const fn = "crypto_core_ristretto255_scalar_sub";
    this._length(fn, "first scalar", x, 32);
    this._length(fn, "second scalar", y, 32);
    return this._with(fn, (alloc) => {
      const z = alloc(32), a = alloc(32, x), b = alloc(32, y);
      this._void(fn, this.x.crypto_core_ristretto255_scalar_sub(z, a, b));
      return this._read(z, 32);
    });
  }

  /** n·p, encoded; a p that does not decode, or an identity result, throws a SodiumError (code -1). */
  scalarmultRistretto255(scalar, point) {
    const fn = "crypto_scalarmult_ristretto255";
    this._length(fn, "scalar", scalar, 32);
    this._length(fn, "point", point, 32);
    return this._with(fn, (alloc) => {
      const q = alloc(32), n = alloc(32, scalar), p = alloc(32, point);
      this._check(fn, this.x.crypto_scalarmult_ristretto255(q, n, p));
      return this._read(q, 32);
    });
  }

  /** n·B, encoded; an identity result (n ≡ 0 mod ℓ) throws a SodiumError (code -1). */
  scalarmultRistretto255Base(scalar) {
    const fn = "crypto_scalarmult_ristretto255_base";
    this._length(fn, "scalar", scalar, 32);
    return this._with(fn, (alloc) => {
      const q = alloc(32), n = alloc(32, scalar);
      this._check(fn, this.x.crypto_scalarmult_ristretto255_base(q, n));
      return this._read(q, 32);
    });
  }
}
