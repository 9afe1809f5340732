// Test page for ./enrol.js (python/tests/test_browser_enrolment.py; Specs/browser.md section 2).
// Query parameters: id, role (default "participant"), tamper=binding, repeat=N (default 1).
// When done, document.title is "READY" or "ERROR: …" and window.veilEnrolment holds
//   { requestPem, requestBytes, signingPublicKeyHex, tlsKeyExtractable, tlsKeyUsages,
//     elapsedMs: [per request], sodiumLoadMs, calls: { generateKey, getRandomValues, signSeedKeypair } }
// or { error, calls }. The seed is never exposed: the page zeroes it once the request is made.

import { loadSodium } from "../participant/sodium.js";
import {
  makeEnrolmentRequest, validateId, validateRole, generateTlsKeyPair, generateSigningSeed, checkP256Spki,
  bindingMessage, certificationRequestInfo, signRequest, pem,
} from "../participant/enrol.js";

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };

/** Counts calls of the key-making APIs, so the test can see that an invalid id made nothing. */
function countCalls(sodium) {
  const calls = { generateKey: 0, getRandomValues: 0, signSeedKeypair: 0 };
  const subtle = crypto.subtle, generateKey = subtle.generateKey, getRandomValues = crypto.getRandomValues;
  subtle.generateKey = function (...args) { calls.generateKey++; return generateKey.apply(subtle, args); };
  crypto.getRandomValues = function (array) { calls.getRandomValues++; return getRandomValues.call(crypto, array); };
  const signSeedKeypair = sodium.signSeedKeypair.bind(sodium);
  sodium.signSeedKeypair = (seed) => { calls.signSeedKeypair++; return signSeedKeypair(seed); };
  return calls;
}

/** As makeEnrolmentRequest, but the binding is signed for `id + "x"`: a request the CA must refuse. */
async function tamperedRequest(sodium, id, role) {
  validateId(id);
  validateRole(role);
  const tlsKeyPair = await generateTlsKeyPair();
  const spki = checkP256Spki(new Uint8Array(await crypto.subtle.exportKey("spki", tlsKeyPair.publicKey)));
  const signingSeed = generateSigningSeed();
  const keys = sodium.signSeedKeypair(signingSeed);
  const binding = sodium.signDetached(bindingMessage(sodium, id + "x", role, spki), keys.secretKey);
  keys.secretKey.fill(0);
  const info = certificationRequestInfo({ id, role, spki, signingPublicKey: keys.publicKey, binding });
  const requestDer = await signRequest(info, tlsKeyPair.privateKey);
  return { requestPem: pem("CERTIFICATE REQUEST", requestDer), requestDer, tlsKeyPair, signingSeed, signingPublicKey: keys.publicKey };
}

async function main() {
  const params = new URLSearchParams(location.search);
  const id = params.get("id"); // null when absent: refused like any other invalid id
  const role = params.get("role") ?? "participant";
  const tamper = params.get("tamper");
  const repeat = Math.max(1, Math.min(100, Number(params.get("repeat") ?? "1") | 0));
  if (tamper !== null && tamper !== "binding") throw new Error(`unknown tamper=${tamper}`);

  const loadStarted = performance.now();
  const sodium = await loadSodium();
  const sodiumLoadMs = performance.now() - loadStarted;
  const calls = countCalls(sodium);
  window.veilEnrolment = { calls };

  const elapsedMs = [];
  let made = null;
  for (let i = 0; i < repeat; i++) {
    if (made) made.signingSeed.fill(0);
    const started = performance.now();
    made = tamper === "binding" ? await tamperedRequest(sodium, id, role) : await makeEnrolmentRequest(sodium, id, role);
    elapsedMs.push(performance.now() - started);
  }
  made.signingSeed.fill(0); // this page never uses the seed
  window.veilEnrolment = {
    id, role, tamper,
    requestPem: made.requestPem,
    requestBytes: made.requestDer.length,
    signingPublicKeyHex: toHex(made.signingPublicKey),
    tlsKeyExtractable: made.tlsKeyPair.privateKey.extractable,
    tlsKeyUsages: made.tlsKeyPair.privateKey.usages,
    tlsKeyAlgorithm: made.tlsKeyPair.privateKey.algorithm,
    seedZeroed: made.signingSeed.every((b) => b === 0),
    elapsedMs, sodiumLoadMs, calls,
  };
  log(made.requestPem);
  log(`${made.requestDer.length} bytes; ${elapsedMs.map((ms) => ms.toFixed(1)).join(", ")} ms`);
  document.title = "READY";
}

main().catch((error) => {
  const text = `${error?.name ?? "Error"}: ${error?.message ?? error}`;
  window.veilEnrolment = { ...(window.veilEnrolment ?? {}), error: text };
  log(text);
  document.title = `ERROR: ${text}`;
});
