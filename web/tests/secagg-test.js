// Replays Vectors/secagg/veil_secagg.json and checks Vectors/secagg/veil_secagg_parameters.json
// against ./secagg.js, in the browser (secagg-test.html) or in Node (runSecAggVectors).
//
// Transcript cases: every participant is rebuilt from the group's seed as Specs/secagg.md §9 says
// (identity, input, generator), runs as a SecAggClient, and is fed the coordinator's messages
// addressed to it, in transcript order (none once it is offline); every message it sends must
// equal, byte for byte, its next message in the transcript, it must send all of them, and it must
// complete exactly when the transcript holds its R4 message. Honest transcripts (no rogue) are
// also re-run end to end with a small honest coordinator (below): every message of the run, the
// coordinator's included, must equal the transcript's.
// Substitution cases (`party` a participant): the base run (clients + the honest coordinator,
// §9 interleaving) runs up to message `index`, whose place the deliveries take; the last one must
// be refused with `error`, or answered with exactly `complaints` (each undecryptable proof
// verifying). `party` 0 cases are the server's refusals, not a participant's: for them the base
// run must reach `index` with a message of the participant named `dropped` (counted as "server").
// Parameters: validate cases through validateParameters and SecAggPolicy, recommend cases through
// recommendParameters, and n_C through ThreatModel.corruptCount.
//
// Query parameters (page): `root` (the repository root, default ../../), `mutate=1` (flip one bit
// of one recorded coordinator message of the first transcript: the page must FAIL), `bench=1`
// (time one client's masking for d = 100,000, b = 32, n = 5, complete graph).

import { loadSodium } from "../participant/sodium.js";
import { concat, le32, veilKdf, ChaChaGenerator, dleqVerify } from "../participant/veil-crypto.js";
import {
  SecAggError, SecAggPolicy, SecAggSession, SecAggClient, ThreatModel, validateParameters, recommendParameters,
  encodeSignedMessage, decodeSignedMessage, maskInput, maskInputReference, maskedVectorBytes,
} from "../participant/secagg.js";

const ENCODER = new TextEncoder();

function hex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  return out;
}
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const u32 = (b, at) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
class Mismatch extends Error {}

// --- §9: a group's parties from its seed ------------------------------------------------------------

function buildGroup(sodium, group) {
  const seed = hex(group.seed);
  const derive = (what, i = 0) => veilKdf(sodium, seed, "secagg/simulation", new Uint8Array(0), concat(ENCODER.encode(what), le32(i)));
  const server = sodium.signSeedKeypair(derive("server identity"));
  const seeds = {}, keys = [];
  for (let i = 1; i <= group.clients; i++) {
    seeds[i] = derive("identity", i);
    keys.push(sodium.signSeedKeypair(seeds[i]).publicKey);
  }
  const session = SecAggSession.create(sodium, {
    clientCount: group.clients, threshold: group.threshold, neighborCount: group.neighbors, bits: group.bits,
    dimension: group.dim, adversary: group.adversary === "malicious" ? 1 : 0, corruptFraction: group.corruptFraction,
    dropoutFraction: group.dropoutFraction, securityBits: group.securityBits, serverKey: server.publicKey, clientKeys: keys,
    nonce: derive("nonce"), context: derive("context"),
  });
  const mask = (1n << BigInt(group.bits)) - 1n;
  const makeClient = (u) => {
    const g = new ChaChaGenerator(sodium, derive("input", u));
    const input = Array.from({ length: group.dim }, () => g.next() & mask);
    return new SecAggClient(sodium, session, u, seeds[u], input, new ChaChaGenerator(sodium, derive("generator", u)));
  };
  const drops = {};
  for (const d of group.drops || []) drops[d.participant] = d.round;
  return { session, server, makeClient, drops };
}

// --- a minimal honest coordinator (Specs/secagg.md §7, the paths an honest run takes) -----------------

class HonestCoordinator {
  constructor(sodium, session, serverSecretKey) {
    Object.assign(this, { sodium, session, sk: serverSecretKey });
    this.round = 0;
    this.waiting = new Set(Array.from({ length: session.clientCount }, (_, i) => i + 1));
    this.accepted = new Map();
    this.adverts = new Map();
    this.r1 = new Map();
    this.r3 = new Map();
    this.done = false;
    this.abort = null;
  }

  send(recipient, body) {
    return [recipient, encodeSignedMessage(this.sodium, this.sk, this.session.id, this.round, 0, recipient, body)];
  }

  receive(raw, sender) {
    if (this.done || !this.waiting.has(sender)) return [];
    const m = decodeSignedMessage(raw);
    if (m.sender !== sender || m.round !== this.round) throw new Error(`the honest coordinator got an unexpected message from ${sender}`);
    if (this.round === 0) this.adverts.set(sender, raw);
    if (this.round === 1) {
      const entries = new Map();
      const count = u32(m.body, 32);
      for (let j = 0; j < count; j++) {
        const e = m.body.subarray(36 + 358 * j, 36 + 358 * (j + 1));
        entries.set(u32(e, 0), e.subarray(4));
      }
      this.r1.set(sender, entries);
    }
    if (this.round === 3) this.r3.set(sender, m.signature);
    this.accepted.set(sender, m);
    this.waiting.delete(sender);
    return this.waiting.size === 0 ? this.closeRound() : [];
  }

  deadline() {
    if (this.done) return [];
    this.waiting.clear();
    return this.closeRound();
  }

  closeRound() {
    const s = this.session;
    const accepted = [...this.accepted.keys()].sort((a, b) => a - b);
    const set = new Set(accepted);
    this.accepted = new Map();
    if (accepted.length < s.threshold) {
      this.done = true;
      this.abort = "tooFewSurvivors";
      return [];
    }
    const out = [];
    if (this.round === 0) {
      this.u1 = set;
      this.round = 1;
      for (const u of accepted) {
        const ads = s.neighbors(u).filter((v) => set.has(v)).map((v) => this.adverts.get(v));
        out.push(this.send(u, concat(le32(ads.length), ...ads.flatMap((a) => [le32(a.length), a]))));
      }
    } else if (this.round === 1) {
      this.u2 = set;
      this.round = 2;
      for (const v of accepted) {
        const senders = s.neighbors(v).filter((u) => set.has(u));
        out.push(this.send(v, concat(le32(senders.length), ...senders.flatMap((u) => [le32(u), this.r1.get(u).get(v)]))));
      }
    } else if (this.round === 2) {
      this.round = 3;
      const size = Math.ceil(s.clientCount / 8);
      const lists = new Uint8Array(2 * size);
      for (const u of this.u2) {
        const at = set.has(u) ? 0 : size;
        lists[at + ((u - 1) >> 3)] |= 1 << ((u - 1) & 7);
      }
      for (const u of accepted) out.push(this.send(u, lists));
    } else if (this.round === 3) {
      this.round = 4;
      for (const u of accepted) {
        const others = accepted.filter((w) => w !== u).slice(0, s.threshold - 1);
        out.push(this.send(u, concat(le32(others.length), ...others.flatMap((w) => [le32(w), this.r3.get(w)]))));
      }
    } else {
      this.done = true; // finish: no message
      return [];
    }
    this.waiting = new Set(accepted);
    return out;
  }
}

/**
 * The §9 run of a group with the honest coordinator. `trap` = { index, deliveries }: the message
 * produced at `index` is replaced and the run stops there, returning what happened to it.
 */
function simulate(sodium, group, trap = null) {
  const { session, server, makeClient, drops } = buildGroup(sodium, group);
  const clients = {};
  const coordinator = new HonestCoordinator(sodium, session, server.secretKey);
  const messages = [];
  const queue = [];
  const offline = new Set();
  let trapped = null;
  const emit = (raw, sender, recipient) => {
    messages.push({ raw, sender, recipient });
    return messages.length - 1;
  };
  const deliver = (produced) => {
    for (const [recipient, raw] of produced) {
      const index = emit(raw, 0, recipient);
      const round = raw[33];
      if (trap && index === trap.index) {
        trapped = { party: recipient, client: clients[recipient], sender: 0 };
        return true;
      }
      if (offline.has(recipient) || drops[recipient] === round) {
        offline.add(recipient);
        continue;
      }
      const action = clients[recipient].handle(raw);
      if (action.send) queue.push([emit(action.send, recipient, 0), recipient]);
    }
    return false;
  };
  for (let u = 1; u <= group.clients; u++) {
    clients[u] = makeClient(u);
    const action = clients[u].start();
    if (drops[u] === 0) {
      offline.add(u);
      continue;
    }
    const index = emit(action.send, u, 0);
    if (trap && index === trap.index) return { messages, trapped: { party: 0, sender: u }, clients, session };
    queue.push([index, u]);
  }
  while (!coordinator.done) {
    while (queue.length && !coordinator.done) {
      const [index, sender] = queue.shift();
      if (deliver(coordinator.receive(messages[index].raw, sender))) return { messages, trapped, clients, session };
      if (trap && messages.length > trap.index && messages[trap.index].sender !== 0 && !trapped) {
        trapped = { party: 0, sender: messages[trap.index].sender };
        return { messages, trapped, clients, session };
      }
    }
    if (!coordinator.done && deliver(coordinator.deadline())) return { messages, trapped, clients, session };
  }
  return { messages, trapped, clients, session, abort: coordinator.abort };
}

// --- the cases -------------------------------------------------------------------------------------

function checkTranscript(sodium, group, test, mutate) {
  const { makeClient, drops } = buildGroup(sodium, group);
  const transcript = test.transcript.map((e) => ({ ...e, bytes: hex(e.message) }));
  if (mutate) {
    const target = transcript.find((e) => e.sender === 0);
    target.bytes[60] ^= 0x01; // one bit of the body of the first coordinator message
  }
  const outcomes = {};
  for (let u = 1; u <= group.clients; u++) {
    const client = makeClient(u);
    const expected = transcript.filter((e) => e.sender === u);
    let next = 0;
    const compare = (sent, what) => {
      if (next >= expected.length) throw new Mismatch(`participant ${u} sends a message after its last (${what})`);
      const e = expected[next++];
      if (toHex(sent) !== e.message) throw new Mismatch(`participant ${u}'s round-${e.round} message differs from the transcript's (${what})`);
    };
    const first = client.start();
    if (drops[u] !== 0) compare(first.send, "R0");
    let abort = null;
    for (const e of transcript) {
      if (e.sender !== 0 || e.recipient !== u) continue;
      if (drops[u] !== undefined && e.round >= drops[u]) break; // offline from that round on
      const action = client.handle(e.bytes);
      if (action.send) compare(action.send, `reply to round ${e.round}`);
      else if (action.aborted) abort = abort || `${action.aborted} in ${action.round}`;
    }
    if (next !== expected.length) {
      throw new Mismatch(`participant ${u} sent ${next} of its ${expected.length} messages${abort ? ` (aborted: ${abort})` : ""}`);
    }
    const finished = expected.some((e) => e.round === 4);
    if (client.completed !== finished) throw new Mismatch(`participant ${u}: completed ${client.completed}, the transcript ${finished}`);
    outcomes[u] = client.completed ? "completed" : abort ? `aborted ${abort}` : drops[u] !== undefined ? `offline in R${drops[u]}` : "stopped by the server";
  }
  let endToEnd = false;
  if (test.substitutedIndex === undefined && !mutate) {
    // No rogue: the whole run, the coordinator's messages included, must be the transcript's.
    const run = simulate(sodium, group);
    if (run.messages.length !== transcript.length) throw new Mismatch(`end to end: ${run.messages.length} messages, the transcript ${transcript.length}`);
    run.messages.forEach((m, i) => {
      if (toHex(m.raw) !== test.transcript[i].message) throw new Mismatch(`end to end: message ${i} (${m.sender} → ${m.recipient}) differs`);
    });
    // The honest coordinator sends what §7 sends but does not unmask (finish): aborts of the
    // reconstruction (cannotReconstruct, reconstructionMismatch) are the server's, after the last message.
    const finishing = test.abort === "cannotReconstruct" || test.abort === "reconstructionMismatch";
    if (!finishing && (run.abort || undefined) !== test.abort) throw new Mismatch(`end to end: abort ${run.abort}, the vector ${test.abort}`);
    endToEnd = true;
  }
  return { outcomes, endToEnd };
}

function parseComplaints(body) {
  const out = [];
  let at = 4;
  for (let i = 0; i < u32(body, 0); i++) {
    const accused = u32(body, at), kind = body[at + 4];
    at += 5;
    if (kind === 1) {
      out.push({ accused, kind: "undecryptable", shared: body.slice(at, at + 32), proof: body.slice(at + 32, at + 96) });
      at += 96;
    } else out.push({ accused, kind: "unsigned" });
  }
  return out;
}

function checkSubstitution(sodium, group, test) {
  const deliveries = test.deliveries.map(hex);
  const run = simulate(sodium, group, { index: test.index });
  if (!run.trapped) throw new Mismatch(`the base run never reaches message ${test.index}`);
  if (test.party === 0) {
    if (run.trapped.party !== 0 || run.trapped.sender !== test.dropped) {
      throw new Mismatch(`message ${test.index} of the base run is not participant ${test.dropped}'s`);
    }
    return { kind: "server" };
  }
  if (run.trapped.party !== test.party) throw new Mismatch(`message ${test.index} goes to ${run.trapped.party}, the case names ${test.party}`);
  const client = run.trapped.client;
  let action = null;
  deliveries.forEach((raw, i) => {
    if (i > 0 && !action.send) throw new Mismatch(`participant ${test.party} did not answer delivery ${i}: ${JSON.stringify(action)}`);
    action = client.handle(raw);
  });
  if (test.result === "invalid") {
    if (action.aborted !== test.error) throw new Mismatch(`participant ${test.party}: ${JSON.stringify(action.aborted || "answered")}, expected ${test.error}`);
    return { kind: "aborted", code: action.aborted };
  }
  if (!action.send) throw new Mismatch(`participant ${test.party} did not answer: ${JSON.stringify(action)}`);
  const m = decodeSignedMessage(action.send);
  if (m.round !== 2) throw new Mismatch(`the answer is a round-${m.round} message`);
  const complaints = parseComplaints(m.body);
  const got = complaints.map((c) => `${c.accused}:${c.kind}`);
  if (JSON.stringify(got) !== JSON.stringify(test.complaints || [])) throw new Mismatch(`complaints ${got}, expected ${test.complaints}`);
  // The complainer's and the accused's advertised keys, from the base run's R0 messages.
  const keyOf = (v) => decodeSignedMessage(run.messages.find((x) => x.sender === v && x.raw[33] === 0).raw).body.slice(0, 32);
  for (const c of complaints) {
    if (c.kind !== "undecryptable") continue;
    const ctx = concat(ENCODER.encode("veil/v1/secagg/complaint\0"), run.session.id, le32(test.party), le32(c.accused));
    if (!dleqVerify(sodium, keyOf(test.party), keyOf(c.accused), c.shared, c.proof, ctx)) throw new Mismatch(`the proof about ${c.accused} does not verify`);
  }
  return { kind: "complaints", complaints: got };
}

function checkParameters(group, test) {
  let model;
  const expectError = test.result === "invalid" ? test.error : null;
  const attempt = (body) => {
    try {
      return { value: body() };
    } catch (error) {
      if (error instanceof SecAggError) return { error: error.code, message: error.message };
      throw error;
    }
  };
  const made = attempt(() => new ThreatModel({
    adversary: group.adversary, corruptFraction: group.corruptFraction, dropoutFraction: group.dropoutFraction,
    securityBits: group.securityBits, population: group.population ?? null,
  }));
  if (made.error) {
    if (made.error !== expectError) throw new Mismatch(`threat model refused (${made.error}), expected ${expectError}`);
    return;
  }
  model = made.value;
  if (model.corruptCount(test.clients) !== test.corruptCount) throw new Mismatch(`n_C ${model.corruptCount(test.clients)}, expected ${test.corruptCount}`);
  if (test.kind === "recommend") {
    const r = attempt(() => recommendParameters(test.clients, model));
    if (expectError) {
      if (r.error !== expectError) throw new Mismatch(`recommend: ${r.error || JSON.stringify(r.value)}, expected ${expectError}`);
      return;
    }
    if (r.error || r.value.neighborCount !== test.neighbors || r.value.threshold !== test.threshold) {
      throw new Mismatch(`recommend: ${r.error || JSON.stringify(r.value)}, expected k = ${test.neighbors}, t = ${test.threshold}`);
    }
    return;
  }
  const v = attempt(() => validateParameters(test.clients, test.threshold, test.neighbors, model, test.dimension));
  if ((v.error || null) !== expectError) throw new Mismatch(`validate: ${v.error || "accepted"}, expected ${expectError || "valid"}`);
  if (v.error && !v.message.includes(" ")) throw new Mismatch("a refusal without a reason");
  // The same rules through a participant's policy (floors that do not bind).
  if (test.dimension === undefined && test.clients >= 2 && test.threshold >= 2) {
    const policy = new SecAggPolicy({
      adversary: group.adversary, corruptFraction: group.corruptFraction, dropoutFraction: group.dropoutFraction,
      securityBits: group.securityBits, population: group.population ?? null, minCohort: 2, minContributors: 2,
    });
    const p = attempt(() => policy.check(test.clients, test.threshold, test.neighbors));
    if ((p.error || null) !== expectError) throw new Mismatch(`policy: ${p.error || "accepted"}, expected ${expectError || "valid"}`);
  }
}

/** Extra policy checks (§2.2): the floors themselves. */
/**
 * The two-limb masking equals the BigInt masking of veil-crypto.js's maskExpansion for every kind
 * of width (under a byte, a byte, under and at one limb, over it, up to 64 bits), for both signs.
 */
function limbsAgree(sodium) {
  const checks = [];
  for (const bits of [1, 7, 8, 20, 31, 32, 33, 40, 48, 63, 64]) {
    const clients = 4, dimension = 257;
    const keys = Array.from({ length: clients }, () => sodium.signSeedKeypair(sodium.randomBytes(32)).publicKey);
    const session = SecAggSession.create(sodium, {
      clientCount: clients, threshold: 3, neighborCount: clients - 1, bits, dimension, adversary: 0,
      corruptFraction: 0.05, dropoutFraction: 0.25, securityBits: 40,
      serverKey: sodium.signSeedKeypair(sodium.randomBytes(32)).publicKey, clientKeys: keys,
      nonce: sodium.randomBytes(32), context: sodium.randomBytes(32),
    });
    const modulus = 1n << BigInt(bits);
    const input = Array.from({ length: dimension }, (_, i) =>
      i === 0 ? modulus - 1n : i === 1 ? 0n : BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n) % modulus);
    const selfSeed = sodium.randomBytes(32);
    // Participant 2: one neighbour below (subtracted), two above (added).
    const seeds = [[1, sodium.randomBytes(32)], [3, sodium.randomBytes(32)], [4, sodium.randomBytes(32)]];
    const fast = maskInput(sodium, session, 2, input, selfSeed, seeds);
    const slow = maskInputReference(sodium, session, 2, input, selfSeed, seeds);
    checks.push({ bits, ok: fast.length === slow.length && fast.every((v, i) => v === slow[i]) });
  }
  return checks;
}

function policyFloors() {
  const policy = new SecAggPolicy({ adversary: "malicious", corruptFraction: 0.05, dropoutFraction: 0.33, securityBits: 40, minCohort: 5, minContributors: 4 });
  const code = (n, t, k) => {
    try {
      policy.check(n, t, k);
      return "accepted";
    } catch (error) {
      return error.code;
    }
  };
  const cases = [
    [[4, 3, 3], "cohortTooSmall"], [[10, 3, 9], "releaseBelowFloor"], [[10, 5, 9], "thresholdTooLow"],
    [[10, 6, 9], "accepted"], [[10, 6, 8], "maliciousRequiresCompleteGraph"],
  ];
  return cases.map(([args, want]) => ({ args, want, got: code(...args) }));
}

/** Runs every case; returns the results object. */
export function runSecAggVectors(sodium, secagg, parameters, { mutate = false } = {}) {
  const started = performance.now();
  const results = {
    transcripts: { cases: 0, passed: 0, endToEnd: 0, failures: [] },
    substitutions: { cases: 0, passed: 0, participant: 0, server: 0, failures: [] },
    parameters: { cases: 0, passed: 0, failures: [] },
    policyFloors: [], outcomes: {}, cases: 0, passed: 0, failed: 0, error: null,
  };
  let mutated = false;
  for (const group of secagg.testGroups) {
    for (const test of group.tests) {
      const bucket = test.kind === "transcript" ? results.transcripts : results.substitutions;
      bucket.cases++;
      try {
        if (test.kind === "transcript") {
          const doMutate = mutate && !mutated;
          mutated = mutated || doMutate;
          const r = checkTranscript(sodium, group, test, doMutate);
          results.outcomes[test.tcId] = r.outcomes;
          if (r.endToEnd) bucket.endToEnd++;
        } else {
          const r = checkSubstitution(sodium, group, test);
          bucket[r.kind === "server" ? "server" : "participant"]++;
        }
        bucket.passed++;
      } catch (error) {
        bucket.failures.push(`tcId ${test.tcId}: ${error instanceof Mismatch ? "" : (error && error.name) + ": "}${error && error.message}`);
      }
    }
  }
  for (const group of parameters.testGroups) {
    for (const test of group.tests) {
      results.parameters.cases++;
      try {
        checkParameters(group, test);
        results.parameters.passed++;
      } catch (error) {
        results.parameters.failures.push(`tcId ${test.tcId}: ${error && error.message}`);
      }
    }
  }
  results.policyFloors = policyFloors();
  results.limbs = limbsAgree(sodium);
  const floorsOk = results.policyFloors.every((c) => c.want === c.got) && results.limbs.every((c) => c.ok);
  for (const b of [results.transcripts, results.substitutions, results.parameters]) {
    results.cases += b.cases;
    results.passed += b.passed;
  }
  results.failed = results.cases - results.passed + (floorsOk ? 0 : 1);
  results.elapsedMs = performance.now() - started;
  return results;
}

/**
 * One client's masking for d = 100,000, b = 32, n = 5 on the complete graph, as R2 does it — the
 * input folded with the self mask and four pairwise masks, encoded to bytes — in milliseconds
 * (the X25519 agreements and seed derivations, four of each, are left out: microseconds).
 */
export function benchMasking(sodium, { dimension = 100000, bits = 32, clients = 5, repeats = 3 } = {}) {
  const keys = Array.from({ length: clients }, () => sodium.signSeedKeypair(sodium.randomBytes(32)).publicKey);
  const session = SecAggSession.create(sodium, {
    clientCount: clients, threshold: 3, neighborCount: clients - 1, bits, dimension, adversary: 0, corruptFraction: 0.05,
    dropoutFraction: 0.33, securityBits: 40, serverKey: sodium.signSeedKeypair(sodium.randomBytes(32)).publicKey,
    clientKeys: keys, nonce: sodium.randomBytes(32), context: sodium.randomBytes(32),
  });
  const mask = (1n << BigInt(bits)) - 1n;
  const input = Array.from({ length: dimension }, (_, i) => BigInt(i * 2654435761) & mask);
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const selfSeed = sodium.randomBytes(32);
    const seeds = Array.from({ length: clients - 1 }, (_, i) => [i + 2, sodium.randomBytes(32)]);
    const t0 = performance.now();
    const masked = maskedVectorBytes(sodium, session, 1, input, selfSeed, seeds);
    times.push(performance.now() - t0);
    if (masked.length !== dimension * Math.ceil(bits / 8)) throw new Error("bench: wrong length");
  }
  times.sort((a, b) => a - b);
  // The raw primitive the masking rests on, in the same run: the keystream of the five masks
  // from libsodium's WebAssembly ChaCha20, nothing folded.
  const keystream = [];
  const key = sodium.randomBytes(32), nonce = new Uint8Array(12);
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let m = 0; m < clients; m++) sodium.chacha20IetfKeystream(Math.ceil(bits / 8) * dimension, nonce, 0, key);
    keystream.push(performance.now() - t0);
  }
  keystream.sort((a, b) => a - b);
  const median = (xs) => xs[Math.floor(xs.length / 2)];
  return {
    dimension, bits, clients, masks: clients, repeats, ms: times, medianMs: median(times),
    keystreamMs: keystream, keystreamMedianMs: median(keystream),
  };
}

// --- the page --------------------------------------------------------------------------------------

async function main() {
  const log = document.getElementById("log");
  const say = (line) => { if (log) log.textContent += line + "\n"; };
  const query = new URLSearchParams(location.search);
  const root = new URL(query.get("root") || "../../", location.href);
  let results = { error: null, cases: 0, passed: 0, failed: 0 };
  try {
    const sodium = await loadSodium();
    if (query.get("bench") === "1") {
      const bench = benchMasking(sodium);
      window.veilSecAggBench = bench;
      say(`masking: d = ${bench.dimension}, b = ${bench.bits}, n = ${bench.clients}: median ${bench.medianMs.toFixed(1)} ms (${bench.ms.map((x) => x.toFixed(1)).join(", ")})`);
      document.title = `BENCH ${bench.medianMs.toFixed(1)}`;
      return;
    }
    const load = async (name) => {
      const response = await fetch(new URL(name, root), { cache: "no-store" });
      if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
      return response.json();
    };
    const [secagg, parameters] = await Promise.all([load("Vectors/secagg/veil_secagg.json"), load("Vectors/secagg/veil_secagg_parameters.json")]);
    results = runSecAggVectors(sodium, secagg, parameters, { mutate: query.get("mutate") === "1" });
    for (const name of ["transcripts", "substitutions", "parameters"]) {
      const b = results[name];
      say(`${name}: ${b.passed}/${b.cases}${b.failures.length ? "\n  " + b.failures.join("\n  ") : ""}`);
    }
  } catch (error) {
    results.error = `${error && error.name}: ${error && error.message}`;
    say(results.error);
  }
  window.veilSecAggResults = results;
  const ok = !results.error && results.failed === 0 && results.cases > 0;
  document.title = ok ? `PASS ${results.passed}` : `FAIL ${results.error || `${results.failed} of ${results.cases}`}`;
  say(document.title);
}

if (typeof document !== "undefined") main();
