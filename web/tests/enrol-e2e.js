// End-to-end test page for ./enrol.js against the real enrolment endpoint (`veil ca enrol`):
// python/tests/test_enrolment_endpoint.py; Specs/browser.md section 2, Specs/wire.md §2.3.
// Query parameters: endpoint (https://HOST:PORT), token (from `veil ca token`), id.
// When done, document.title is "ENROLLED" or "ERROR: <status> <message>" (status 0 when no HTTP
// answer came or the failure was local), and window.veilEnrolment holds
//   { id, certificatePem, caPem, signingPublicKeyHex }   or   { id, status, error }.
// The Ed25519 seed is zeroed once the request is made (this page never signs with it), and the
// token is taken out of the address bar and never logged nor exposed.

import { loadSodium } from "../participant/sodium.js";
import { makeEnrolmentRequest, enrol } from "../participant/enrol.js";

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };

const params = new URLSearchParams(location.search);
const endpoint = params.get("endpoint");
const token = params.get("token");
const id = params.get("id");
// The token is a secret: off the visible address (and this history entry) at once.
if (params.has("token")) {
  params.delete("token");
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

async function main() {
  if (!endpoint) throw new Error("no endpoint parameter");
  if (!token) throw new Error("no token parameter");
  const sodium = await loadSodium();
  const made = await makeEnrolmentRequest(sodium, id);
  made.signingSeed.fill(0); // not needed here; a real participant would keep it
  const signingPublicKeyHex = toHex(made.signingPublicKey);
  log(`request for ${id} made; signing key ${signingPublicKeyHex}`);
  const { certificatePem, caPem } = await enrol(endpoint, token, made.requestPem);
  window.veilEnrolment = { id, certificatePem, caPem, signingPublicKeyHex };
  log(certificatePem);
  document.title = "ENROLLED";
}

main().catch((error) => {
  const status = typeof error?.status === "number" ? error.status : 0;
  const message = error?.serverError ?? `${error?.name ?? "Error"}: ${error?.message ?? error}`;
  window.veilEnrolment = { id, status, error: message };
  log(`${status} ${message}`);
  document.title = `ERROR: ${status} ${message}`;
});
