"""An independent implementation of Veil's secure-aggregation parameter rules, written from
Specs/secagg.md §2 alone: the corrupt count n_C, the threshold floor, rules 1–4 and the
recommended (k, t). Fractions are exact (fractions.Fraction of the decimal as written); the
probabilities are the same hypergeometric and union bounds the specification states.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from veil_reference import Refused


def decimal(value: float) -> Fraction:
    # repr() is the shortest decimal that round-trips the double: 0.29 → "0.29" → 29/100.
    return Fraction(repr(float(value)))


def log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def pmf(population: int, marked: int, draws: int, x: int) -> float:
    if x < 0 or x > marked or draws - x < 0 or draws - x > population - marked:
        return 0.0
    return math.exp(log_choose(marked, x) + log_choose(population - marked, draws - x) - log_choose(population, draws))


def upper_tail(population: int, marked: int, draws: int, at_least: int) -> float:
    top = min(marked, draws)
    if at_least > top:
        return 0.0
    total = 0.0
    for x in range(max(at_least, 0), top + 1):
        total += pmf(population, marked, draws, x)
    return total


def lower_tail(population: int, marked: int, draws: int, below: int) -> float:
    bottom = max(0, draws - (population - marked))
    if below <= bottom:
        return 0.0
    total = 0.0
    for x in range(bottom, min(below, min(marked, draws) + 1)):
        total += pmf(population, marked, draws, x)
    return total


class Model:
    def __init__(self, group: dict):
        # secagg.md §2: γ, δ in [0, 1) with γ + δ < 1 (as doubles), each written with at most 18
        # decimal places; 1 ≤ σ ≤ 128; a population, when given, of at least 2.
        gamma, delta, sigma = group["corruptFraction"], group["dropoutFraction"], group["securityBits"]
        if not (0 <= gamma < 1 and 0 <= delta < 1 and gamma + delta < 1) or not 1 <= sigma <= 128:
            raise Refused("invalidThreatModel")
        if any(-Decimal(repr(float(f))).normalize().as_tuple().exponent > 18 for f in (gamma, delta)):
            raise Refused("invalidThreatModel")
        if group.get("population") is not None and group["population"] < 2:
            raise Refused("invalidThreatModel")
        self.malicious = {"honest-but-curious": False, "malicious": True}[group["adversary"]]
        self.gamma = decimal(group["corruptFraction"])
        self.delta = decimal(group["dropoutFraction"])
        self.gamma_float = float(group["corruptFraction"])
        self.delta_float = float(group["dropoutFraction"])
        self.sigma = group["securityBits"]
        self.population = group.get("population")

    def corrupt_count(self, n: int) -> int:
        if self.population is None or n >= self.population:
            return max(1, math.ceil(self.gamma * n))
        # The smallest c with P[Hyp(N, ⌈γN⌉, n) > c] ≤ 2^-σ, the tail summed from the top.
        marked = math.ceil(self.gamma * self.population)
        bound, tail, c = 2.0 ** -self.sigma, 0.0, min(marked, n)
        while c > 0:
            following = tail + pmf(self.population, marked, n, c)
            if following > bound:
                break
            tail, c = following, c - 1
        return max(1, c)

    def dropout_count(self, n: int) -> int:
        return math.floor(self.delta * n)

    def minimum_threshold(self, n: int, k: int):
        """The smallest t the rules allow, or a refusal code."""
        corrupt = self.corrupt_count(n)
        if self.malicious:
            if k != n - 1:
                return "maliciousRequiresCompleteGraph"
            return (n + corrupt) // 2 + 1                       # rule 4
        if k == n - 1:
            return corrupt + 1                                  # rule 1
        bound = 2.0 ** -self.sigma / n                          # rule 2
        t = 2
        while t <= k + 1 and upper_tail(n - 1, corrupt, k, t) > bound:
            t += 1
        return t

    def disconnection(self, n: int, k: int) -> float:         # rule 3
        return n * (self.gamma_float + self.delta_float) ** (k // 2)

    def validate(self, n: int, t: int, k: int) -> None:
        if not 2 <= n <= 1 << 20:
            raise Refused("clientCountOutOfRange")
        if not 1 <= k <= n - 1:
            raise Refused("neighborCountOutOfRange")
        if not (k == n - 1 or k % 2 == 0 or n % 2 == 0):
            raise Refused("hararyGraphUndefined")
        if not 2 <= t <= k + 1:
            raise Refused("thresholdOutOfRange")
        minimum = self.minimum_threshold(n, k)
        if isinstance(minimum, str):
            raise Refused(minimum)
        if t < minimum:
            raise Refused("thresholdTooLow")
        if k < n - 1 and self.disconnection(n, k) > 2.0 ** -self.sigma:
            raise Refused("graphTooSparse")

    def abort_bound(self, n: int, k: int, t: int) -> float:
        dropped = self.dropout_count(n)
        if dropped == 0:
            return 0.0
        return min(1.0, n * lower_tail(n - 1, n - 1 - dropped, k, t))

    def recommend(self, n: int) -> tuple[int, int]:
        candidates = [n - 1] if self.malicious else list(range(2, n - 1, 2)) + [n - 1]
        for k in candidates:
            if k < n - 1 and self.disconnection(n, k) > 2.0 ** -self.sigma:
                continue
            t = self.minimum_threshold(n, k)
            if isinstance(t, str) or t > k + 1:
                continue
            self.validate(n, t, k)
            if self.abort_bound(n, k, t) <= 2.0 ** -20:
                return k, t
        raise Refused("noParametersMeet")


def check(group: dict, test: dict, expect) -> None:
    model = Model(group)
    expect(model.corrupt_count(test["clients"]), test["corruptCount"], "corruptCount")
    if test["kind"] == "validate":
        model.validate(test["clients"], test["threshold"], test["neighbors"])
        # With a dimension, the case is a session's parameters (b = 32): d ≥ 1 after rules 1–4.
        if test.get("dimension") is not None and test["dimension"] < 1:
            raise Refused("dimensionOutOfRange")
    elif test["kind"] == "recommend":
        k, t = model.recommend(test["clients"])
        expect(k, test["neighbors"], "neighbors")
        expect(t, test["threshold"], "threshold")
    else:
        raise AssertionError(f"unknown kind {test['kind']}")
