"""An independent implementation of Veil's privacy layer, written from Specs/privacy.md.

- The distributed mechanisms' RDP (the distributed discrete Gaussian of Kairouz, Liu, Steinke
  2021, Proposition 14; Skellam of Agarwal, Kairouz, Liu 2021, Theorem 3.5), amplified by
  Poisson subsampling with Zhu and Wang's Theorem 9, composed, and converted to (ε, δ) — in
  plain Python floats and scipy's logsumexp/gammaln, following Google's published
  `distributed_dp/accounting_utils.py` formulas rather than Veil's code.
- The exact samplers of Canonne, Kamath, Steinke (2020) on Python's unbounded integers, drawing
  64-bit words from the ChaCha20 generator of veil_reference.py exactly as section 3 says.
- The randomised Hadamard rotation, conditional rounding and a participant's encoded share.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import special

import veil_reference as ref

DEFAULT_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]


# --- section 5: accounting -------------------------------------------------------------------

def _log_comb(n, k):
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def ddg_sum_inflation(local_variance: float, n: int) -> float:
    return 10 * sum(math.exp(-2 * math.pi ** 2 * local_variance * k / (k + 1)) for k in range(1, n))


def distributed_rdp(noise: str, local_variance: float, n: int, dim: int, l2: float, l1: float, order: int) -> float:
    a, mu = float(order), n * local_variance
    if noise == "ddg":
        tau = ddg_sum_inflation(local_variance, n)
        a2, a1 = l2 / math.sqrt(mu), l1 / math.sqrt(mu)
        return min(a / 2 * a2 ** 2 + tau * dim,
                   a / 2 * (a2 ** 2 + 2 * a1 * tau + tau ** 2 * dim),
                   a / 2 * (a2 + math.sqrt(dim) * tau) ** 2)
    return a / (2 * mu) * l2 ** 2 + min(((2 * a - 1) * l2 ** 2 + 6 * l1) / (4 * mu ** 2), 3 * l1 / (2 * mu))


def subsampled_rdp(order: int, gamma: float, eps) -> float:
    """Zhu and Wang, Theorem 9, as accounting_utils._compute_rdp_subsampled (upper bound)."""
    if gamma == 1:
        return eps(order)
    alpha = order
    a = [0, eps(2)]
    b = [((1 - gamma) ** (alpha - 1)) * (alpha * gamma - gamma + 1),
         special.comb(alpha, 2) * gamma ** 2 * (1 - gamma) ** (alpha - 2)]
    for l in range(3, alpha + 1):
        a.append((l - 1) * eps(l) + _log_comb(alpha, l) + (alpha - l) * np.log(1 - gamma) + l * np.log(gamma))
        b.append(3)
    return min(float(special.logsumexp(a=a, b=b)) / (alpha - 1), eps(order))


def convert(orders, rdp, delta):
    """Proposition 12 of Canonne, Kamath, Steinke (2020), as in section 5.3."""
    best = None
    for a, r in zip(orders, rdp):
        if r < 0 or delta ** 2 + math.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + math.log1p(-1 / a) - math.log(delta * a) / (a - 1)
        else:
            e = math.inf
        if best is None or e < best[0]:
            best = (e, a)
    return max(0.0, best[0]), best[1]


def distributed_epsilon(noise, local_variance, n, dim, l2, l1, q, steps, delta, orders=DEFAULT_ORDERS):
    cache = {}

    def eps(l):
        if l not in cache:
            cache[l] = distributed_rdp(noise, local_variance, n, dim, l2, l1, l)
        return cache[l]

    rdp = [steps * subsampled_rdp(max(2, math.ceil(a)), q, eps) for a in orders]
    return convert(orders, rdp, delta)


def rounded_l2_norm_bound(c: float, beta: float, dim: int) -> float:
    first = c + math.sqrt(dim)
    if beta == 0:
        return first
    return min(first, math.sqrt(c ** 2 + 0.25 * dim + math.sqrt(2 * math.log(1 / beta)) * (c + 0.5 * math.sqrt(dim))))


def heuristic_scale(sigma: float, bits: int, n: int, dim: int, k: float) -> float:
    return math.sqrt(2.0 ** (2 * bits) - n * k ** 2) / (2 * k * math.sqrt(n ** 2 / dim + n * sigma ** 2))


# --- section 3: samplers ---------------------------------------------------------------------

class Bits:
    """Uniform integers and Bernoulli trials from the generator's 64-bit words (section 3.1)."""

    def __init__(self, generator: ref.Generator):
        self.g = generator

    def below(self, bound: int) -> int:
        if bound <= 1 << 64:
            limit = (1 << 64) - ((1 << 64) % bound)
            while True:
                w = self.g.next()
                if w < limit:
                    return w % bound
        limit = (1 << 128) - ((1 << 128) % bound)
        while True:
            w = (self.g.next() << 64) | self.g.next()
            if w < limit:
                return w % bound

    # Parameters are (numerator, denominator) pairs, never reduced: the denominator decides
    # how many words a trial consumes (section 3.1).
    def bernoulli(self, p: int, q: int) -> bool:
        return self.below(q) < p

    def bernoulli_exp_unit(self, p: int, q: int) -> bool:
        k = 1
        while self.bernoulli(p, q * k):
            k += 1
        return k % 2 == 1

    def bernoulli_exp(self, p: int, q: int) -> bool:
        for _ in range(p // q):
            if not self.bernoulli_exp_unit(1, 1):
                return False
        return self.bernoulli_exp_unit(p % q, q)


def discrete_gaussian_variance(variance: float) -> tuple[int, int]:
    """σ² rounded up to n/2^k, the largest k ≤ 32 with n ≤ 2^52 (section 3.2): (n, k)."""
    exact = Fraction(variance)
    for k in range(32, -1, -1):
        n = math.ceil(exact * 2 ** k)
        if n <= 2 ** 52:
            return n, k
    raise ValueError("variance out of range")


def discrete_laplace(bits: Bits, t: int) -> int:
    while True:
        u = bits.below(t)
        if not bits.bernoulli_exp(u, t):
            continue
        v = 0
        while bits.bernoulli_exp_unit(1, 1):
            v += 1
        x = u + t * v
        negative = bits.bernoulli(1, 2)
        if negative and x == 0:
            continue
        return -x if negative else x


def discrete_gaussian(bits: Bits, n: int, k: int) -> int:
    d = 1 << k
    t = math.isqrt(n // d) + 1  # ⌊σ⌋ + 1, since ⌊√⌊x⌋⌋ = ⌊√x⌋
    while True:
        y = discrete_laplace(bits, t)
        if bits.bernoulli_exp((abs(y) * t * d - n) ** 2, 2 * n * d * t * t):
            return y


def unit(g: ref.Generator) -> float:
    return (g.next() >> 11) * 2.0 ** -53


def poisson(g: ref.Generator, lam: float) -> int:
    if lam == 0:
        return 0
    if lam < 10:
        threshold, count, product = math.exp(-lam), 0, 1.0
        while True:
            product *= unit(g)
            if product > threshold:
                count += 1
            else:
                return count
    root, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * root
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = unit(g) - 0.5
        v = unit(g)
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1):
            return k


def skellam(g: ref.Generator, variance: float) -> int:
    return poisson(g, variance / 2) - poisson(g, variance / 2)


# --- section 4: rotation and rounding --------------------------------------------------------

def rotation_signs(g: ref.Generator, dim: int) -> list[bool]:
    m = 1
    while m < dim:
        m <<= 1
    signs = []
    while len(signs) < m:
        w = g.next()
        signs.extend(bool(w >> bit & 1) for bit in range(64))
    return signs[:m]


def walsh_hadamard(v: list[float]) -> list[float]:
    v = list(v)
    half = 1
    while half < len(v):
        for start in range(0, len(v), 2 * half):
            for i in range(start, start + half):
                a, b = v[i], v[i + half]
                v[i], v[i + half] = a + b, a - b
        half <<= 1
    norm = 1 / math.sqrt(len(v))
    return [x * norm for x in v]


def rotate(signs: list[bool], x: list[float]) -> list[float]:
    y = list(x) + [0.0] * (len(signs) - len(x))
    return walsh_hadamard([-v if s else v for v, s in zip(y, signs)])


def unrotate(signs: list[bool], y: list[float], dim: int) -> list[float]:
    x = walsh_hadamard(y)
    return [-v if s else v for v, s in zip(x, signs)][:dim]


def encode_share(x, bound, unit_scale, sigma, noise, bits, n_min, beta, signs, rounding, noise_gen):
    """A participant's share (section 4.5): rotate, scale, round conditionally, add noise, reduce."""
    m = len(signs)
    s = unit_scale / bound
    scaled = [v * s for v in rotate(signs, x)]
    limit = rounded_l2_norm_bound(unit_scale, beta, m)
    for _ in range(1000):
        candidate = []
        for v in scaled:
            floor = math.floor(v)
            candidate.append(floor + (1 if unit(rounding) < v - floor else 0))
        if math.sqrt(sum(float(c) * float(c) for c in candidate)) <= limit:
            break
    else:
        raise ref.Refused("roundingFailed")
    variance = (unit_scale * sigma) ** 2
    if noise == "ddg":
        b = Bits(noise_gen)
        n, k = discrete_gaussian_variance(variance)
        shares = [discrete_gaussian(b, n, k) for _ in candidate]
    else:
        shares = [skellam(noise_gen, variance) for _ in candidate]
    return [(c + e) % (1 << bits) for c, e in zip(candidate, shares)]


# --- parameter rules (sections 4.4, 4.5, 5.4, 5.6), each refused with the code the spec names ---

def _finite(x: float) -> bool:
    return math.isfinite(x)


def check_accounting(test: dict) -> None:
    """Section 5.6, in its order: the event (rate, noise, participants, dimension, sensitivities),
    then the orders, the number of releases and delta."""
    def refuse():
        raise ref.Refused("invalidParameters")
    if not 0 <= test["samplingRate"] <= 1:
        refuse()
    if not (test["localVariance"] > 0 and _finite(test["localVariance"])):
        refuse()
    if test["participants"] < 1 or test["dimension"] < 1:
        refuse()
    for sensitivity in (test["l2Sensitivity"], test["l1Sensitivity"]):
        if not (sensitivity >= 0 and _finite(sensitivity)):
            refuse()
    orders = test.get("orders", DEFAULT_ORDERS)
    if not orders or not all(a > 1 and _finite(a) for a in orders):
        refuse()
    if test["steps"] < 0 or not 0 < test["delta"] < 1:
        refuse()


def check_mechanism(test: dict) -> None:
    """Section 4's rules for a distributed mechanism, in their order."""
    def refuse():
        raise ref.Refused("invalidParameters")
    if len(test["x"]) < 1 or test["minimumParticipants"] < 1 or not 0 <= test["beta"] < 1:
        refuse()
    scale, sigma = test["unitScale"], test["unitLocalStandardDeviation"]
    if not (scale > 0 and _finite(scale) and sigma > 0 and _finite(sigma)):
        refuse()
    if scale > 2.0 ** 62:
        refuse()
    if not 0 < (scale * sigma) ** 2 <= 2 ** 52:
        refuse()


def scale(test: dict) -> float:
    """Section 4.4: the heuristic scale s1, after its parameter rules."""
    sigma, bits, n, m, k = (test["unitLocalStandardDeviation"], test["bits"], test["participants"], test["dimension"],
                            test["kStddevs"])
    if not 1 <= bits <= 64 or n < 1 or m < 1 or not (k > 0 and _finite(k)) or not (sigma >= 0 and _finite(sigma)):
        raise ref.Refused("invalidParameters")
    if 2.0 ** (2 * bits) - n * k * k <= 0:
        raise ref.Refused("invalidParameters")
    return heuristic_scale(sigma, bits, n, m, k)


def round_rdp(noise: str, scale: float, sigma: float, n: int, beta: float, dim: int, q: float) -> list[float]:
    """One release of a mechanism (section 4's parameters, padded length of dim), Poisson-sampled
    at rate q, at every default order (section 5.3)."""
    m = 1
    while m < dim:
        m <<= 1
    variance = (scale * sigma) ** 2
    l2 = rounded_l2_norm_bound(scale, beta, m)
    l1 = l2 * min(math.sqrt(m), l2)
    cache = {}

    def eps(l):
        if l not in cache:
            cache[l] = distributed_rdp(noise, variance, n, m, l2, l1, l)
        return cache[l]

    return [subsampled_rdp(max(2, math.ceil(a)), q, eps) for a in DEFAULT_ORDERS]


def check_dominated(test: dict) -> None:
    """Section 4.7, checked from its inputs: the claimed mechanism's scale is section 4.4's for
    its sigma and padded length, one round of it costs no more than one of the reference at every
    order and rate, and a sigma 10^-5 smaller would cost more at some order (it is the least)."""
    k, rates = test["dimension"], test["samplingRates"]
    if k < 1 or not rates or not all(0 < r <= 1 for r in rates):
        raise ref.Refused("invalidParameters")
    noise, bits, n, beta = test["noise"], test["bits"], test["minimumParticipants"], test["beta"]
    m = 1
    while m < k:
        m <<= 1
    sigma, unit_scale = test["unitLocalStandardDeviation"], test["unitScale"]
    expected = heuristic_scale(sigma, bits, max(test["participants"], n), m, math.sqrt(2 * math.log(2 * m / 0.01)))
    if abs(expected - unit_scale) > 1e-9 * unit_scale:
        raise AssertionError(f"unitScale {unit_scale} is not section 4.4's {expected}")
    bounds = [round_rdp(noise, test["referenceUnitScale"], test["referenceUnitLocalStandardDeviation"], n, beta,
                        test["referenceDimension"], q) for q in rates]

    def excess(s: float) -> float:
        worst = 0.0
        for q, bound in zip(rates, bounds):
            for spent, allowed in zip(round_rdp(noise, unit_scale, s, n, beta, k, q), bound):
                if not math.isfinite(allowed):
                    continue
                worst = max(worst, spent / allowed if allowed > 0 else (math.inf if spent > 0 else 0.0))
        return worst

    if excess(sigma) > 1 + 1e-9:
        raise AssertionError(f"the mechanism costs {excess(sigma)} times the reference at some order")
    if excess(sigma * (1 - 1e-5)) <= 1:
        raise AssertionError("a smaller sigma would still be dominated: not the least")


def check_target(test: dict) -> None:
    """Section 5.4 (and 4.5): a calibration target and schedule."""
    epsilon, delta, q, steps = test["epsilon"], test["delta"], test["samplingRate"], test["steps"]
    if not (epsilon > 0 and _finite(epsilon)) or not 0 < delta < 1 or not 0 < q <= 1 or steps < 1:
        raise ref.Refused("invalidTarget")
    if test.get("noise") is not None:
        if test["participants"] < 1 or test["dimension"] < 1 or not 1 <= test["bits"] <= 64:
            raise ref.Refused("invalidParameters")
