#!/usr/bin/env python3
"""Writes Vectors/dp/dp_accounting_rdp.json: ε and the optimal order from Google's
`dp_accounting` (PyPI, 0.6.0) RdpAccountant for the Poisson-subsampled Gaussian over the
grid the accountant must match, and noise multipliers from its `calibrate_dp_mechanism`.

The Swift runner (`veil vectors verify`, the test suite) must agree to a relative 1e-6;
`check_vectors.py` recomputes every value with dp_accounting on each CI run.
Usage: generate_dp_accounting_table.py [OUTPUT]
"""

from __future__ import annotations

import itertools
import json
import logging
import pathlib
import sys

from importlib.metadata import version

from dp_accounting import dp_event, mechanism_calibration
from dp_accounting.rdp import rdp_privacy_accountant as rdp

# Orders whose series does not converge are excluded, and dp_accounting says so for each: quiet.
logging.getLogger("absl").setLevel(logging.ERROR)

SAMPLING_RATES = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]
NOISE_MULTIPLIERS = [0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0]
STEPS = [1, 10, 100, 1000, 10000]
DELTAS = [1e-5, 1e-6]
CALIBRATIONS = [  # (ε, δ, q, steps)
    (1.0, 1e-5, 0.01, 1000), (2.0, 1e-5, 0.01, 1000), (4.0, 1e-5, 0.05, 500), (8.0, 1e-6, 0.1, 100),
    (1.0, 1e-5, 1.0, 50), (4.0, 1e-5, 1.0, 50), (8.0, 1e-5, 1.0, 50), (0.5, 1e-6, 0.001, 10000),
]


def epsilon(q: float, sigma: float, steps: int, delta: float) -> tuple[float, float]:
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps)
    eps, order = accountant.get_epsilon_and_optimal_order(delta)
    return float(eps), float(order)


def calibrate(target: float, delta: float, q: float, steps: int) -> float:
    return float(mechanism_calibration.calibrate_dp_mechanism(
        rdp.RdpAccountant,
        lambda sigma: dp_event.SelfComposedDpEvent(
            dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps),
        target, delta))


def table() -> dict:
    groups = []
    for delta in DELTAS:
        tests = []
        for q, sigma, steps in itertools.product(SAMPLING_RATES, NOISE_MULTIPLIERS, STEPS):
            eps, order = epsilon(q, sigma, steps, delta)
            tests.append({"comment": f"q {q}, sigma {sigma}, {steps} steps", "flags": ["Normal"],
                          "result": "valid", "operation": "epsilon", "samplingRate": q,
                          "noiseMultiplier": sigma, "steps": steps, "epsilon": eps, "order": order})
        for target, d, q, steps in CALIBRATIONS:
            if d != delta:
                continue
            tests.append({"comment": f"calibrate to epsilon {target}, q {q}, {steps} steps", "flags": ["Calibration"],
                          "result": "valid", "operation": "calibrate", "samplingRate": q, "steps": steps,
                          "epsilon": target, "noiseMultiplier": calibrate(target, delta, q, steps)})
        groups.append({"delta": delta, "tests": tests})
    tc = 0
    for group in groups:
        for test in group["tests"]:
            tc += 1
            test["tcId"] = tc
            test.update({k: test.pop(k) for k in list(test) if k not in ("tcId",)})
    return {
        "algorithm": "DP-ACCOUNTING-RDP",
        "generatorVersion": f"dp_accounting {version('dp-accounting')}",
        "header": ["Poisson-subsampled Gaussian: epsilon and the optimal order from dp_accounting's RdpAccountant "
                   "(DEFAULT_RDP_ORDERS); calibrate: its calibrate_dp_mechanism (tolerance 1e-6)."],
        "notes": {"Normal": {"bugType": "FUNCTIONALITY",
                             "description": "epsilon must agree to a relative 1e-6, the order exactly"},
                  "Calibration": {"bugType": "FUNCTIONALITY",
                                  "description": "the noise multiplier must agree to 2e-6 and meet the target"}},
        "numberOfTests": tc,
        "testGroups": groups,
    }


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                       pathlib.Path(__file__).resolve().parents[2] / "Vectors" / "dp" / "dp_accounting_rdp.json")
    out.write_text(json.dumps(table(), indent=2) + "\n")
    print(f"wrote {out}")
