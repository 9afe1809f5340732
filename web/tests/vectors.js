// Runs the project's vector files (Vectors/, Specs/primitives.md section 11) against
// libsodium.wasm (./sodium.js) and Veil's constructions in JavaScript (./veil-crypto.js).
//
// Query parameters: `root` — the URL of the Vectors/ folder (default: ../../Vectors/ from this
// page, i.e. the repository root served as the web root); `files` — a comma-separated subset
// of FILES. When done, document.title is "PASS n" (n cases run, all as the files say) or
// "FAIL …", and window.veilVectorResults holds
//   { files: { name: { algorithm, cases, passed, failed, skipped, failures: [...], acceptable: {accepted, refused} } },
//     random: { bytes, distinct, nonZero, randomGetCalls, randomGetBytes },
//     cases, passed, failed, skipped, error, elapsedMs, wasmSha256 }.

import { loadSodium, SodiumError, LIBSODIUM_WASM_SHA256 } from "../participant/sodium.js";
import {
  VeilError, veilKdf, hkdfSha256, ChaChaGenerator, maskExpansion, shamirSplit, shamirReconstruct, shamirDecode,
  FixedPointCodec, ristretto255Scalar, ristretto255Reduce, ristretto255Element, ristretto255PublicKey,
  ristretto255Agree, dleqProve, dleqVerify,
} from "../participant/veil-crypto.js";

/** Every file this page runs, with the algorithm it must name. */
export const FILES = {
  "x25519/rfc7748.json": "XDH",
  "x25519/x25519_test.json": "XDH",
  "ed25519/rfc8032.json": "EDDSA",
  "ed25519/ed25519_test.json": "EDDSA",
  "xchacha20poly1305/draft_irtf_cfrg_xchacha.json": "XCHACHA20-POLY1305",
  "sha256/sha256_fips180.json": "SHA-256",
  "kdf/hkdf_sha256_rfc5869.json": "HKDF-SHA-256",
  "kdf/veil_kdf.json": "VEIL-KDF",
  "drbg/veil_chacha20_generator.json": "VEIL-CHACHA20-DRBG",
  "mask/veil_mask_expansion.json": "VEIL-MASK-EXPANSION",
  "shamir/veil_shamir.json": "VEIL-SHAMIR",
  "codec/veil_fixed_point.json": "VEIL-FIXED-POINT",
  "ristretto255/veil_ristretto255.json": "VEIL-RISTRETTO255",
};

/** A difference between a computed and a listed value: never agreement, not even for an invalid case. */
class Mismatch extends Error {}

function expectEqual(actual, expected, what) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Mismatch(`${what}: computed ${a.slice(0, 200)}, listed ${e.slice(0, 200)}`);
}

function hex(text) {
  if (typeof text !== "string" || text.length % 2 !== 0 || /[^0-9a-f]/.test(text)) throw new Error(`not lower-case hex: ${text}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  return out;
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Turns libsodium's refusal of one operation into the specification's error code. */
function refusedAs(code, body) {
  try {
    return body();
  } catch (error) {
    if (error instanceof SodiumError && error.code === -1) throw new VeilError(code, error.message);
    throw error;
  }
}

// --- the checks, one per algorithm: return = success, VeilError = refusal, anything else = failure --

const CHECKS = {
  "XDH"(sodium, group, test) {
    expectEqual(group.curve, "curve25519", "curve");
    let k = hex(test.private), u = hex(test.public);
    for (let i = 0; i < (test.iterations ?? 1); i++) {
      const next = refusedAs("weakPublicKey", () => sodium.scalarmult(k, u));
      [k, u] = [next, k];
    }
    expectEqual(toHex(k), test.shared, "shared");
  },

  "EDDSA"(sodium, group, test) {
    const pk = hex(group.publicKey.pk), msg = hex(test.msg), sig = hex(test.sig);
    if (group.privateKey) {
      const { publicKey, secretKey } = sodium.signSeedKeypair(hex(group.privateKey.sk));
      expectEqual(toHex(publicKey), group.publicKey.pk, "derived public key");
      if (test.result === "valid") expectEqual(toHex(sodium.signDetached(msg, secretKey)), test.sig, "signature");
      secretKey.fill(0);
    }
    if (sig.length !== 64) throw new VeilError("invalidSignature", `a signature of ${sig.length} bytes`);
    refusedAs("invalidSignature", () => sodium.signVerifyDetached(sig, msg, pk));
  },

  "XCHACHA20-POLY1305"(sodium, group, test) {
    const key = hex(test.key), nonce = hex(test.iv), aad = hex(test.aad), msg = hex(test.msg);
    const sealed = hex(test.ct + test.tag);
    if (test.result === "valid") expectEqual(toHex(sodium.aeadEncrypt(msg, aad, nonce, key)), toHex(sealed), "ciphertext");
    const opened = refusedAs("authenticationFailure", () => sodium.aeadDecrypt(sealed, aad, nonce, key));
    expectEqual(toHex(opened), test.msg, "plaintext");
  },

  "SHA-256"(sodium, group, test) {
    expectEqual(toHex(sodium.hashSha256(hex(test.msg))), test.digest, "digest");
  },

  "HKDF-SHA-256"(sodium, group, test) {
    expectEqual(toHex(hkdfSha256(sodium, hex(test.ikm), hex(test.salt), hex(test.info), test.size)), test.okm, "okm");
  },

  "VEIL-KDF"(sodium, group, test) {
    const okm = veilKdf(sodium, hex(test.ikm), test.label, hex(test.salt), hex(test.context), test.size);
    expectEqual(toHex(okm), test.okm, "okm");
  },

  "VEIL-CHACHA20-DRBG"(sodium, group, test) {
    const generator = new ChaChaGenerator(sodium, hex(test.seed));
    expectEqual(test.outputs.map(() => generator.next().toString()), test.outputs, "outputs");
    generator.dispose();
  },

  "VEIL-MASK-EXPANSION"(sodium, group, test) {
    const mask = maskExpansion(sodium, hex(test.seed), hex(test.label), group.bits, test.count);
    expectEqual(mask.map(String), test.elements, "elements");
  },

  "VEIL-SHAMIR"(sodium, group, test) {
    const t = group.threshold, n = group.shareCount;
    const secret = hex(test.secret);
    if (test.operation === "split") {
      // As the reference checker does: a 32-byte seed, or (for refusals listed without one) the empty one.
      const seed = hex(test.generatorSeed ?? "");
      const generator = new ChaChaGenerator(sodium, seed);
      const shares = shamirSplit(secret, t, n, generator, test.indices ?? null);
      expectEqual(shares.map(toHex), test.shares, "shares");
      expectEqual(toHex(shamirReconstruct(shares.slice(-t), t, n)), test.secret, "reconstruction from the last t shares");
    } else if (test.operation === "decode") {
      const { secret: decoded, wrongIndices } = shamirDecode(test.shares.map(hex), t, n);
      expectEqual(toHex(decoded), test.secret, "secret");
      expectEqual(wrongIndices, test.wrongIndices ?? [], "wrongIndices");
    } else if (test.operation === "reconstruct") {
      expectEqual(toHex(shamirReconstruct(test.shares.map(hex), t, n)), test.secret, "secret");
    } else {
      throw new Error(`unknown operation ${test.operation}`);
    }
    secret.fill(0);
  },

  "VEIL-FIXED-POINT"(sodium, group, test) {
    const codec = new FixedPointCodec(group.clip, group.fractionalBits, group.bits, group.maxAddends);
    if (test.operation === "encode") {
      const generator = new ChaChaGenerator(sodium, hex(test.generatorSeed));
      expectEqual(codec.encode(test.values, generator).map(String), test.encoded, "encoded");
    } else if (test.operation === "decodeSum") {
      const modulus = 1n << BigInt(group.bits);
      const sum = test.addends[0].map((_, i) => test.addends.reduce((s, v) => s + BigInt(v[i]), 0n) % modulus);
      expectEqual(sum.map(String), test.sum, "sum");
      const decoded = sum.map((s) => codec.decode(s));
      decoded.forEach((value, i) => {
        // Equal as binary64 values (0 and −0 are the same real).
        if (!(value === test.decoded[i])) throw new Mismatch(`decoded[${i}]: computed ${value}, listed ${test.decoded[i]}`);
      });
    } else {
      throw new Error(`unknown operation ${test.operation}`);
    }
  },
};

CHECKS["VEIL-RISTRETTO255"] = (sodium, group, test) => {
  const ONE = new Uint8Array(32);
  ONE[0] = 1;
  switch (test.operation) {
    case "base":
      expectEqual(toHex(ristretto255PublicKey(sodium, ristretto255Scalar(hex(test.scalar)))), test.element, "element");
      break;
    case "decode": {
      // Accepted, and re-encoded (1·P, libsodium's RFC 9496 ENCODE) to the same bytes.
      const point = ristretto255Element(sodium, hex(test.element));
      expectEqual(toHex(sodium.scalarmultRistretto255(ONE, point)), test.element, "re-encoding");
      break;
    }
    case "reduce":
      expectEqual(toHex(ristretto255Reduce(sodium, hex(test.wide))), test.scalar, "scalar");
      break;
    case "agree": {
      const x = ristretto255Scalar(hex(test.scalar));
      expectEqual(toHex(ristretto255Agree(sodium, x, hex(test.point))), test.shared, "shared");
      break;
    }
    case "prove": {
      const x = ristretto255Scalar(hex(test.scalar)), y = hex(test.point), ctx = hex(test.context);
      const { shared, proof } = dleqProve(sodium, x, y, ctx);
      expectEqual(toHex(shared), test.shared, "shared");
      expectEqual(toHex(proof), test.proof, "proof");
      if (!dleqVerify(sodium, ristretto255PublicKey(sodium, x), y, shared, proof, ctx)) {
        throw new Mismatch("the proof it made does not verify");
      }
      break;
    }
    case "verify":
      if (!dleqVerify(sodium, hex(test.element), hex(test.point), hex(test.shared), hex(test.proof), hex(test.context))) {
        throw new VeilError("invalidProof", "the proof does not verify");
      }
      break;
    default:
      throw new Error(`unknown operation ${test.operation}`);
  }
};

/** Section 11's rules: null means the case came out as the file says, else what went wrong. */
function outcome(sodium, check, group, test, report) {
  try {
    check(sodium, group, test);
  } catch (error) {
    if (error instanceof VeilError) {
      if (test.result === "acceptable") report.acceptable.refused++;
      if (test.result === "valid") return `refused a valid case (${error.code}: ${error.message})`;
      if (test.result === "invalid" && test.error && test.error !== error.code) {
        return `refused with ${error.code}, expected ${test.error}`;
      }
      return null;
    }
    if (error instanceof Mismatch) return `differs: ${error.message}`;
    return `threw ${error && error.name}: ${error && error.message}`;
  }
  if (test.result === "acceptable") report.acceptable.accepted++;
  return test.result === "invalid" ? "accepted an invalid case" : null;
}

function runFile(sodium, name, data) {
  const report = {
    algorithm: data.algorithm, cases: 0, passed: 0, failed: 0, skipped: 0, failures: [],
    acceptable: { accepted: 0, refused: 0 }, // Wycheproof's "acceptable" cases, by what this implementation did
  };
  const fail = (message) => {
    report.failed++;
    report.failures.push(message);
  };
  if (data.algorithm !== FILES[name]) {
    fail(`algorithm ${data.algorithm}, expected ${FILES[name]}`);
    return report;
  }
  const check = CHECKS[data.algorithm];
  for (const group of data.testGroups) {
    for (const test of group.tests) {
      report.cases++;
      if (!["valid", "invalid", "acceptable"].includes(test.result)) {
        fail(`tcId ${test.tcId}: unknown result ${test.result}`);
        continue;
      }
      const problem = outcome(sodium, check, group, test, report);
      if (problem === null) report.passed++;
      else fail(`tcId ${test.tcId}: ${problem}`);
    }
  }
  if (report.cases !== data.numberOfTests || report.cases === 0) {
    fail(`numberOfTests ${data.numberOfTests} but ${report.cases} tests`);
  }
  return report;
}

async function main() {
  const started = performance.now();
  const params = new URLSearchParams(location.search);
  const root = new URL(params.get("root") ?? "../../Vectors/", location.href);
  const names = params.get("files") ? params.get("files").split(",") : Object.keys(FILES);
  const results = { files: {}, random: null, cases: 0, passed: 0, failed: 0, skipped: 0, error: null, elapsedMs: null, wasmSha256: LIBSODIUM_WASM_SHA256 };
  const log = document.getElementById("log");
  const say = (line) => {
    log.textContent += line + "\n";
  };
  try {
    const sodium = await loadSodium();
    say(`libsodium.wasm loaded, SHA-256 ${LIBSODIUM_WASM_SHA256}`);
    // Not a vector: randombytes_buf must reach crypto.getRandomValues through random_get.
    const a = sodium.randomBytes(70000), b = sodium.randomBytes(70000);
    results.random = {
      bytes: a.length, distinct: toHex(a) !== toHex(b), nonZero: a.some((v) => v !== 0),
      randomGetCalls: sodium.wasiStats.randomGetCalls, randomGetBytes: sodium.wasiStats.randomGetBytes,
    };
    if (!(results.random.distinct && results.random.nonZero && results.random.randomGetCalls > 0)) {
      throw new Error(`randombytes_buf does not draw from random_get: ${JSON.stringify(results.random)}`);
    }
    for (const name of names) {
      if (!(name in FILES)) throw new Error(`no such vector file in this page's list: ${name}`);
      const response = await fetch(new URL(name, root), { cache: "no-store" });
      if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
      const report = runFile(sodium, name, await response.json());
      results.files[name] = report;
      results.cases += report.cases;
      results.passed += report.passed;
      results.failed += report.failed;
      results.skipped += report.skipped;
      say(`${name}: ${report.cases} cases, ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`);
      for (const failure of report.failures) say(`  FAIL ${failure}`);
    }
  } catch (error) {
    results.error = `${error && error.name}: ${error && error.message}`;
    say(`ERROR ${results.error}`);
  }
  results.elapsedMs = performance.now() - started;
  window.veilVectorResults = results;
  const ok = results.error === null && results.failed === 0 && results.skipped === 0 && results.passed === results.cases;
  document.title = ok
    ? `PASS ${results.passed}`
    : `FAIL ${results.error ?? `${results.failed} failed, ${results.skipped} skipped of ${results.cases}`}`;
  say(`${document.title} (${results.elapsedMs.toFixed(0)} ms)`);
}

main();
