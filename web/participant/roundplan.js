// The round plan's digest (Specs/wire.md §4; Sources/VeilService/RoundPlan.swift):
//
//     SHA-256("veil/v1/round-plan" ‖ 0x00 ‖ RoundPlan{model, training, encoding, distributed_dp, asynchronous})
//
// RoundPlan in protobuf *binary*, byte for byte as swift-protobuf emits it: fields in ascending
// number order; proto3 scalars omitted at their default (a double omitted only when its bit
// pattern is zero, so −0.0 is written); repeated doubles packed (omitted when empty); model,
// training and encoding always present (RoundPlanDigest.encoded assigns them, so an empty one is
// its tag and a zero length); distributed_dp and asynchronous only when the assignment has them.
//
// The input is the assignment as decoded from its canonical proto3 JSON (lowerCamelCase names,
// the proto's snake_case names accepted too; 64-bit integers as decimal strings or numbers;
// bytes as base64; doubles as numbers or "NaN" / "Infinity" / "-Infinity").
// An ES module; SHA-256 is libsodium's (a loaded Sodium from ./sodium.js).

export class RoundPlanError extends Error {
  constructor(message) {
    super(message);
    this.name = "RoundPlanError";
  }
}

const DOMAIN = new TextEncoder().encode("veil/v1/round-plan");

// --- reading the JSON mapping ------------------------------------------------------------------

function snake(name) {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/** The value of field `name` (lowerCamelCase) of a JSON message, or undefined; null counts as absent. */
export function field(object, name) {
  if (object === null || object === undefined) return undefined;
  if (typeof object !== "object" || Array.isArray(object)) throw new RoundPlanError(`not a message where ${name} is read`);
  let value = object[name];
  if (value === undefined) value = object[snake(name)];
  return value === null ? undefined : value;
}

export function has(object, name) {
  return field(object, name) !== undefined;
}

export function readDouble(value, name) {
  if (value === undefined) return 0;
  if (typeof value === "number") return value;
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  if (typeof value === "string" && /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value.trim())) return Number(value);
  throw new RoundPlanError(`${name}: not a double`);
}

export function readUint32(value, name) {
  if (value === undefined) return 0;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RoundPlanError(`${name}: not a uint32`);
  return n;
}

export function readUint64(value, name) {
  if (value === undefined) return 0n;
  let n;
  if (typeof value === "string" && /^\d+$/.test(value)) n = BigInt(value);
  else if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) n = BigInt(value);
  else throw new RoundPlanError(`${name}: not a uint64`);
  if (n >> 64n) throw new RoundPlanError(`${name}: not a uint64`);
  return n;
}

export function readBytes(value, name) {
  if (value === undefined) return new Uint8Array(0);
  if (typeof value !== "string") throw new RoundPlanError(`${name}: not base64`);
  // Standard base64 (padding optional); the URL-safe alphabet is accepted too, as protobuf JSON parsers do.
  const text = value.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, "").length % 4 === 1) {
    throw new RoundPlanError(`${name}: not base64`);
  }
  const padded = text.replace(/=+$/, "");
  const binary = atob(padded + "=".repeat((4 - (padded.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function readString(value, name) {
  if (value === undefined) return "";
  if (typeof value !== "string") throw new RoundPlanError(`${name}: not a string`);
  return value;
}

// --- the binary encoder ---------------------------------------------------------------------

/** A protobuf binary writer of the few wire types RoundPlan needs. */
export class ProtoWriter {
  constructor() {
    this.parts = [];
    this.length = 0;
  }

  push(bytes) {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  varint(value) {
    let v = BigInt(value);
    if (v < 0n || v >> 64n) throw new RoundPlanError(`varint out of range: ${value}`);
    const out = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      out.push(b);
    } while (v);
    this.push(Uint8Array.from(out));
  }

  tag(number, wireType) {
    this.varint((number << 3) | wireType);
  }

  /** uint32 / uint64 / bool (varint), omitted when zero. */
  uint(number, value) {
    if (BigInt(value) === 0n) return;
    this.tag(number, 0);
    this.varint(value);
  }

  /** double (fixed64, little-endian), omitted when its bit pattern is zero (+0.0 only). */
  double(number, value) {
    const bytes = doubleBytes(value);
    if (bytes.every((b) => b === 0)) return;
    this.tag(number, 1);
    this.push(bytes);
  }

  /** bytes, omitted when empty. */
  bytes(number, value) {
    if (value.length === 0) return;
    this.tag(number, 2);
    this.varint(value.length);
    this.push(value);
  }

  string(number, value) {
    this.bytes(number, new TextEncoder().encode(value));
  }

  /** A message field that is present: always written, an empty one as a zero length. */
  message(number, encoded) {
    this.tag(number, 2);
    this.varint(encoded.length);
    this.push(encoded);
  }

  /** packed repeated double, omitted when empty. */
  packedDoubles(number, values) {
    if (values.length === 0) return;
    this.tag(number, 2);
    this.varint(values.length * 8);
    for (const v of values) this.push(doubleBytes(v));
  }

  finish() {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const p of this.parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }
}

function doubleBytes(value) {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value, true);
  return bytes;
}

// --- RoundPlan and its parts ------------------------------------------------------------------

export function encodeModel(model) {
  const w = new ProtoWriter();
  const vectors = field(model, "vectors") ?? [];
  if (!Array.isArray(vectors)) throw new RoundPlanError("model.vectors: not a list");
  for (const vector of vectors) {
    const values = field(vector, "values") ?? [];
    if (!Array.isArray(values)) throw new RoundPlanError("model.vectors[].values: not a list");
    const v = new ProtoWriter();
    v.packedDoubles(1, values.map((x) => readDouble(x, "model value")));
    w.message(1, v.finish());
  }
  return w.finish();
}

export function encodeTrainingPlan(t) {
  const w = new ProtoWriter();
  w.string(1, readString(field(t, "algorithm"), "training.algorithm"));
  w.uint(2, readUint32(field(t, "localEpochs"), "training.localEpochs"));
  w.uint(3, readUint32(field(t, "batchSize"), "training.batchSize"));
  w.double(4, readDouble(field(t, "learningRate"), "training.learningRate"));
  w.double(5, readDouble(field(t, "momentum"), "training.momentum"));
  w.double(6, readDouble(field(t, "weightDecay"), "training.weightDecay"));
  w.double(7, readDouble(field(t, "proximalMu"), "training.proximalMu"));
  w.double(8, readDouble(field(t, "weightScale"), "training.weightScale"));
  w.uint(9, readUint64(field(t, "seed"), "training.seed"));
  w.string(10, readString(field(t, "model"), "training.model"));
  w.uint(11, readUint32(field(t, "features"), "training.features"));
  w.uint(12, readUint32(field(t, "classes"), "training.classes"));
  w.double(13, readDouble(field(t, "dpClip"), "training.dpClip"));
  return w.finish();
}

export function encodePayloadEncoding(e) {
  const w = new ProtoWriter();
  w.double(1, readDouble(field(e, "clip"), "encoding.clip"));
  w.uint(2, readUint32(field(e, "fractionalBits"), "encoding.fractionalBits"));
  w.uint(3, readUint32(field(e, "bits"), "encoding.bits"));
  w.uint(4, readUint32(field(e, "maxAddends"), "encoding.maxAddends"));
  w.uint(5, readUint32(field(e, "subsetSize"), "encoding.subsetSize"));
  w.bytes(6, readBytes(field(e, "subsetSeed"), "encoding.subsetSeed"));
  return w.finish();
}

export function encodeDistributedDPPlan(p) {
  const w = new ProtoWriter();
  w.string(1, readString(field(p, "noise"), "distributedDp.noise"));
  w.double(2, readDouble(field(p, "clip"), "distributedDp.clip"));
  w.uint(3, readUint32(field(p, "bits"), "distributedDp.bits"));
  w.uint(4, readUint32(field(p, "dimension"), "distributedDp.dimension"));
  w.uint(5, readUint32(field(p, "minimumParticipants"), "distributedDp.minimumParticipants"));
  w.double(6, readDouble(field(p, "beta"), "distributedDp.beta"));
  w.double(7, readDouble(field(p, "unitScale"), "distributedDp.unitScale"));
  w.double(8, readDouble(field(p, "unitLocalStddev"), "distributedDp.unitLocalStddev"));
  w.bytes(9, readBytes(field(p, "rotationSeed"), "distributedDp.rotationSeed"));
  return w.finish();
}

export function encodeAsynchronousPlan(p) {
  const w = new ProtoWriter();
  w.uint(1, readUint64(field(p, "version"), "asynchronous.version"));
  w.uint(2, readUint32(field(p, "maxStaleness"), "asynchronous.maxStaleness"));
  w.uint(3, readUint64(field(p, "baseVersion"), "asynchronous.baseVersion"));
  w.bytes(4, readBytes(field(p, "offerDigest"), "asynchronous.offerDigest"));
  return w.finish();
}

/** The protobuf encoding of RoundPlan{model, training, encoding, distributed_dp, asynchronous} of an assignment. */
export function encodeRoundPlan(assignment) {
  const w = new ProtoWriter();
  w.message(1, encodeModel(field(assignment, "model") ?? {}));
  w.message(2, encodeTrainingPlan(field(assignment, "training") ?? {}));
  w.message(3, encodePayloadEncoding(field(assignment, "encoding") ?? {}));
  if (has(assignment, "distributedDp")) w.message(4, encodeDistributedDPPlan(field(assignment, "distributedDp")));
  if (has(assignment, "asynchronous")) w.message(5, encodeAsynchronousPlan(field(assignment, "asynchronous")));
  return w.finish();
}

/** SHA-256("veil/v1/round-plan" ‖ 0x00 ‖ encodeRoundPlan(assignment)), 32 bytes. */
export function roundPlanDigest(sodium, assignment) {
  const plan = encodeRoundPlan(assignment);
  const message = new Uint8Array(DOMAIN.length + 1 + plan.length);
  message.set(DOMAIN, 0);
  message.set(plan, DOMAIN.length + 1);
  return sodium.hashSha256(message);
}
