// The browser participant's page (participate.html): enrol, pick a local CSV file, join the
// federation over a WebSocket (Specs/wire.md §3 as canonical proto3 JSON text frames) and show
// each round. The agent itself is ./participant.js (sans-IO); this file owns the DOM, the
// socket and the stored identity.
//
// Query parameters (all optional): coordinator (the WebSocket URL; default wss://HOST/participate/ws),
// coordinator_id (default "coordinator"), enrol (the CA's enrolment endpoint), id, token and
// autojoin=1 (automation: enrol with the token if no identity is stored, then join), csv_url (a
// same-origin CSV to use as the local data, for tests); adversary, min_cohort, min_contributors
// (may only make "Your policy" stricter for this visit: a link asking for less is refused by
// name); leave_after=N (test hook: after sending its N-th SecAgg message of round 1 the page
// closes its WebSocket, as closing the tab would, and sets the title LEFT).
//
// "Your policy" (Specs/wire.md §3.1: adversary, minimum cohort, minimum contributors; the
// defaults are DEFAULT_POLICY, veil join's) is the user's own: set on the page and saved in this
// origin's localStorage only when the user presses Save. Whoever hands out the link (often the
// coordinator) cannot lower it.
//
// Test hooks: window.veilParticipant = {status, rounds, lastError, tally, welcome, finished, policy} and
// document.title = ENROLLED | JOINED | ROUND n COMPLETED | FINISHED | LEFT | ERROR: … (and a few
// intermediate states). Secrets (the seed, the token) are never logged, shown or put in an error.

import { loadSodium } from "./sodium.js";
import { makeEnrolmentRequest, enrol } from "./enrol.js";
import { verifyCertificate, pemToDer } from "./x509.js";
import { equalBytes } from "./veil-crypto.js";
import { loadIdentity, saveIdentity, deleteIdentity, sessionLog } from "./identity-store.js";
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
  // Stricter-only overrides of "Your policy" for this visit (Specs/wire.md §3.1): checked in main().
  adversary: params.get("adversary"),
  minCohort: params.get("min_cohort"),
  minContributors: params.get("min_contributors"),
  // Test hook: after sending its N-th SecAgg message of round 1, close the socket (as closing the tab would).
  leaveAfter: params.get("leave_after"),
};
let policy = {}; // the policy in force: "Your policy", made stricter by the link where it asks (effectivePolicy)
let policyRefused = false; // the link asks for less than "Your policy": no joining until the user says otherwise
const POLICY_STORAGE_KEY = "veil-participant-policy";
const ADVERSARY_STRENGTH = { "honest-but-curious": 0, malicious: 1 };
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
  policy: null, // {saved, link, effective}: "Your policy", what the link asks, what is in force
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
  if (!equalBytes(keys.publicKey, checked.signingKey)) {
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
    if (!equalBytes(checked.signingKey, made.signingPublicKey)) {
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
  $("join-button").disabled = !(state.identity && state.dataset) || socket !== null || policyRefused;
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
  if (policyRefused) return; // the refusal is on the page already
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
    sessionLog: sessionLog(state.identity.id), // the sessions taken part in, kept with the identity across connections and reloads
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

// --- the policy ---------------------------------------------------------------------------------

/** A whole number of at least `minimum`, from text, refused by name. */
function wholeNumber(name, text, minimum) {
  if (!/^[0-9]{1,9}$/.test(text)) throw new Error(`${name} must be a whole number, not "${String(text).slice(0, 20)}"`);
  const value = Number(text);
  if (value < minimum) throw new Error(`${name} must be at least ${minimum}`);
  return value;
}

function checkAdversary(name, value) {
  if (!(value in ADVERSARY_STRENGTH)) {
    throw new Error(`${name} must be malicious or honest-but-curious, not "${String(value).slice(0, 40)}"`);
  }
  return value;
}

/** The secure-sum client's own checks of a policy (min_cohort ≥ 2, the release floor, the threat model), as join.json's are. */
function checkWithSecAgg(p) {
  const full = { ...DEFAULT_POLICY, ...p };
  new secagg.SecAggPolicy({
    adversary: full.adversary, corruptFraction: full.corruptFraction, dropoutFraction: full.dropoutFraction,
    securityBits: full.securityBits, minCohort: full.minCohort, minContributors: full.minContributors,
  });
}

function defaultPolicy() {
  return { adversary: DEFAULT_POLICY.adversary, minCohort: DEFAULT_POLICY.minCohort, minContributors: DEFAULT_POLICY.minContributors };
}

/** "Your policy" as saved in this browser (DEFAULT_POLICY's when nothing is saved); a malformed record is refused. */
function loadSavedPolicy() {
  let text = null;
  try {
    text = globalThis.localStorage?.getItem(POLICY_STORAGE_KEY) ?? null;
  } catch (error) {
    throw new Error(`your saved policy cannot be read (${messageOf(error)})`);
  }
  if (text === null) return defaultPolicy();
  try {
    const record = JSON.parse(text);
    const saved = {
      adversary: checkAdversary("adversary", record.adversary),
      minCohort: wholeNumber("min_cohort", String(record.minCohort), 2),
      minContributors: wholeNumber("min_contributors", String(record.minContributors), 2),
    };
    checkWithSecAgg(saved);
    return saved;
  } catch (error) {
    throw new Error(`your saved policy is unreadable (${messageOf(error)}): set "Your policy" on this page again`);
  }
}

/** leave_after, and the policy keys the link sets (each checked, refused by name when malformed). */
function readLinkParams() {
  const link = {};
  if (config.adversary !== null) link.adversary = checkAdversary("adversary", config.adversary);
  if (config.minCohort !== null) link.minCohort = wholeNumber("min_cohort", config.minCohort, 2);
  if (config.minContributors !== null) link.minContributors = wholeNumber("min_contributors", config.minContributors, 2);
  if (config.leaveAfter !== null) leaveAfter = wholeNumber("leave_after", config.leaveAfter, 1);
  return link;
}

/**
 * "Your policy" made stricter where the link asks: malicious over honest-but-curious, larger
 * minimums. A link asking for less than "Your policy" is refused, naming the key.
 */
function effectivePolicy(saved, link) {
  const effective = { ...saved };
  const weaker = (key, asked, yours) => new Error(
    `the link asks for ${key}=${asked}, weaker than your policy's ${yours}: refused. ` +
    `A link may only make your policy stricter; if you mean it, change "Your policy" on this page.`);
  if (link.adversary !== undefined) {
    if (ADVERSARY_STRENGTH[link.adversary] < ADVERSARY_STRENGTH[saved.adversary]) throw weaker("adversary", link.adversary, saved.adversary);
    effective.adversary = link.adversary;
  }
  if (link.minCohort !== undefined) {
    if (link.minCohort < saved.minCohort) throw weaker("min_cohort", link.minCohort, saved.minCohort);
    effective.minCohort = link.minCohort;
  }
  if (link.minContributors !== undefined) {
    if (link.minContributors < saved.minContributors) throw weaker("min_contributors", link.minContributors, saved.minContributors);
    effective.minContributors = link.minContributors;
  }
  checkWithSecAgg(effective);
  return effective;
}

function describePolicy(p) {
  return `adversary ${p.adversary}, minimum cohort ${p.minCohort}, minimum contributors ${p.minContributors}`;
}

function fillPolicyForm(p) {
  $("policy-adversary").value = p.adversary;
  $("policy-min-cohort").value = String(p.minCohort);
  $("policy-min-contributors").value = String(p.minContributors);
}

/** Computes and shows the policy in force from "Your policy" and the link; refuses (and disables joining) when the link asks for less. */
function applyPolicy(saved, link) {
  state.policy = { saved: { ...saved }, link: { ...link }, effective: null };
  try {
    policy = effectivePolicy(saved, link);
  } catch (error) {
    policy = {};
    policyRefused = true;
    $("policy-effective").textContent = "none: the link's policy is refused (see above)";
    updateJoinButton();
    throw error;
  }
  policyRefused = false;
  state.policy.effective = { ...policy };
  const raised = Object.keys(link).map((k) => ({ adversary: "adversary", minCohort: "min_cohort", minContributors: "min_contributors" })[k]);
  $("policy-effective").textContent = describePolicy(policy) +
    (raised.length ? ` (your policy, made stricter by the link's ${raised.join(", ")} for this visit)` : " (your policy)");
  updateJoinButton();
}

/** The Save button: the form's values, checked, become "Your policy" in this browser. */
function savePolicyFromForm(link) {
  const saved = {
    adversary: checkAdversary("adversary", $("policy-adversary").value),
    minCohort: wholeNumber("minimum cohort", $("policy-min-cohort").value.trim(), 2),
    minContributors: wholeNumber("minimum contributors", $("policy-min-contributors").value.trim(), 2),
  };
  checkWithSecAgg(saved);
  globalThis.localStorage.setItem(POLICY_STORAGE_KEY, JSON.stringify(saved));
  $("policy-saved-note").textContent = `Saved in this browser: ${describePolicy(saved)}.` +
    (socket ? " It applies from the next time you join." : "");
  return saved;
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
  let link;
  let saved;
  try {
    link = readLinkParams();
    saved = loadSavedPolicy();
  } catch (error) {
    showError(`the participant's policy is refused: ${messageOf(error)}`);
    fillPolicyForm(defaultPolicy());
    policyRefused = true;
    $("policy-form").addEventListener("submit", (event) => {
      event.preventDefault();
      try { savePolicyFromForm({}); location.reload(); } catch (e) { showError(`your policy is refused: ${messageOf(e)}`); }
    });
    return;
  }
  fillPolicyForm(saved);
  $("policy-saved-note").textContent = globalThis.localStorage?.getItem(POLICY_STORAGE_KEY)
    ? "Saved in this browser." : "Nothing saved yet: the defaults (veil join's) apply.";
  $("policy-defaults").addEventListener("click", () => fillPolicyForm(defaultPolicy()));
  $("policy-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const wasRefused = policyRefused;
    try {
      saved = savePolicyFromForm(link);
    } catch (error) {
      showError(`your policy is refused: ${messageOf(error)}`);
      return;
    }
    if (wasRefused) {
      location.reload(); // start again with the policy the user chose (the link's is checked against it)
      return;
    }
    try {
      clearError();
      applyPolicy(saved, link);
    } catch (error) {
      showError(`the participant's policy is refused: ${messageOf(error)}`);
    }
  });
  try {
    applyPolicy(saved, link);
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
