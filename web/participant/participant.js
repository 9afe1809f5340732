// The browser participant's agent (Specs/wire.md §3, masking rounds only): a port of
// Sources/VeilService/Participant/AssignmentChecks.swift (checkCoordinator, prepare,
// checkPayloadLength, trainAndEncode, roundRandomness) and ParticipantSession.swift (handle,
// forward, decline), sans-IO: `onMessage(obj)` takes one decoded CoordinatorMessage (canonical
// proto3 JSON) and resolves to the ParticipantMessage objects to send, in order. The page
// (participate.js) owns the WebSocket.
//
// What a browser participant does not do is declined with its reason, never half-done:
// Paillier rounds (DECLINE_PAILLIER_KEY), distributed-DP plans (DECLINE_PRIVACY), asynchronous
// plans (DECLINE_POLICY); ModelOffers are ignored (never answered, so the coordinator of an
// asynchronous federation never selects it). It has no privacy budget, no DP-SGD, no loss
// reports and no resource reports. Central DP (training.dpClip > 0) is as native: weight 1,
// the update clipped to C − √L·2^−f, the weight coordinate 0; the coordinator adds the noise,
// which the participant cannot verify (the events say so).
//
// Dependencies are passed in (the SecAgg module `secagg` = ./secagg.js, the trainer module
// `trainer` = ./trainer.js), so the checks run, and are tested, without them.

import {
  ChaChaGenerator, FixedPointCodec, SystemGenerator, concat, equalBytes, le32, toHex, veilKdf,
} from "./veil-crypto.js";
import { verifyCertificate } from "./x509.js";
import {
  field, has, readBytes, readDouble, readString, readUint32, readUint64, roundPlanDigest,
} from "./roundplan.js";

export const DECLINE = Object.freeze({
  POLICY: "DECLINE_POLICY",
  COORDINATOR: "DECLINE_COORDINATOR",
  ROSTER: "DECLINE_ROSTER",
  PAILLIER_KEY: "DECLINE_PAILLIER_KEY",
  PRIVACY: "DECLINE_PRIVACY",
  TRAINING: "DECLINE_TRAINING",
  ABORTED: "DECLINE_ABORTED",
});

/** The default policy of `veil join` (Specs/wire.md §3.1). */
export const DEFAULT_POLICY = Object.freeze({
  adversary: "malicious", // or "honest-but-curious"
  corruptFraction: 0.05,
  dropoutFraction: 0.1,
  securityBits: 40,
  minCohort: 3,
  minContributors: 3,
  maxStaleness: 10,
});

const ADVERSARY_RAW = { "honest-but-curious": 0, malicious: 1 };
const AUTHENTICATE_DOMAIN = new TextEncoder().encode("veil/v1/browser/authenticate");
const AUDIT_RECEIPT_DOMAIN = new TextEncoder().encode("veil/v1/audit/receipt");
const MAX_LOCAL_EPOCHS = 1000;
const MAX_REASON = 512; // ParticipantPolicy.maxReasonLength: a Decline's reason is at most this long

/** A check that failed: the Decline code and reason the coordinator is told. */
export class Declined extends Error {
  constructor(code, reason) {
    super(reason);
    this.name = "Declined";
    this.code = code;
    this.reason = reason;
  }
}

/** A message this participant cannot act on (a Failure that ends the connection, a malformed frame). */
export class ParticipantError extends Error {
  constructor(message, code = null) {
    super(message);
    this.name = "ParticipantError";
    this.code = code;
  }
}

// --- small helpers ------------------------------------------------------------------------------

export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function describe(error) {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function truncate(text) {
  return text.length <= MAX_REASON ? text : text.slice(0, MAX_REASON - 1) + "…";
}

/** The largest double below x (Swift's nextDown), for finite positive x. */
function nextDown(x) {
  if (x === 0) return -Number.MIN_VALUE;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, x > 0 ? bits - 1n : bits + 1n);
  return view.getFloat64(0);
}

/** L2Clipping.norm: scaled, so that huge values do not overflow. */
export function l2Norm(x) {
  let largest = 0;
  for (const v of x) largest = Math.max(largest, Math.abs(v));
  if (!(largest > 0) || !Number.isFinite(largest)) return largest;
  let sum = 0;
  for (const v of x) sum += (v / largest) * (v / largest);
  return largest * Math.sqrt(sum);
}

/** L2Clipping.clip (Sources/VeilPrivacy/Clipping/Clipping.swift). */
export function l2Clip(x, bound) {
  if (!(bound > 0)) throw new RangeError("a clip bound must be positive");
  if (!x.every(Number.isFinite)) return x.map(() => 0);
  const n = l2Norm(x);
  if (n <= bound) return x.slice();
  const factor = nextDown(bound / n);
  return x.map((v) => v * factor);
}

/** ServicePrivacyPlan.slack: √L·2^−f, the most stochastic rounding can add to the norm. */
export function dpSlack(length, fractionalBits) {
  return Math.sqrt(length) * 2 ** -fractionalBits;
}

/** The parameter count of a model name (softmax, mlp:H1,H2,…), or null when this module does not know it. */
export function parameterCount(model, features, classes) {
  if (model === "softmax") return classes * (features + 1);
  const m = /^mlp:(\d+(?:,\d+)*)$/.exec(model);
  if (m) {
    const sizes = [features, ...m[1].split(",").map(Number), classes];
    let count = 0;
    for (let l = 0; l + 1 < sizes.length; l++) count += sizes[l + 1] * (sizes[l] + 1);
    return count;
  }
  return null;
}

/**
 * VEIL-COORDINATE-SUBSET (Specs/export.md §5.2): the k coordinates of d − 1 a public seed picks,
 * sorted, then d − 1 (the weight), and the scale (d − 1)/k.
 */
export class CoordinateSubset {
  constructor(sodium, length, size, seed) {
    if (!Number.isInteger(length) || length < 2) throw new RangeError(`a payload of ${length} values has no update coordinate`);
    if (!Number.isInteger(size) || size < 1 || size > length - 1) throw new RangeError(`k = ${size} is outside 1…${length - 1}`);
    if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new RangeError("the subset seed is not 32 bytes");
    const generator = new ChaChaGenerator(sodium, seed);
    const below = (m) => {
      const bound = ((1n << 64n) - BigInt(m)) % BigInt(m);
      for (;;) {
        const w = generator.next();
        if (w >= bound) return Number(w % BigInt(m));
      }
    };
    const updates = length - 1;
    const order = Array.from({ length: updates }, (_, i) => i);
    for (let i = 0; i < size; i++) {
      const j = i + below(updates - i);
      [order[i], order[j]] = [order[j], order[i]];
    }
    generator.dispose();
    this.length = length;
    this.size = size;
    this.indices = order.slice(0, size).sort((a, b) => a - b).concat([updates]);
  }

  get scale() { return (this.length - 1) / this.size; }

  compress(payload) {
    const scale = this.scale;
    return this.indices.slice(0, -1).map((i) => payload[i] * scale).concat([payload[this.length - 1]]);
  }
}

// --- SecAgg adapter -------------------------------------------------------------------------------
// The few places participant.js touches ./secagg.js, in one spot (its API: SecAggPolicy,
// SecAggSession.create, SecAggClient(sodium, session, position, signingSeed, input, generator)).

function makePolicy(secagg, policy) {
  return new secagg.SecAggPolicy({
    adversary: policy.adversary, corruptFraction: policy.corruptFraction, dropoutFraction: policy.dropoutFraction,
    securityBits: policy.securityBits, minCohort: policy.minCohort, minContributors: policy.minContributors,
  });
}

function checkPolicy(policyObject, n, t, k) {
  policyObject.check(n, t, k);
}

async function createSession(secagg, sodium, description) {
  return await secagg.SecAggSession.create(sodium, description);
}

function sessionNeighbors(session, position) {
  return session.neighbors(position);
}

/** The coordinator key of a session (secagg.js's serverKey). */
function sessionServerKey(session) {
  return session?.serverKey ?? null;
}

// --- the agent ------------------------------------------------------------------------------------

/**
 * The browser participant.
 * - sodium: a loaded Sodium (./sodium.js).
 * - identity: {id, signingSeed: Uint8Array(32), certificateDer: Uint8Array, signingKey: Uint8Array(32)}.
 * - caDer: the federation CA's certificate, DER.
 * - coordinatorId: the coordinator id this page reaches (default "coordinator").
 * - policy: DEFAULT_POLICY's keys (missing ones take the defaults).
 * - dataset: {features: Float64Array, labels: Int32Array, count, featureCount} or null.
 * - secagg, trainer: the modules ./secagg.js and ./trainer.js (or stand-ins).
 * - sessionLog: {claim(sessionIdHex) → Promise<boolean>}, the identity's persistent log of the
 *   sessions it took part in (identity-store.js's sessionLog(id)): true when newly recorded (and
 *   committed), false when already there; a rejection makes the round a decline. Required.
 * - now: () => milliseconds (certificate validity), default Date.now.
 * - resources: Hello's resources, default from navigator.
 * Events (EventTarget, CustomEvent detail): "round" (a round's state changed: detail is the
 * round record), "welcome", "failure", "finished", "offer".
 */
export class BrowserParticipant extends EventTarget {
  constructor({ sodium, identity, caDer, coordinatorId = "coordinator", policy = {}, dataset = null, now = Date.now,
    secagg = null, trainer = null, resources = null, sessionLog = null } = {}) {
    super();
    if (!sodium) throw new TypeError("a loaded Sodium is required");
    if (!identity || !(identity.signingSeed instanceof Uint8Array) || identity.signingSeed.length !== 32) {
      throw new TypeError("an identity with a 32-byte signing seed is required");
    }
    if (!(identity.certificateDer instanceof Uint8Array)) throw new TypeError("the identity's certificate (DER) is required");
    this.sodium = sodium;
    this.identity = identity;
    const keys = sodium.signSeedKeypair(identity.signingSeed);
    keys.secretKey.fill(0);
    if (identity.signingKey && !equalBytes(identity.signingKey, keys.publicKey)) {
      throw new TypeError("the identity's signing key is not its seed's");
    }
    this.signingKey = keys.publicKey;
    this.caDer = caDer;
    this.coordinatorId = coordinatorId;
    this.policy = { ...DEFAULT_POLICY, ...policy };
    if (!(this.policy.adversary in ADVERSARY_RAW)) throw new TypeError(`unknown adversary ${this.policy.adversary}`);
    this.dataset = dataset;
    this.now = now;
    this.secagg = secagg;
    this.trainer = trainer;
    this.resources = resources;
    this.verified = new Map(); // SHA-256 hex of a certificate → its verified identity (while valid)
    if (!sessionLog || typeof sessionLog.claim !== "function") {
      throw new TypeError("a session log is required (identity-store.js's sessionLog(id)): a session is taken part in once, across connections and reloads");
    }
    this.sessionLog = sessionLog;
    this.contributedSessions = new Set(); // this object's own, besides the log
    this.round = null; // {number, client, session, record}
    this.rounds = []; // one record per assignment, for the page
    this.tally = { assigned: 0, completed: 0, declined: 0, centralDP: 0, trainingSeconds: 0, cryptoSeconds: 0 };
    this.authenticated = false;
    this.finished = null;
    this.welcome = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // --- the stream -------------------------------------------------------------------------------

  /** One CoordinatorMessage (JSON object) in; the ParticipantMessages to send, in order. */
  async onMessage(message) {
    if (!message || typeof message !== "object" || Array.isArray(message)) {
      throw new ParticipantError("the coordinator sent a frame that is not a message");
    }
    const kinds = Object.keys(message).filter((k) => message[k] !== null && message[k] !== undefined);
    if (kinds.length !== 1) throw new ParticipantError(`the coordinator sent a message with ${kinds.length} kinds`);
    const kind = kinds[0];
    const body = message[kind];
    switch (kind) {
      case "challenge": return this.authenticate(body);
      case "welcome":
        this.welcome = {
          participantId: readString(field(body, "participantId"), "welcome.participantId"),
          federation: readString(field(body, "federation"), "welcome.federation"),
          nextRound: readUint64(field(body, "nextRound"), "welcome.nextRound").toString(),
        };
        this.emit("welcome", this.welcome);
        return [];
      case "assignment": return this.handleAssignment(body);
      case "secagg": return this.handleSecAgg(body);
      case "result": return this.handleResult(body);
      case "failure": return this.handleFailure(body);
      case "finished":
        this.finished = {
          rounds: readUint64(field(body, "rounds"), "finished.rounds").toString(),
          reason: readString(field(body, "reason"), "finished.reason"),
        };
        this.emit("finished", this.finished);
        return [];
      case "offer":
        // Asynchronous federations: a browser participant holds no update; it never answers.
        this.emit("offer", { ignored: true });
        return [];
      case "decrypt":
        return []; // for the key holder only
      default:
        return []; // a kind this version does not know: nothing to do (as swift-protobuf's nil kind)
    }
  }

  /** The answer to the coordinator's challenge, and Hello right after it. */
  authenticate(body) {
    const nonce = readBytes(field(body, "nonce"), "challenge.nonce");
    if (nonce.length !== 32) throw new ParticipantError(`a challenge of ${nonce.length} bytes, not 32`);
    if (this.authenticated) throw new ParticipantError("a second challenge on one connection");
    const coordinator = new TextEncoder().encode(this.coordinatorId);
    const signed = concat(AUTHENTICATE_DOMAIN, Uint8Array.of(0), nonce, le32(coordinator.length), coordinator);
    const keys = this.sodium.signSeedKeypair(this.identity.signingSeed);
    let signature;
    try {
      signature = this.sodium.signDetached(signed, keys.secretKey);
    } finally {
      keys.secretKey.fill(0);
    }
    this.authenticated = true;
    return [
      { authenticate: { certificate: toBase64(this.identity.certificateDer), signature: toBase64(signature) } },
      { hello: this.hello() },
    ];
  }

  hello() {
    const p = this.policy;
    const policy = {
      adversary: ADVERSARY_RAW[p.adversary],
      corruptFraction: p.corruptFraction,
      dropoutFraction: p.dropoutFraction,
      securityBits: p.securityBits,
      minimumCohort: p.minCohort,
      minimumContributors: p.minContributors,
      maxStaleness: p.maxStaleness,
    };
    for (const k of Object.keys(policy)) if (policy[k] === 0) delete policy[k];
    const hello = { protocolVersion: 1, policy };
    const count = this.dataset ? this.dataset.count : 0;
    if (count > 0) hello.sampleCount = String(count);
    const r = this.resources ?? BrowserParticipant.browserResources();
    const resources = {};
    if (r.cores) resources.cores = r.cores;
    if (r.memoryBytes) resources.memoryBytes = String(r.memoryBytes);
    if (r.battery !== 0) resources.battery = r.battery;
    if (r.linkBitsPerSecond) resources.linkBitsPerSecond = String(r.linkBitsPerSecond);
    hello.resources = resources;
    return hello;
  }

  /** What the browser tells of its device (coarse, as browsers report it): mains power assumed (−1). */
  static browserResources() {
    const nav = globalThis.navigator ?? {};
    const cores = Number.isInteger(nav.hardwareConcurrency) && nav.hardwareConcurrency > 0 ? nav.hardwareConcurrency : 1;
    const memoryBytes = typeof nav.deviceMemory === "number" ? Math.round(nav.deviceMemory * 2 ** 30) : 0;
    const downlink = nav.connection && typeof nav.connection.downlink === "number" ? nav.connection.downlink : 0;
    return { cores, memoryBytes, battery: -1, linkBitsPerSecond: Math.round(downlink * 1e6) };
  }

  // --- rounds -----------------------------------------------------------------------------------

  newRecord(assignment) {
    const number = readUint64(field(assignment, "round"), "assignment.round").toString();
    const record = {
      round: number, state: "assigned", declineCode: null, reason: null, survivors: null, completed: null,
      trainingSeconds: 0, cryptoSeconds: 0, centralDP: false, examples: null, auditReceipt: null, abortReason: null,
    };
    this.rounds.push(record);
    this.tally.assigned += 1;
    this.emit("round", record);
    return record;
  }

  update(record, changes) {
    Object.assign(record, changes);
    this.emit("round", record);
  }

  decline(record, declined) {
    const reason = truncate(declined.reason);
    this.tally.declined += 1;
    this.update(record, { state: "declined", declineCode: declined.code, reason });
    return { decline: { round: record.round, reason, code: declined.code } };
  }

  async handleAssignment(a) {
    const record = this.newRecord(a);
    this.round = null;
    try {
      if (has(a, "paillier")) {
        throw new Declined(DECLINE.PAILLIER_KEY, "a browser participant takes part in masking rounds only");
      }
      const started = performance.now();
      const prepared = await this.prepare(a, record);
      const trained = (performance.now() - started) / 1000;
      this.tally.trainingSeconds += trained;
      const starting = performance.now();
      const action = await prepared.client.start();
      const crypto = (performance.now() - starting) / 1000;
      this.tally.cryptoSeconds += crypto;
      this.round = { number: record.round, client: prepared.client, session: prepared.session, record };
      this.update(record, { state: "masking", trainingSeconds: trained, cryptoSeconds: record.cryptoSeconds + crypto });
      return this.forward(action, record);
    } catch (error) {
      if (error instanceof Declined) {
        this.round = null;
        return [this.decline(record, error)];
      }
      throw error;
    }
  }

  /** The secure-sum client's action → the messages to send. */
  forward(action, record) {
    if (!action || action.ignored) return [];
    if (action.send) return [{ secagg: { round: record.round, signed: toBase64(action.send) } }];
    if (action.aborted !== undefined) {
      // Said, not only logged: the coordinator learns why without waiting for a deadline.
      // SecAggAbort's description: "aborted in ROUND: reason".
      const reason = action.round ? `aborted in ${action.round}: ${action.detail ?? action.aborted}` : String(action.aborted);
      return [this.decline(record, new Declined(DECLINE.ABORTED, reason))];
    }
    throw new ParticipantError("the secure-sum client returned an unknown action");
  }

  async handleSecAgg(body) {
    const number = readUint64(field(body, "round"), "secagg.round").toString();
    const current = this.round;
    if (!current || current.number !== number) return [];
    const signed = readBytes(field(body, "signed"), "secagg.signed");
    const started = performance.now();
    const action = await current.client.handle(signed);
    const seconds = (performance.now() - started) / 1000;
    this.tally.cryptoSeconds += seconds;
    current.record.cryptoSeconds += seconds;
    if (current.client.completed && current.record.state === "masking") this.update(current.record, { state: "masked" });
    return this.forward(action, current.record);
  }

  handleResult(body) {
    const number = readUint64(field(body, "round"), "result.round").toString();
    const completed = field(body, "completed") === true;
    const survivors = readUint32(field(body, "survivors"), "result.survivors");
    const current = this.round && this.round.number === number ? this.round : null;
    const record = current?.record ?? [...this.rounds].reverse().find((r) => r.round === number) ?? null;
    if (record) {
      const changes = { survivors, completed, abortReason: readString(field(body, "abortReason"), "result.abortReason") || null };
      if (current && record.state !== "declined") {
        const contributed = completed && current.client.completed === true;
        if (contributed) {
          this.tally.completed += 1;
          if (record.centralDP) this.tally.centralDP += 1;
        }
        changes.state = contributed ? "completed" : completed ? "completed without this participant" : "aborted";
        changes.auditReceipt = this.checkReceipt(body, current.session);
      }
      this.update(record, changes);
    }
    if (current) this.round = null;
    return [];
  }

  /** The coordinator's audit receipt for the round (Specs/audit.md §6): verified under the session's coordinator key. */
  checkReceipt(body, session) {
    const hash = readBytes(field(body, "auditRecordHash"), "result.auditRecordHash");
    if (hash.length === 0) return "absent";
    const receipt = readBytes(field(body, "auditReceipt"), "result.auditReceipt");
    const key = sessionServerKey(session);
    const id = session?.id;
    if (!(key instanceof Uint8Array) || !(id instanceof Uint8Array)) return "unchecked";
    try {
      this.sodium.signVerifyDetached(receipt, concat(AUDIT_RECEIPT_DOMAIN, Uint8Array.of(0), id, hash), key);
      return "verified";
    } catch {
      return "does not verify";
    }
  }

  handleFailure(body) {
    const failure = {
      code: field(body, "code") ?? "FAILURE_UNSPECIFIED",
      message: readString(field(body, "message"), "failure.message"),
    };
    this.emit("failure", failure);
    if (failure.code === "FAILURE_NOT_A_PARTICIPANT" || failure.code === "FAILURE_PROTOCOL_VERSION") {
      throw new ParticipantError(`the coordinator refuses this participant: ${failure.message}`, failure.code);
    }
    if (failure.code === "FAILURE_DROPPED" && this.round) {
      this.update(this.round.record, { state: "dropped", reason: failure.message });
      this.round = null;
    }
    return [];
  }

  // --- the checks (AssignmentChecks.swift) ------------------------------------------------------

  /** A certificate checked against the CA and required to have `role`, cached by its SHA-256 while valid. */
  async verifiedIdentity(der, role) {
    const now = this.now();
    const digest = toHex(this.sodium.hashSha256(der));
    const cached = this.verified.get(digest);
    if (cached && cached.role === role && cached.notBefore.getTime() <= now && now <= cached.notAfter.getTime()) return cached;
    const identity = await verifyCertificate(der, this.caDer, role, now);
    this.verified.set(digest, identity);
    return identity;
  }

  /** The session's server must be the coordinator this page connected to, not any coordinator-role certificate. */
  async checkCoordinator(der) {
    let coordinator;
    try {
      coordinator = await this.verifiedIdentity(der, "coordinator");
    } catch (error) {
      throw new Declined(DECLINE.COORDINATOR, `the session's coordinator certificate: ${describe(error)}`);
    }
    if (coordinator.id !== this.coordinatorId) {
      throw new Declined(DECLINE.COORDINATOR,
        `the session names coordinator ${coordinator.id}, but this participant connected to ${this.coordinatorId}`);
    }
    return coordinator;
  }

  /** A masking round: the checks of wire.md §3 in Swift's order, then training, encoding and the client. */
  async prepare(a, record) {
    const d = field(a, "session") ?? {};
    const coordinator = await this.checkCoordinator(readBytes(field(d, "coordinatorCertificate"), "session.coordinatorCertificate"));
    const rawKeys = field(d, "rosterSigningKeys") ?? [];
    if (!Array.isArray(rawKeys)) throw new Declined(DECLINE.ROSTER, "the roster is not a list of keys");
    const keys = [];
    for (const raw of rawKeys) {
      let key;
      try { key = readBytes(raw, "a roster key"); } catch { key = null; }
      if (!key || key.length !== 32) throw new Declined(DECLINE.ROSTER, "a roster key is not an Ed25519 public key");
      keys.push(key);
    }
    const position = readUint32(field(a, "position"), "assignment.position");
    if (!(position >= 1 && position <= keys.length && equalBytes(keys[position - 1], this.signingKey))) {
      throw new Declined(DECLINE.ROSTER, `the roster does not list this participant's key at position ${position}`);
    }
    const n = readUint32(field(d, "clientCount"), "session.clientCount");
    const t = readUint32(field(d, "threshold"), "session.threshold");
    const k = readUint32(field(d, "neighborCount"), "session.neighborCount");
    if (keys.length !== n) throw new Declined(DECLINE.ROSTER, `${keys.length} roster keys for ${n} participants`);
    if (!this.secagg) throw new Declined(DECLINE.TRAINING, "this page has no secure-sum client (secagg.js did not load)");
    // n, t, k against this participant's own policy, whatever threat model the coordinator announces.
    try {
      checkPolicy(makePolicy(this.secagg, this.policy), n, t, k);
    } catch (error) {
      throw new Declined(DECLINE.POLICY, `n = ${n}, threshold ${t}, k = ${k}: ${describe(error)}`);
    }
    const adversary = readUint32(field(d, "adversary"), "session.adversary");
    if (adversary !== 0 && adversary !== 1) throw new Declined(DECLINE.POLICY, `unknown adversary ${adversary}`);
    const context = roundPlanDigest(this.sodium, a);
    let session;
    try {
      // The adversary's byte enters the session id; the rest of the threat model is this participant's own.
      session = await createSession(this.secagg, this.sodium, {
        clientCount: n, threshold: t, neighborCount: k,
        bits: readUint32(field(d, "bits"), "session.bits"),
        dimension: readUint32(field(d, "dimension"), "session.dimension"),
        adversary, corruptFraction: this.policy.corruptFraction,
        dropoutFraction: this.policy.dropoutFraction, securityBits: this.policy.securityBits,
        serverKey: coordinator.signingKey,
        clientKeys: keys,
        nonce: readBytes(field(d, "nonce"), "session.nonce"),
        context,
      });
    } catch (error) {
      throw new Declined(DECLINE.POLICY, `the session: ${describe(error)}`);
    }
    // Every neighbour's key bound to a distinct participant of this federation by a certificate.
    const neighbors = new Set(Array.from(sessionNeighbors(session, position), Number));
    const ids = new Set([this.identity.id]);
    const covered = new Set();
    const entries = field(d, "neighborCertificates") ?? [];
    if (!Array.isArray(entries)) throw new Declined(DECLINE.ROSTER, "the neighbour certificates are not a list");
    for (const entry of entries) {
      let p;
      try { p = readUint32(field(entry, "position"), "neighborCertificates.position"); } catch { p = 0; }
      if (!neighbors.has(p) || covered.has(p)) {
        throw new Declined(DECLINE.ROSTER, `a certificate for position ${p}, not a neighbour`);
      }
      let holder;
      try {
        holder = await this.verifiedIdentity(readBytes(field(entry, "certificate"), "neighbour certificate"), "participant");
      } catch (error) {
        throw new Declined(DECLINE.ROSTER, `the certificate at position ${p}: ${describe(error)}`);
      }
      if (!equalBytes(holder.signingKey, keys[p - 1]) || ids.has(holder.id)) {
        throw new Declined(DECLINE.ROSTER, `the certificate at position ${p} does not match the roster`);
      }
      ids.add(holder.id);
      covered.add(p);
    }
    if (covered.size !== neighbors.size) {
      throw new Declined(DECLINE.ROSTER, `certificates missing for ${neighbors.size - covered.size} neighbours`);
    }

    this.checkPayloadLength(a);
    if (has(a, "asynchronous")) {
      throw new Declined(DECLINE.POLICY, "an asynchronous round: a browser participant holds no update (it takes part in synchronous rounds only)");
    }
    if (has(a, "distributedDp")) {
      throw new Declined(DECLINE.PRIVACY, "a distributed-DP plan: a browser participant does not run distributed DP");
    }
    // One set of keys per session: a second R0 in the same session would let the server show
    // different keys to different neighbours. Not only in this object: the session is recorded in
    // the identity's log (identity-store.js), and the record committed, before training and so
    // before R0 — a reconnect or a reload makes a new BrowserParticipant that finds it there.
    const sessionKey = toHex(session.id);
    if (this.contributedSessions.has(sessionKey)) {
      throw new Declined(DECLINE.POLICY, "this participant has already taken part in this session");
    }
    let first;
    try {
      first = await this.sessionLog.claim(sessionKey);
    } catch (error) {
      throw new Declined(DECLINE.POLICY,
        `cannot record this session in the identity's log of sessions taken part in (${describe(error)}): declined rather than risk a second R0`);
    }
    this.contributedSessions.add(sessionKey);
    if (first !== true) {
      throw new Declined(DECLINE.POLICY, "this participant has already taken part in this session (on an earlier connection or page)");
    }

    const randomness = this.roundRandomness(session.id);
    let input;
    try {
      input = await this.trainAndEncode(a, randomness, record);
    } catch (error) {
      randomness.dispose();
      if (error instanceof Declined) throw error;
      throw new Declined(DECLINE.TRAINING, describe(error));
    }
    randomness.dispose();
    let client;
    try {
      client = new this.secagg.SecAggClient(this.sodium, session, position, Uint8Array.from(this.identity.signingSeed), input,
        new SystemGenerator(this.sodium));
    } catch (error) {
      throw new Declined(DECLINE.TRAINING, `the encoded input does not fit the session: ${describe(error)}`);
    }
    return { client, session };
  }

  /**
   * What the session sums against what this participant will send, before any training
   * (AssignmentChecks.checkPayloadLength): the whole payload, or a coordinate subset's k + 1 (Specs/export.md §5.2).
   */
  checkPayloadLength(a) {
    const e = field(a, "encoding") ?? {};
    const k = readUint32(field(e, "subsetSize"), "encoding.subsetSize");
    const plan = field(a, "training") ?? {};
    const updates = parameterCount(readString(field(plan, "model"), "training.model"),
      readUint32(field(plan, "features"), "training.features"), readUint32(field(plan, "classes"), "training.classes"));
    if (updates === null) return; // a model it cannot build is declined by training, with its own reason
    if (k === 0) {
      // Without a subset the session sums the whole payload (the update, then the weight): a session of
      // another length is declined before any training. A distributed-DP plan is declined anyway.
      const dimension = readUint32(field(field(a, "session") ?? {}, "dimension"), "session.dimension");
      if (!has(a, "distributedDp") && dimension !== updates + 1) {
        throw new Declined(DECLINE.POLICY, `the session sums ${dimension} values, but this model's payload is ${updates + 1}`);
      }
      return;
    }
    const seed = readBytes(field(e, "subsetSeed"), "encoding.subsetSeed");
    if (seed.length !== 32 || k > updates) {
      throw new Declined(DECLINE.POLICY,
        `a malformed coordinate subset: k = ${k} of ${updates} update coordinates, a ${seed.length}-byte seed`);
    }
    if (has(a, "distributedDp")) {
      const dimension = readUint32(field(field(a, "distributedDp"), "dimension"), "distributedDp.dimension");
      if (dimension !== k) {
        throw new Declined(DECLINE.POLICY,
          `the distributed-DP plan is for ${dimension} values, but a subset of ${k} coordinates sends ${k}`);
      }
      return;
    }
    const dimension = readUint32(field(field(a, "session") ?? {}, "dimension"), "session.dimension");
    if (dimension !== k + 1) {
      throw new Declined(DECLINE.POLICY, `the session sums ${dimension} values, but a subset of ${k} coordinates sends ${k + 1}`);
    }
  }

  /** VeilKDF(signing seed, "participant/round", salt = session id) → the session's ChaCha20 generator. */
  roundRandomness(sessionId) {
    const seed = veilKdf(this.sodium, this.identity.signingSeed, "participant/round", sessionId);
    try {
      return new ChaChaGenerator(this.sodium, seed);
    } finally {
      seed.fill(0);
    }
  }

  /** The minibatch stream: the first 8 bytes of SHA-256(id), big-endian. */
  trainingStream() {
    const digest = this.sodium.hashSha256(new TextEncoder().encode(this.identity.id));
    let v = 0n;
    for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(digest[i]);
    return v;
  }

  /** Local training, the weight, the subset, the central-DP clip and the fixed-point encoding (trainAndEncode). */
  async trainAndEncode(a, randomness, record) {
    const plan = field(a, "training") ?? {};
    const e = field(a, "encoding") ?? {};
    const dpClip = readDouble(field(plan, "dpClip"), "training.dpClip");
    const uniformWeight = dpClip > 0;
    const seed = readUint64(field(plan, "seed"), "training.seed") ^ randomness.next();
    const trained = await this.train(plan, field(a, "model") ?? {}, seed);
    const weightScale = readDouble(field(plan, "weightScale"), "training.weightScale");
    const weight = uniformWeight ? 1 : trained.examples / weightScale;
    let payload = Array.from(trained.delta, (x) => weight * x);
    payload.push(weight);
    const subsetSize = readUint32(field(e, "subsetSize"), "encoding.subsetSize");
    if (subsetSize > 0) {
      const subset = new CoordinateSubset(this.sodium, payload.length, subsetSize, readBytes(field(e, "subsetSeed"), "encoding.subsetSeed"));
      payload = subset.compress(payload);
    }
    const codec = new FixedPointCodec(readDouble(field(e, "clip"), "encoding.clip"),
      readUint32(field(e, "fractionalBits"), "encoding.fractionalBits"),
      readUint32(field(e, "bits"), "encoding.bits"), readUint32(field(e, "maxAddends"), "encoding.maxAddends"));
    if (dpClip > 0) {
      // Central DP (wire.md §4.2): weight 1, clipped so that after rounding the norm is still within C; the
      // weight coordinate is the coordinator's. The coordinator adds the noise: this participant cannot check it.
      const slack = dpSlack(payload.length, codec.f);
      if (!(slack < dpClip)) throw new Error(`the DP clip ${dpClip} is below the payload's rounding slack`);
      payload = l2Clip(payload.slice(0, -1), dpClip - slack);
      payload.push(0);
      record.centralDP = true;
    }
    record.examples = trained.examples;
    this.update(record, { state: "trained" });
    return codec.encode(payload, randomness);
  }

  /** Trains on the broadcast model as the plan says: the unweighted difference and the examples (train). */
  async train(plan, model, seed) {
    const name = readString(field(plan, "model"), "training.model");
    const features = readUint32(field(plan, "features"), "training.features");
    const classes = readUint32(field(plan, "classes"), "training.classes");
    const vectors = field(model, "vectors") ?? [];
    const first = Array.isArray(vectors) && vectors.length > 0 ? (field(vectors[0], "values") ?? []) : null;
    const expected = parameterCount(name, features, classes);
    if (first === null || (expected !== null && first.length !== expected)) {
      throw new Error(`the broadcast model does not fit ${name}`);
    }
    const parameters = Float64Array.from(first, (x) => readDouble(x, "model value"));
    if (!parameters.every(Number.isFinite)) throw new Error("the broadcast model holds a value that is not finite");
    const batchSize = readUint32(field(plan, "batchSize"), "training.batchSize");
    const localEpochs = readUint32(field(plan, "localEpochs"), "training.localEpochs");
    if (batchSize < 1 || localEpochs < 1 || localEpochs > MAX_LOCAL_EPOCHS) {
      throw new Error(`the plan's batch size ${batchSize} and local epochs ${localEpochs}: need a batch of at least 1 and 1 to ${MAX_LOCAL_EPOCHS} epochs`);
    }
    const data = this.dataset;
    if (!data) throw new Error("no data: pick a CSV file before joining");
    if (data.featureCount !== features) {
      throw new Error(`this participant's data has ${data.featureCount} features, the model ${features}`);
    }
    if (!this.trainer || typeof this.trainer.trainLocally !== "function") throw new Error("this page has no trainer (trainer.js did not load)");
    const result = await this.trainer.trainLocally({
      modelSpec: name, features, classes, parameters, dataset: data,
      plan: {
        algorithm: readString(field(plan, "algorithm"), "training.algorithm"),
        localEpochs, batchSize,
        learningRate: readDouble(field(plan, "learningRate"), "training.learningRate"),
        momentum: readDouble(field(plan, "momentum"), "training.momentum"),
        weightDecay: readDouble(field(plan, "weightDecay"), "training.weightDecay"),
        proximalMu: readDouble(field(plan, "proximalMu"), "training.proximalMu"),
      },
      seed, stream: this.trainingStream(),
    });
    if (!result || result.delta === undefined || result.delta.length !== parameters.length) {
      throw new Error("the trainer returned an update of the wrong length");
    }
    return { delta: result.delta, examples: Number(result.examples) };
  }

  /** A summary for the page. */
  summary() {
    return { ...this.tally, finished: this.finished, rounds: this.rounds.map((r) => ({ ...r })) };
  }
}
