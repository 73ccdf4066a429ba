"""The Chinchilla form's math, once: L(N, D) = E + A/N^alpha + B/D^beta and its compute-optimal
allocation under C = 6ND (Hoffmann et al. 2022, Eq. 2 and Eq. 4).

    G = (alpha·A / (beta·B))^(1/(alpha+beta)),  N_opt = G·(C/6)^a,  D_opt = C/(6·N_opt)
    a = beta/(alpha+beta),  b = alpha/(alpha+beta)

Coefficients come as a mapping with keys E, A, B, alpha, beta whose values are numbers or arrays:
an array per key is a set of draws (bootstrap refits), and everything broadcasts, so one call
serves a published law, a fitted law and thousands of draws against a grid of compute. Laws
(`planner.laws`) and fits (`planner.fit`) both compute through here, so they agree to the bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

COEFFICIENTS = ("E", "A", "B", "alpha", "beta")


def closed_form(p: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(G, a, b) with N_opt = G (C/6)^a and D_opt = (C/6)^b / G (Hoffmann Eq. 4); uses A, B, alpha, beta."""
    al, be = p["alpha"], p["beta"]
    g = (al * p["A"] / (be * p["B"])) ** (1.0 / (al + be))
    return g, be / (al + be), al / (al + be)


def allocate(p: Mapping[str, Any], flops) -> tuple[Any, Any]:
    """Compute-optimal (N, D) at compute `flops` (C = 6ND), broadcast over draws × compute."""
    g, a, _ = closed_form(p)
    c = np.asarray(flops, dtype=float)
    n = g * np.power(c / 6.0, a)
    return n, c / (6.0 * n)


def loss(p: Mapping[str, Any], params, tokens):
    """L(N, D) = E + A/N^alpha + B/D^beta (inf where it leaves float range: callers refuse non-finite answers)."""
    with np.errstate(over="ignore", divide="ignore"):
        return p["E"] + p["A"] / np.power(params, p["alpha"]) + p["B"] / np.power(tokens, p["beta"])


def frontier_loss(p: Mapping[str, Any], flops):
    """Loss of the compute-optimal model at compute `flops`: L(N_opt(C), D_opt(C))."""
    n, d = allocate(p, flops)
    return loss(p, n, d)
