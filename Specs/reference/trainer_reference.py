"""Veil's local trainer, recomputed independently (Specs/learning.md §2.1–§2.4): the deterministic
exp, xoshiro256** with SplitMix64 seeding and its unbiased integer draw, the CSV format, softmax
regression and ReLU MLPs, minibatch SGD with momentum and weight decay, FedProx's proximal term,
and the FedAvg family's client rule at weight 1. Plain Python floats are IEEE-754 binary64 and
every operation below is one correctly rounded +, −, ×, / (no fused multiply-add), in the order
the specification gives, so every value must equal the vector file's bit for bit.

Used by check_vectors.py for Vectors/trainer/veil_local_training.json (algorithm
VEIL-LOCAL-TRAINING).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct

MASK64 = (1 << 64) - 1


def bits(value: float) -> str:
    """The 16 lower-case hex digits of a double's bit pattern (big-endian)."""
    return struct.pack(">d", value).hex()


def from_bits(text: str) -> float:
    if not re.fullmatch(r"[0-9a-f]{16}", text):
        raise ValueError(f"not 16 lower-case hex digits: {text!r}")
    return struct.unpack(">d", bytes.fromhex(text))[0]


# --- the deterministic exp (learning.md §2.1) ------------------------------------------------

O_THRESHOLD = float.fromhex("0x1.62e42fefa39efp+9")
U_THRESHOLD = float.fromhex("-0x1.74910d52d3051p+9")
LN2_HI = float.fromhex("0x1.62e42feep-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
P1 = float.fromhex("0x1.555555555553ep-3")
P2 = float.fromhex("-0x1.6c16c16bebd93p-9")
P3 = float.fromhex("0x1.1566aaf25de2cp-14")
P4 = float.fromhex("-0x1.bbd41c5d26bf1p-20")
P5 = float.fromhex("0x1.6376972bea4d0p-25")


def power_of_two(n: int) -> float:
    """2^n for a normal exponent, exactly."""
    assert -1022 <= n <= 1023
    return struct.unpack(">d", ((n + 1023) << 52).to_bytes(8, "big"))[0]


def veil_exp(x: float) -> float:
    if x != x:
        return x
    if x > O_THRESHOLD:
        return math.inf
    if x < U_THRESHOLD:
        return 0.0
    k = math.floor(x * INV_LN2 + 0.5)
    kd = float(k)
    hi = x - kd * LN2_HI
    lo = kd * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    if k == 0:
        return y
    if k == 1024:
        return (y * 2.0) * power_of_two(1023)
    if k >= -1021:
        return y * power_of_two(k)
    return (y * power_of_two(k + 1000)) * power_of_two(-1000)


# --- xoshiro256** (learning.md §6, §2.3) ------------------------------------------------------

class Xoshiro256:
    def __init__(self, seed: int, stream: int):
        x = (seed ^ ((stream * 0xD1B54A32D192ED03) & MASK64)) & MASK64
        state = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            state.append(z ^ (z >> 31))
        self.s = state

    @staticmethod
    def _rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & MASK64

    def next(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, bound: int) -> int:
        reject_below = ((1 << 64) - bound) % bound
        while True:
            v = self.next()
            if v >= reject_below:
                return v % bound

    def shuffle(self, items: list) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def stream_for_id(participant_id: str) -> int:
    """The first 8 bytes of SHA-256(UTF-8 id), big-endian."""
    return int.from_bytes(hashlib.sha256(participant_id.encode()).digest()[:8], "big")


# --- models (learning.md §2.2) ----------------------------------------------------------------

def layer_sizes(spec: str, features: int, classes: int) -> list[int]:
    if spec == "softmax":
        return [features, classes]
    match = re.fullmatch(r"mlp:([1-9][0-9]*(?:,[1-9][0-9]*)*)", spec)
    if not match:
        raise ValueError(f"unknown model {spec!r}")
    return [features] + [int(w) for w in match.group(1).split(",")] + [classes]


def softmax_minus_onehot(z: list[float], label: int) -> None:
    top = z[0]
    for c in range(1, len(z)):
        if z[c] > top:
            top = z[c]
    total = 0.0
    for c in range(len(z)):
        z[c] = veil_exp(z[c] - top)
        total += z[c]
    for c in range(len(z)):
        z[c] /= total
    z[label] -= 1.0


def gradient(sizes, p, features, labels, rows, g):
    """The mean cross-entropy gradient over `rows`, written to g (dense layers, ReLU between)."""
    for i in range(len(g)):
        g[i] = 0.0
    layers = len(sizes)
    offsets, start = [], 0
    for l in range(layers - 1):
        offsets.append(start)
        start += sizes[l + 1] * (sizes[l] + 1)
    width = sizes[0]
    for row in rows:
        acts = [features[row * width:(row + 1) * width]]
        for l in range(layers - 1):
            inputs, outputs, o0 = sizes[l], sizes[l + 1], offsets[l]
            a, out = acts[l], []
            last = l == layers - 2
            for o in range(outputs):
                s = p[o0 + outputs * inputs + o]
                base = o0 + o * inputs
                for i in range(inputs):
                    s += p[base + i] * a[i]
                out.append(s if last else (s if s >= 0 else 0.0))
            acts.append(out)
        delta = acts[layers - 1]
        softmax_minus_onehot(delta, labels[row])
        for l in range(layers - 2, -1, -1):
            inputs, outputs, o0 = sizes[l], sizes[l + 1], offsets[l]
            a = acts[l]
            for o in range(outputs):
                d = delta[o]
                if d == 0:
                    continue
                base = o0 + o * inputs
                for i in range(inputs):
                    g[base + i] += d * a[i]
                g[o0 + outputs * inputs + o] += d
            if l > 0:
                below = []
                for i in range(inputs):
                    s = 0.0
                    if a[i] > 0:
                        for o in range(outputs):
                            s += p[o0 + o * inputs + i] * delta[o]
                    below.append(s)
                delta = below
    scale = 1.0 / float(len(rows))
    for i in range(len(g)):
        g[i] *= scale


def train(spec, features_count, classes, parameters, features, labels, plan, seed, stream):
    """The FedAvg family's client rule at weight 1: (w − w_global, examples)."""
    sizes = layer_sizes(spec, features_count, classes)
    count = len(labels)
    w = list(parameters)
    epochs, batch = plan["localEpochs"], plan["batchSize"]
    lr, momentum, decay, mu = plan["learningRate"], plan["momentum"], plan["weightDecay"], plan["proximalMu"]
    if count > 0 and epochs > 0 and batch > 0:
        rng = Xoshiro256(seed, stream)
        g = [0.0] * len(w)
        v = [0.0] * len(w)
        order = list(range(count))
        for _ in range(epochs):
            rng.shuffle(order)
            start = 0
            while start < count:
                end = min(start + batch, count)
                gradient(sizes, w, features, labels, order[start:end], g)
                if mu > 0:
                    for i in range(len(g)):
                        g[i] += mu * (w[i] - parameters[i])
                if momentum > 0:
                    for i in range(len(w)):
                        v[i] = momentum * v[i] + g[i] + decay * w[i]
                        w[i] -= lr * v[i]
                else:
                    for i in range(len(w)):
                        w[i] -= lr * (g[i] + decay * w[i])
                start = end
    weight = float(count) / float(max(count, 1))
    return [weight * (a - b) for a, b in zip(w, parameters)], count


# --- CSV (learning.md §4.1) -------------------------------------------------------------------

class CsvRefused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# Foundation's CharacterSet.whitespaces (Zs and tab) and .whitespacesAndNewlines (Z*, U+000A–U+000D, U+0085).
_ZS = "\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
WHITESPACE = _ZS + "\t"
WHITESPACE_NEWLINES = WHITESPACE + "\u2028\u2029\n\u000b\u000c\r\u0085"
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
HEX = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP]([+-]?[0-9]+))?")
INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_double(cell: str) -> float | None:
    """A finite double as Swift's Double(String) reads it (C strtod: decimal or hex), else None."""
    if DECIMAL.fullmatch(cell):
        value = float(cell)
    elif HEX.fullmatch(cell):
        sign, digits, exponent = HEX.fullmatch(cell).groups()
        whole, _, fraction = digits.partition(".")
        mantissa = int((whole + fraction) or "0", 16)
        e = int(exponent or "0") - 4 * len(fraction)
        if mantissa == 0 or e + mantissa.bit_length() < -1100:
            value = 0.0
        elif e + mantissa.bit_length() > 1100:
            value = math.inf
        elif e >= 0:
            try:
                value = float(mantissa << e)  # an exact integer, correctly rounded
            except OverflowError:
                value = math.inf
        else:
            value = mantissa / (1 << -e)  # Python's int / int is correctly rounded
        if sign == "-":
            value = -value
    else:
        return None
    return value if math.isfinite(value) else None


def parse_csv(text: str, class_count: int | None):
    """(features, labels, featureCount, classCount), or CsvRefused with the DataError's name."""
    features, raw_labels, width = [], [], None
    # Swift splits on the Character "\n"; "\r\n" is one Character, so it does not split there.
    for number, line in enumerate(re.split(r"(?<!\r)\n", text)):
        trimmed = line.strip(WHITESPACE_NEWLINES)
        if not trimmed:
            continue
        cells = [cell.strip(WHITESPACE) for cell in trimmed.split(",")]
        if width is not None and len(cells) != width:
            raise CsvRefused("raggedRow")
        if len(cells) < 2:
            raise CsvRefused("raggedRow")
        width = len(cells)
        for cell in cells[:-1]:
            value = parse_double(cell)
            if value is None:
                raise CsvRefused("notNumeric")
            features.append(value)
        raw_labels.append(cells[-1])
    if width is None:
        raise CsvRefused("empty")
    labels = []
    for text_label in raw_labels:
        if not INTEGER.fullmatch(text_label) or not 0 <= int(text_label) < (1 << 24):
            raise CsvRefused("unknownLabel")
        labels.append(int(text_label))
    classes = class_count if class_count is not None else max(2, max(labels) + 1)
    if any(label >= classes for label in labels):
        raise CsvRefused("unknownLabel")
    if classes < 2:
        raise CsvRefused("shape")
    return features, labels, width - 1, classes
