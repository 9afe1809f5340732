// The browser participant's page (participate.html): enrol, pick a local CSV file, join the
// federation over a WebSocket (Specs/wire.md §3 as canonical proto3 JSON text frames) and show
// each round. The agent itself is ./participant.js (sans-IO); this file owns the DOM, the
// socket and the stored identity.
//
// Query parameters (all optional): coordinator (the WebSocket URL; default wss://HOST/participate/ws),
// coordinator_id (default "coordinator"), enrol (the CA's enrolment endpoint), id, token and
// autojoin=1 (automation: enrol with the token if no identity is stored, then join), csv_url (a
// same-origin CSV to use as the local data, for tests); adversary, min_cohort, min_contributors
// (this participant's own policy, Specs/wire.md §3.1; the defaults are join.json's); leave_after=N
// (test hook: after sending its N-th SecAgg message of round 1 the page closes its WebSocket, as
// closing the tab would, and sets the title LEFT).
//
// Test hooks: window.veilParticipant = {status, rounds, lastError, tally, welcome, finished} and
// document.title = ENROLLED | JOINED | ROUND n COMPLETED | FINISHED | LEFT | ERROR: … (and a few
// intermediate states). Secrets (the seed, the token) are never logged, shown or put in an error.

import { loadSodium } from "./sodium.js";
import { makeEnrolmentRequest, enrol } from "./enrol.js";
import { verifyCertificate, pemToDer } from "./x509.js";
import { loadIdentity, saveIdentity, deleteIdentity } from "./identity-store.js";
import { BrowserParticipant, DEFAULT_POLICY, ParticipantError } from "./participant.js";

const params = new URLSearchParams(location.search);
const defaultSocket = `${location.protocol === "http:" ? "ws:" : "wss:"}//${location.host}/participate/ws`;
const config = {
  coordinator: params.get("coordinator") || defaultSocket,
  coordinatorId: params.get("coordinator_id") || "coordinator",
  enrolEndpoint: params.get("enrol") || "",
  id: params.get("id") || "",
  autojoin: params.get("autojoin") === "1",
  csvUrl: params.get("csv_url") || "",
  // This participant's own policy (Specs/wire.md §3.1), as join.json's `policy`: checked in main().
  adversary: params.get("adversary"),
  minCohort: params.get("min_cohort"),
  minContributors: params.get("min_contributors"),
  // Test hook: after sending its N-th SecAgg message of round 1, close the socket (as closing the tab would).
  leaveAfter: params.get("leave_after"),
};
let policy = {}; // the keys of participant.js's DEFAULT_POLICY that the query sets
// The token is read once and removed from the address bar (and so from the history).
let pendingToken = params.get("token") || "";
if (params.has("token")) {
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
}

const $ = (id) => document.getElementById(id);

/**
 * Who this page's code is trusted by (Specs/wire.md §1.1): a page is code, and a page served by
 * the coordinator it connects to is code the coordinator chose.
 */
function trustNote() {
  let socketHost = "";
  try {
    socketHost = new URL(config.coordinator).host;
  } catch {
    return "The coordinator's address is not a URL.";
  }
  if (socketHost === location.host) {
    return `This page was served by the coordinator it connects to (${location.host}): its code is the ` +
      "coordinator's, so you trust the coordinator not to change it. Against a coordinator you do not " +
      "trust, open this page from another host and point it at the coordinator with ?coordinator=wss://….";
  }
  return `This page comes from ${location.host}, not from the coordinator (${socketHost}): the coordinator ` +
    "cannot change its code.";
}
const state = {
  status: "loading",
  rounds: [],
  lastError: null,
  tally: null,
  welcome: null,
  finished: null,
  identity: null, // {id, certificateDer, caDer, signingKey, notAfter}: never the seed
  dataset: null,
};
window.veilParticipant = state;

let sodium = null;
let secagg = null;
let leaveAfter = null;
let trainer = null;
let socket = null;
let agent = null;

// --- status and errors ------------------------------------------------------------------------

function setStatus(text, title = text) {
  state.status = text;
  $("status").textContent = text;
  document.title = title;
}

function showError(message) {
  state.lastError = message;
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  setStatus(`error: ${message}`, `ERROR: ${message}`.slice(0, 200));
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

/** An error's message for the page (the errors of these modules never carry a secret). */
function messageOf(error) {
  if (!error) return "unknown error";
  const status = typeof error.status === "number" && error.status > 0 ? ` (HTTP ${error.status})` : "";
  return `${error.message || error.name || String(error)}${status}`;
}

// --- identity ---------------------------------------------------------------------------------

async function adoptIdentity(stored) {
  const certificateDer = pemToDer(stored.certificatePem);
  const caDer = pemToDer(stored.caPem);
  const checked = await verifyCertificate(certificateDer, caDer, "participant");
  const keys = sodium.signSeedKeypair(stored.signingSeed);
  keys.secretKey.fill(0);
  if (!equal(keys.publicKey, checked.signingKey)) {
    throw new Error("the stored certificate does not certify this browser's signing key");
  }
  if (checked.id !== stored.id) throw new Error(`the stored certificate is for ${checked.id}, not ${stored.id}`);
  state.identity = { id: checked.id, certificateDer, caDer, signingKey: checked.signingKey, notAfter: checked.notAfter };
  return stored.signingSeed;
}

let signingSeed = null; // kept in memory only while the page is open

function showIdentity() {
  const id = state.identity;
  $("identity-summary").textContent = id
    ? `Enrolled as ${id.id}; certificate valid until ${id.notAfter.toISOString().slice(0, 10)}.`
    : "No identity yet.";
  $("enrol-form").hidden = Boolean(id);
  $("forget-button").hidden = !id;
  updateJoinButton();
}

async function doEnrol(id, token, endpoint) {
  clearError();
  setStatus("enrolling", "ENROLLING");
  const made = await makeEnrolmentRequest(sodium, id);
  try {
    const answer = await enrol(endpoint, token, made.requestPem);
    const certificateDer = pemToDer(answer.certificatePem);
    const caDer = pemToDer(answer.caPem);
    const checked = await verifyCertificate(certificateDer, caDer, "participant");
    if (!equal(checked.signingKey, made.signingPublicKey)) {
      throw new Error("the enrolment endpoint returned a certificate whose signing key is not this browser's: refused");
    }
    if (checked.id !== id) throw new Error(`the enrolment endpoint returned a certificate for ${checked.id}, not ${id}: refused`);
    await saveIdentity({
      id, signingSeed: made.signingSeed, tlsPrivateKey: made.tlsKeyPair.privateKey,
      certificatePem: answer.certificatePem, caPem: answer.caPem,
    });
    signingSeed = Uint8Array.from(made.signingSeed);
    state.identity = { id, certificateDer, caDer, signingKey: checked.signingKey, notAfter: checked.notAfter };
  } finally {
    made.signingSeed.fill(0);
  }
  showIdentity();
  setStatus(`enrolled as ${id}`, "ENROLLED");
}

// --- data -------------------------------------------------------------------------------------

async function loadTrainer() {
  if (trainer) return trainer;
  try {
    trainer = await import("./trainer.js");
  } catch (error) {
    throw new Error(`the trainer (trainer.js) could not be loaded: ${messageOf(error)}`);
  }
  return trainer;
}

async function useCsv(text, name) {
  const t = await loadTrainer();
  if (typeof t.parseCsv !== "function") throw new Error("trainer.js has no parseCsv");
  const dataset = t.parseCsv(text);
  let classes = 0;
  for (const label of dataset.labels) classes = Math.max(classes, label + 1);
  state.dataset = dataset;
  $("data-summary").textContent = `${name}: ${dataset.count} rows, ${dataset.featureCount} features, ${classes} classes (labels 0…${classes - 1}). The file stays in this browser.`;
  updateJoinButton();
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`cannot read ${file.name}: ${reader.error?.name ?? "error"}`));
    reader.readAsText(file);
  });
}

async function fetchCsv(url) {
  const target = new URL(url, location.href);
  if (target.origin !== location.origin) throw new Error("csv_url must be on this page's origin");
  const response = await fetch(target, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`csv_url: HTTP ${response.status}`);
  await useCsv(await response.text(), target.pathname.split("/").pop() || "data.csv");
}

// --- taking part ------------------------------------------------------------------------------

function updateJoinButton() {
  $("join-button").disabled = !(state.identity && state.dataset) || socket !== null;
}

function roundTitle(record) {
  switch (record.state) {
    case "completed": return `ROUND ${record.round} COMPLETED`;
    case "declined": return `ROUND ${record.round} DECLINED`;
    default: return `ROUND ${record.round} ${record.state.toUpperCase()}`;
  }
}

function renderRounds() {
  const body = $("rounds").querySelector("tbody");
  body.replaceChildren();
  for (const r of state.rounds) {
    const row = document.createElement("tr");
    row.className = r.state.split(" ")[0];
    const privacy = r.centralDP
      ? "central DP: the coordinator adds the noise (this participant cannot verify it)"
      : r.state === "declined" ? "" : "no DP: the sum is released without noise";
    const reason = r.declineCode ? `${r.declineCode}: ${r.reason}` : (r.reason || r.abortReason || "");
    for (const text of [r.round, r.state, r.survivors ?? "", r.trainingSeconds.toFixed(3), r.cryptoSeconds.toFixed(3), privacy, reason]) {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      row.append(cell);
    }
    body.append(row);
  }
  const t = state.tally;
  if (t) {
    $("totals").textContent = `Rounds assigned ${t.assigned}, completed ${t.completed}, declined ${t.declined}; training ${t.trainingSeconds.toFixed(2)} s, cryptography ${t.cryptoSeconds.toFixed(2)} s.`;
    $("privacy").textContent = t.centralDP > 0
      ? `Privacy: ${t.centralDP} completed round(s) under central differential privacy — the coordinator adds the noise; this participant cannot verify it.`
      : "Privacy: no round under differential privacy so far.";
  }
}

function join() {
  clearError();
  if (!state.identity || !signingSeed) return showError("enrol first");
  if (!state.dataset) return showError("choose a CSV file first");
  let url;
  try {
    url = new URL(config.coordinator, location.href);
  } catch {
    return showError("the coordinator address is not a URL");
  }
  if (url.protocol !== "wss:" && !(url.protocol === "ws:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname))) {
    return showError("the coordinator must be reached over wss: (ws: only on loopback)");
  }
  agent = new BrowserParticipant({
    sodium, secagg, trainer,
    identity: { id: state.identity.id, signingSeed, certificateDer: state.identity.certificateDer, signingKey: state.identity.signingKey },
    caDer: state.identity.caDer, coordinatorId: config.coordinatorId, dataset: state.dataset, policy,
  });
  agent.addEventListener("round", (event) => {
    state.rounds = agent.rounds;
    state.tally = { ...agent.tally };
    renderRounds();
    setStatus(`round ${event.detail.round}: ${event.detail.state}`, roundTitle(event.detail));
  });
  agent.addEventListener("welcome", (event) => {
    state.welcome = event.detail;
    setStatus(`joined federation ${event.detail.federation} as ${event.detail.participantId}; next round ${event.detail.nextRound}`, "JOINED");
  });
  agent.addEventListener("failure", (event) => {
    const f = event.detail;
    state.lastError = `${f.code}: ${f.message}`;
    const box = $("error");
    box.textContent = `The coordinator says ${f.code}: ${f.message}`;
    box.hidden = false;
  });
  agent.addEventListener("finished", (event) => {
    state.finished = event.detail;
    setStatus(`finished after ${event.detail.rounds} rounds: ${event.detail.reason}`, "FINISHED");
  });

  setStatus("connecting", "CONNECTING");
  socket = new WebSocket(url.href);
  updateJoinButton();
  $("leave-button").hidden = false;
  let queue = Promise.resolve();
  let ended = false;
  let secaggSent = 0;
  const end = (message) => {
    if (ended) return;
    ended = true;
    if (message) showError(message);
    if (socket) socket.close();
    socket = null;
    $("leave-button").hidden = true;
    updateJoinButton();
  };
  socket.onopen = () => setStatus("connected: authenticating", "AUTHENTICATING");
  socket.onmessage = (event) => {
    // One message at a time, in order: training and cryptography are asynchronous.
    queue = queue.then(async () => {
      if (ended) return;
      if (typeof event.data !== "string") return end("the coordinator sent a binary frame; the protocol uses text frames");
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return end("the coordinator sent a frame that is not JSON");
      }
      try {
        const outgoing = await agent.onMessage(message);
        for (const m of outgoing) {
          socket?.send(JSON.stringify(m));
          if (leaveAfter !== null && m.secagg && String(m.secagg.round) === "1" && ++secaggSent >= leaveAfter) {
            // The test hook: leave mid-round as a closed tab would (no Decline, no goodbye).
            end(null);
            setStatus("left the federation (leave_after)", "LEFT");
            return;
          }
        }
        if (message.challenge) setStatus("authenticated: registering", "REGISTERING");
        if (agent.finished) end(null);
      } catch (error) {
        end(error instanceof ParticipantError ? error.message : `cannot handle the coordinator's message: ${messageOf(error)}`);
      }
    });
  };
  socket.onerror = () => { /* onclose follows with the code */ };
  socket.onclose = (event) => {
    queue = queue.then(() => {
      if (ended) return;
      if (agent.finished) return end(null);
      end(`the connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`);
    });
  };
}

// --- start --------------------------------------------------------------------------------------

/** adversary, min_cohort, min_contributors and leave_after from the query, refused by name when out of range. */
function checkPolicyParams() {
  const integer = (name, text, minimum) => {
    if (!/^[0-9]{1,9}$/.test(text)) throw new Error(`${name} must be a whole number, not "${text.slice(0, 20)}"`);
    const value = Number(text);
    if (value < minimum) throw new Error(`${name} must be at least ${minimum}`);
    return value;
  };
  if (config.adversary !== null) {
    if (!["malicious", "honest-but-curious"].includes(config.adversary)) {
      throw new Error(`adversary must be malicious or honest-but-curious, not "${config.adversary.slice(0, 40)}"`);
    }
    policy.adversary = config.adversary;
  }
  if (config.minCohort !== null) policy.minCohort = integer("min_cohort", config.minCohort, 2);
  if (config.minContributors !== null) policy.minContributors = integer("min_contributors", config.minContributors, 2);
  if (config.leaveAfter !== null) leaveAfter = integer("leave_after", config.leaveAfter, 1);
  // The secure-sum client's own checks (min_cohort ≥ 2, the release floor, the threat model), as join.json's are.
  const p = { ...DEFAULT_POLICY, ...policy };
  new secagg.SecAggPolicy({
    adversary: p.adversary, corruptFraction: p.corruptFraction, dropoutFraction: p.dropoutFraction,
    securityBits: p.securityBits, minCohort: p.minCohort, minContributors: p.minContributors,
  });
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function main() {
  $("coordinator-url").textContent = config.coordinator;
  $("coordinator-id").textContent = config.coordinatorId;
  $("trust-note").textContent = trustNote();
  $("enrol-id").value = config.id;
  $("enrol-endpoint").value = config.enrolEndpoint;
  sodium = await loadSodium();
  try {
    secagg = await import("./secagg.js");
  } catch (error) {
    showError(`the secure-sum client (secagg.js) could not be loaded: ${messageOf(error)}`);
    return;
  }
  try {
    checkPolicyParams();
  } catch (error) {
    showError(`the participant's policy is refused: ${messageOf(error)}`);
    return;
  }
  const stored = await loadIdentity().catch((error) => { showError(messageOf(error)); return null; });
  if (stored) {
    try {
      signingSeed = await adoptIdentity(stored);
      setStatus(`enrolled as ${state.identity.id}`, "ENROLLED");
    } catch (error) {
      showError(`the stored identity is not usable: ${messageOf(error)} (forget it and enrol again)`);
      $("forget-button").hidden = false;
    }
  } else {
    setStatus("not enrolled", "NOT ENROLLED");
  }
  showIdentity();

  $("enrol-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("enrol-token").value;
    $("enrol-token").value = ""; // the token is spent (or refused) either way; never kept
    doEnrol($("enrol-id").value.trim(), token, $("enrol-endpoint").value.trim())
      .catch((error) => showError(`enrolment failed: ${messageOf(error)}`));
  });
  $("forget-button").addEventListener("click", async () => {
    if (socket) return;
    await deleteIdentity();
    if (signingSeed) signingSeed.fill(0);
    signingSeed = null;
    state.identity = null;
    showIdentity();
    setStatus("not enrolled", "NOT ENROLLED");
  });
  $("csv-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      clearError();
      await useCsv(await readFile(file), file.name);
    } catch (error) {
      state.dataset = null;
      $("data-summary").textContent = "No data chosen.";
      showError(`the CSV file is refused: ${messageOf(error)}`);
    }
  });
  $("join-button").addEventListener("click", join);
  $("leave-button").addEventListener("click", () => { if (socket) socket.close(1000, "the participant left"); });

  // Automation (tests): enrol with the token, load the CSV, join.
  if (pendingToken && !state.identity) {
    const token = pendingToken;
    pendingToken = "";
    if (!config.id || !config.enrolEndpoint) return showError("token= needs id= and enrol=");
    try {
      await doEnrol(config.id, token, config.enrolEndpoint);
    } catch (error) {
      return showError(`enrolment failed: ${messageOf(error)}`);
    }
  }
  pendingToken = "";
  if (config.csvUrl) {
    try {
      await fetchCsv(config.csvUrl);
    } catch (error) {
      return showError(`the CSV file is refused: ${messageOf(error)}`);
    }
  }
  if (config.autojoin && state.identity && state.dataset) join();
}

main().catch((error) => showError(messageOf(error)));
