// Test page for the browser participant's modules (python/tests/test_browser_participant.py):
// exposes them, with a loaded Sodium, as window.veilTest; the test drives them with
// execute_async. document.title: READY or ERROR: ….
import { loadSodium } from "../participant/sodium.js";
import * as x509 from "../participant/x509.js";
import * as roundplan from "../participant/roundplan.js";
import * as store from "../participant/identity-store.js";
import * as participant from "../participant/participant.js";

async function main() {
  const sodium = await loadSodium();
  let secagg = null;
  try {
    secagg = await import("../participant/secagg.js");
  } catch (error) {
    secagg = null;
  }
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const fromHex = (text) => Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
  window.veilTest = { sodium, x509, roundplan, store, participant, secagg, hex, fromHex };
  document.title = "READY";
}

main().catch((error) => { document.title = `ERROR: ${error && error.message}`; });
