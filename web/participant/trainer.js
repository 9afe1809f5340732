// Veil's local trainer in the browser (Specs/learning.md §2, §4.1): the FedAvg family's client
// rule — E epochs of minibatch SGD with momentum, weight decay and FedProx's proximal term, on
// softmax regression or a ReLU MLP — giving updates bit-identical to the native trainer's
// (Sources/VeilLearning) for the same rows, plan, seed and stream. Every operation is one IEEE-754
// double +, −, ×, / in the order Swift performs it (JavaScript never fuses a multiply-add), and
// exp is the deterministic one of §2.1, not Math.exp. Vectors/trainer/veil_local_training.json
// is the proof, run by web/tests/trainer-test.html.
//
//   trainLocally({modelSpec, features, classes, parameters, dataset, plan, seed, stream})
//     → {delta: Float64Array (w − w_global), examples}
//   parseCsv(text, {classCount}) → {features: Float64Array, labels: Int32Array, count, featureCount, classCount}
//   streamForId(sha256 | null, id) → Promise<BigInt>
//   veilExp(x), Xoshiro256

// --- doubles from their bit patterns ------------------------------------------------------------

const scratch = new DataView(new ArrayBuffer(8));

/** The double whose bit pattern is the 16 hex digits `text` (big-endian). */
export function fromBits(text) {
  if (typeof text !== "string" || !/^[0-9a-f]{16}$/.test(text)) throw new TypeError(`not 16 lower-case hex digits: ${text}`);
  scratch.setUint32(0, parseInt(text.slice(0, 8), 16));
  scratch.setUint32(4, parseInt(text.slice(8), 16));
  return scratch.getFloat64(0);
}

/** The 16 hex digits of a double's bit pattern. */
export function toBits(value) {
  scratch.setFloat64(0, value);
  return scratch.getUint32(0).toString(16).padStart(8, "0") + scratch.getUint32(4).toString(16).padStart(8, "0");
}

/** 2^n for −1022 ≤ n ≤ 1023, exactly. */
const POW2 = new Float64Array(2046);
for (let n = -1022; n <= 1023; n++) {
  scratch.setUint32(0, (n + 1023) * 0x100000);
  scratch.setUint32(4, 0);
  POW2[n + 1022] = scratch.getFloat64(0);
}
const pow2 = (n) => POW2[n + 1022];

// --- the deterministic exp (learning.md §2.1) ---------------------------------------------------

const O_THRESHOLD = fromBits("40862e42fefa39ef"); //  0x1.62e42fefa39efp+9
const U_THRESHOLD = fromBits("c0874910d52d3051"); // -0x1.74910d52d3051p+9
const LN2_HI = fromBits("3fe62e42fee00000"); //       0x1.62e42feep-1
const LN2_LO = fromBits("3dea39ef35793c76"); //       0x1.a39ef35793c76p-33
const INV_LN2 = fromBits("3ff71547652b82fe"); //      0x1.71547652b82fep+0
const P1 = fromBits("3fc555555555553e");
const P2 = fromBits("bf66c16c16bebd93");
const P3 = fromBits("3f11566aaf25de2c");
const P4 = fromBits("bebbbd41c5d26bf1");
const P5 = fromBits("3e66376972bea4d0");

/** e^x, the same bits as Veil's native trainer (within 1 ulp of the true value). */
export function veilExp(x) {
  if (x !== x) return x;
  if (x > O_THRESHOLD) return Infinity;
  if (x < U_THRESHOLD) return 0;
  const k = Math.floor(x * INV_LN2 + 0.5);
  const hi = x - k * LN2_HI;
  const lo = k * LN2_LO;
  const r = hi - lo;
  const t = r * r;
  const c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  const y = 1 - ((lo - (r * c) / (2 - c)) - hi);
  if (k === 0) return y;
  if (k === 1024) return (y * 2) * pow2(1023);
  if (k >= -1021) return y * pow2(k);
  return (y * pow2(k + 1000)) * pow2(-1000);
}

// --- xoshiro256** (learning.md §6) --------------------------------------------------------------

const rotl = (x, k) => BigInt.asUintN(64, (x << k) | (x >> (64n - k)));

/** xoshiro256** seeded by four SplitMix64 outputs of seed ⊕ (stream · 0xd1b54a32d192ed03 mod 2⁶⁴). */
export class Xoshiro256 {
  constructor(seed, stream = 0n) {
    let x = BigInt.asUintN(64, BigInt(seed) ^ BigInt.asUintN(64, BigInt(stream) * 0xd1b54a32d192ed03n));
    this.s = [];
    for (let i = 0; i < 4; i++) {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      this.s.push(z ^ (z >> 31n));
    }
  }

  /** The next 64-bit output, a BigInt. */
  next() {
    const s = this.s;
    const result = BigInt.asUintN(64, rotl(BigInt.asUintN(64, s[1] * 5n), 7n) * 9n);
    const t = BigInt.asUintN(64, s[1] << 17n);
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45n);
    return result;
  }

  /** A uniform double in [0, 1): 53 bits times 2^−53. */
  unit() {
    return Number(this.next() >> 11n) * pow2(-53);
  }

  /** A uniform integer in 0..<bound by rejection below (2⁶⁴ − bound) mod bound. */
  below(bound) {
    const b = BigInt(bound);
    const rejectBelow = ((1n << 64n) - b) % b;
    for (;;) {
      const v = this.next();
      if (v >= rejectBelow) return Number(v % b);
    }
  }

  /** Fisher–Yates from the top: swap i with below(i + 1), i = n − 1 … 1. */
  shuffle(array) {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const held = array[i];
      array[i] = array[j];
      array[j] = held;
    }
  }
}

/** A participant's training stream: the first 8 bytes of SHA-256(UTF-8 id), big-endian.
 * `sha256` maps a Uint8Array to its digest (synchronously or as a promise); null: WebCrypto. */
export async function streamForId(sha256, id) {
  const bytes = new TextEncoder().encode(id);
  const digest = new Uint8Array(sha256 ? await sha256(bytes) : await crypto.subtle.digest("SHA-256", bytes));
  let stream = 0n;
  for (let i = 0; i < 8; i++) stream = (stream << 8n) | BigInt(digest[i]);
  return stream;
}

// --- models and training (learning.md §2) -------------------------------------------------------

/** The layer widths of "softmax" or "mlp:H1,H2,…" (decimal widths without leading zeros). */
export function layerSizes(modelSpec, features, classes) {
  if (modelSpec === "softmax") return [features, classes];
  const match = /^mlp:([1-9][0-9]*(?:,[1-9][0-9]*)*)$/.exec(modelSpec);
  if (!match) throw new Error(`unknown model "${modelSpec}": use softmax or mlp:H1,H2,…`);
  const hidden = match[1].split(",").map(Number);
  if (hidden.length > 64 || hidden.some((w) => w > 1 << 24)) throw new Error("mlp:H1,H2,… takes at most 64 layers of at most 2^24 units");
  return [features, ...hidden, classes];
}

/**
 * The FedAvg family's client rule at weight 1 (what `trainWithVeil` sends): `plan.localEpochs`
 * passes over the rows, each in a fresh Fisher–Yates order from the generator (the order kept
 * from epoch to epoch), minibatches of `plan.batchSize` (the last shorter), the mean
 * cross-entropy gradient, plus μ·(w − w_global) when μ > 0, then the SGD step.
 */
export function trainLocally({ modelSpec, features, classes, parameters, dataset, plan, seed, stream }) {
  const sizes = layerSizes(modelSpec, features, classes);
  const layers = sizes.length;
  const offsets = [];
  let parameterCount = 0;
  for (let l = 0; l < layers - 1; l++) {
    offsets.push(parameterCount);
    parameterCount += sizes[l + 1] * (sizes[l] + 1);
  }
  if (parameters.length !== parameterCount) throw new Error(`${parameters.length} parameters for ${modelSpec}, which has ${parameterCount}`);
  const { count, featureCount } = dataset;
  const x = dataset.features;
  const labels = dataset.labels;
  if (featureCount !== features || x.length !== count * features || labels.length !== count) throw new Error("the dataset's shape disagrees with the model's");
  for (let i = 0; i < count; i++) if (!(labels[i] >= 0 && labels[i] < classes)) throw new Error(`row ${i + 1}: label ${labels[i]} is not a class`);
  const { localEpochs: epochs, batchSize, learningRate: lr, momentum, weightDecay: wd, proximalMu: mu } = plan;

  const global = Float64Array.from(parameters);
  const w = Float64Array.from(parameters);
  if (count > 0 && epochs > 0 && batchSize > 0) {
    const generator = new Xoshiro256(seed, stream);
    const g = new Float64Array(parameterCount);
    const v = new Float64Array(momentum > 0 ? parameterCount : 0);
    const acts = sizes.map((n) => new Float64Array(n));
    const deltas = sizes.map((n) => new Float64Array(n));
    const order = Array.from({ length: count }, (_, i) => i);
    for (let epoch = 0; epoch < epochs; epoch++) {
      generator.shuffle(order);
      for (let start = 0; start < count; ) {
        const end = Math.min(start + batchSize, count);
        g.fill(0);
        for (let b = start; b < end; b++) {
          const row = order[b];
          // Forward: layer l + 1 = W_l·a_l + b_l, ReLU but for the last.
          const a0 = acts[0];
          for (let j = 0; j < features; j++) a0[j] = x[row * features + j];
          for (let l = 0; l < layers - 1; l++) {
            const inputs = sizes[l], outputs = sizes[l + 1], o0 = offsets[l];
            const a = acts[l], out = acts[l + 1];
            const last = l === layers - 2;
            for (let o = 0; o < outputs; o++) {
              let s = w[o0 + outputs * inputs + o];
              const base = o0 + o * inputs;
              for (let i = 0; i < inputs; i++) s += w[base + i] * a[i];
              out[o] = last ? s : s >= 0 ? s : 0; // Swift's max(0, s)
            }
          }
          // Output error: softmax − one-hot.
          const z = acts[layers - 1];
          let top = z[0];
          for (let c = 1; c < classes; c++) if (z[c] > top) top = z[c];
          let total = 0;
          for (let c = 0; c < classes; c++) {
            z[c] = veilExp(z[c] - top);
            total += z[c];
          }
          for (let c = 0; c < classes; c++) z[c] /= total;
          z[labels[row]] -= 1;
          const dOut = deltas[layers - 1];
          for (let c = 0; c < classes; c++) dOut[c] = z[c];
          // Back through the layers.
          for (let l = layers - 2; l >= 0; l--) {
            const inputs = sizes[l], outputs = sizes[l + 1], o0 = offsets[l];
            const a = acts[l], d = deltas[l + 1];
            for (let o = 0; o < outputs; o++) {
              const delta = d[o];
              if (delta === 0) continue;
              const base = o0 + o * inputs;
              for (let i = 0; i < inputs; i++) g[base + i] += delta * a[i];
              g[o0 + outputs * inputs + o] += delta;
            }
            if (l > 0) {
              const below = deltas[l];
              for (let i = 0; i < inputs; i++) {
                let s = 0;
                if (a[i] > 0) for (let o = 0; o < outputs; o++) s += w[o0 + o * inputs + i] * d[o];
                below[i] = s;
              }
            }
          }
        }
        const scale = 1 / (end - start);
        for (let i = 0; i < parameterCount; i++) g[i] *= scale;
        if (mu > 0) for (let i = 0; i < parameterCount; i++) g[i] += mu * (w[i] - global[i]);
        if (momentum > 0) {
          for (let i = 0; i < parameterCount; i++) {
            v[i] = momentum * v[i] + g[i] + wd * w[i];
            w[i] -= lr * v[i];
          }
        } else {
          for (let i = 0; i < parameterCount; i++) w[i] -= lr * (g[i] + wd * w[i]);
        }
        start = end;
      }
    }
  }
  const weight = count / Math.max(count, 1); // p̃ = n / n
  const delta = new Float64Array(parameterCount);
  for (let i = 0; i < parameterCount; i++) delta[i] = weight * (w[i] - global[i]);
  return { delta, examples: count };
}

// --- CSV (learning.md §4.1) ---------------------------------------------------------------------

/** A refusal of the CSV reader: `code` is the native DataError's case. */
export class CsvError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "CsvError";
    this.code = code;
  }
}

// Foundation's CharacterSet.whitespaces (Zs and tab) and .whitespacesAndNewlines.
const ZS = "\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000";
const WHITESPACE = ZS + "\t";
const WHITESPACE_NEWLINES = WHITESPACE + "\u2028\u2029\n\u000b\u000c\r\u0085";

function trim(text, set) {
  let start = 0, end = text.length;
  while (start < end && set.includes(text[start])) start++;
  while (end > start && set.includes(text[end - 1])) end--;
  return text.slice(start, end);
}

const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const HEX = /^([+-]?)0[xX]([0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP]([+-]?[0-9]+))?$/;

/** m·2^e correctly rounded (to nearest, ties to even), subnormals and overflow included. */
function scaleRounded(m, e) {
  if (m === 0n) return 0;
  const bitLength = m.toString(2).length;
  const top = bitLength - 1 + e; // the leading bit's exponent
  if (top > 1100) return Infinity;
  if (top < -1100) return 0;
  const keep = top >= -1022 ? 53 : top + 1075;
  const shift = bitLength - keep;
  let q = m;
  if (shift > 0) {
    const s = BigInt(shift);
    q = m >> s;
    const rest = m - (q << s), half = 1n << (s - 1n);
    if (rest > half || (rest === half && (q & 1n) === 1n)) q += 1n;
    e += shift;
  }
  let value = Number(q); // at most 2^53: exact
  while (e > 0) { const step = Math.min(e, 1000); value *= pow2(step); e -= step; }
  while (e < 0) { const step = Math.max(e, -1000); value *= pow2(step); e -= step; }
  return value;
}

/** A finite double as Swift's Double(String) reads a cell (C strtod: decimal or hex), else null. */
export function parseDouble(cell) {
  let value;
  if (DECIMAL.test(cell)) {
    value = Number(cell);
  } else {
    const match = HEX.exec(cell);
    if (!match) return null;
    const [, sign, digits, exponent] = match;
    const [whole, fraction = ""] = digits.split(".");
    const e = Number(exponent ?? "0") - 4 * fraction.length;
    value = scaleRounded(BigInt("0x" + ((whole + fraction) || "0")), e);
    if (sign === "-") value = -value;
  }
  return Number.isFinite(value) ? value : null;
}

/**
 * The native CSV format (CSVLoader.swift): one example per line (split at "\n", which in Swift's
 * grapheme clusters is not the "\n" of "\r\n"), numeric features then an integer label, no header,
 * blank lines ignored, cells trimmed of spaces. `classCount` null: one more than the largest
 * label, at least 2. Throws CsvError: raggedRow, notNumeric, unknownLabel, empty, shape.
 */
export function parseCsv(text, { classCount = null } = {}) {
  const features = [], rawLabels = [];
  let width = null;
  const lines = text.split(/(?<!\r)\n/);
  for (let number = 0; number < lines.length; number++) {
    const trimmed = trim(lines[number], WHITESPACE_NEWLINES);
    if (trimmed === "") continue;
    const row = number + 1;
    const cells = trimmed.split(",").map((cell) => trim(cell, WHITESPACE));
    if (width !== null && cells.length !== width) throw new CsvError("raggedRow", `row ${row} has ${cells.length} columns, expected ${width}`);
    if (cells.length < 2) throw new CsvError("raggedRow", `row ${row} has ${cells.length} columns, expected 2`);
    width = cells.length;
    for (let column = 0; column < cells.length - 1; column++) {
      const value = parseDouble(cells[column]);
      if (value === null) throw new CsvError("notNumeric", `row ${row}, column ${column + 1}: "${cells[column]}" is not a number`);
      features.push(value);
    }
    rawLabels.push([row, cells[cells.length - 1]]);
  }
  if (width === null) throw new CsvError("empty", "csv holds no rows");
  const labels = [];
  for (const [row, label] of rawLabels) {
    const big = /^[+-]?[0-9]+$/.test(label) ? BigInt(label) : null;
    if (big === null || big < 0n || big >= 1n << 24n) {
      throw new CsvError("unknownLabel", `row ${row}: label ${label} is not a class (labels are integers 0...${(classCount ?? 0) - 1})`);
    }
    labels.push(big);
  }
  let classes = classCount;
  if (classes === null) {
    let largest = 0n;
    for (const label of labels) if (label > largest) largest = label;
    classes = largest + 1n > 2n ? largest + 1n : 2n;
  } else {
    classes = BigInt(classes);
  }
  const bad = labels.findIndex((label) => label >= classes);
  if (bad >= 0) throw new CsvError("unknownLabel", `row ${rawLabels[bad][0]}: label ${labels[bad]} is not a class (labels are integers 0...${classes - 1n})`);
  if (classes < 2n) throw new CsvError("shape", "data shape: need at least one feature and two classes");
  if (classes > BigInt(2 ** 31 - 1)) throw new CsvError("shape", "data shape: too many classes for the browser trainer");
  return {
    features: Float64Array.from(features),
    labels: Int32Array.from(labels, Number),
    count: labels.length,
    featureCount: width - 1,
    classCount: Number(classes),
  };
}
