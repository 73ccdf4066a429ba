"""Scaling laws: one schema for published and fitted laws, and the pure functions that use them.

Two kinds share one interface:
- a *loss law* L(N, D) (Chinchilla form, Kaplan joint form) from which the compute-optimal
  allocation follows (in closed form for the Chinchilla form);
- an *allocation law* N_opt(C) (or D_opt(C), or DeepSeek's FLOPs per token M_opt(C)) that says how
  to split compute but may not predict loss.
Every allocation here is a straight line in log-log space, log N_opt = intercept + slope·log C, with
D = C / (6N): that is what lets `plan`, `sweep` and `grant` invert and vectorise it the same way.
All compute inside a law uses the law's own convention, C = 6·N·D.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from planner.catalog.schema import Entry, Sourced, Strict
from planner.errors import PlannerError, PlannerWarning
from planner.laws import chinchilla_math

LN6 = math.log(6.0)
# Loss exponents a law may have: published fits lie between 0.05 (Kaplan et al. 2020: alpha_N 0.076,
# alpha_D 0.095) and 0.6 (Hoffmann et al. 2022 Approach 3 and its refits: 0.28-0.37); a fit far outside
# this is a failed fit, and at 1e-300 or 1e300 the allocation's arithmetic leaves float range.
EXPONENTS = (0.01, 2.0)
MAX_LOSS = 100.0  # nats per token: far above any language model's loss, far below where float arithmetic fails
PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day (Kaplan et al. 2020 use PF-days)


class ChinchillaLoss(Strict):
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, Eq. 2)."""

    form: Literal["chinchilla"]
    E: Sourced
    A: Sourced
    B: Sourced
    alpha: Sourced
    beta: Sourced

    def coefficients(self) -> dict[str, float]:
        return {k: getattr(self, k).value for k in chinchilla_math.COEFFICIENTS}

    def __call__(self, n, d):
        return chinchilla_math.loss(self.coefficients(), n, d)


class KaplanLoss(Strict):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, Eq. 1.5)."""

    form: Literal["kaplan"]
    N_c: Sourced
    D_c: Sourced
    alpha_N: Sourced
    alpha_D: Sourced

    def __call__(self, n, d):
        a_n, a_d = self.alpha_N.value, self.alpha_D.value
        with np.errstate(over="ignore", under="ignore", divide="ignore"):  # inf beyond float range: callers refuse it
            return np.power(np.power(self.N_c.value / n, a_n / a_d) + self.D_c.value / d, a_d)


class PowerAllocation(Strict):
    """quantity = coefficient · (C / compute_unit_flops)^exponent."""

    form: Literal["power"]
    quantity: Literal["params", "tokens", "flops_per_token"]
    coefficient: Sourced
    exponent: Sourced
    compute_unit_flops: float = Field(1.0, gt=0, description="1 for FLOPs, 8.64e19 for PF-days")

    def log_params_line(self) -> tuple[float, float]:
        """(intercept, slope) of ln N_opt against ln C."""
        k, e, u = math.log(self.coefficient.value), self.exponent.value, math.log(self.compute_unit_flops)
        if self.quantity == "params":  # N = k (C/u)^e
            return k - e * u, e
        if self.quantity == "tokens":  # D = k (C/u)^e, N = C / (6 D)
            return -LN6 - k + e * u, 1.0 - e
        return k - e * u - LN6, e  # M = k (C/u)^e FLOPs per token = 6N (DeepSeek; attention folded into N)


class DataConstrained(Strict):
    """Muennighoff et al. 2023: repeated tokens and excess parameters decay in value."""

    R_N_star: Sourced
    R_D_star: Sourced


def law_draw_intervals(law: Law, params: float, tokens: float, flops_6nd: float, size_fixed: bool,
                       throughput_errors, level: float) -> dict:
    """The central `level` intervals a fitted law's bootstrap draws give: on the loss of a run of fixed
    size, or on the parameters, tokens and loss a compute budget buys (crossed with the throughput
    errors when hours fix the budget: the hours buy C / (reported/estimated) each). Empty without draws."""
    draws = law.bootstrap_draws()
    if draws is None:
        return {}
    tail = (1.0 - level) / 2.0
    qs = (tail, 1.0 - tail)
    out: dict = {}
    with np.errstate(over="ignore", under="ignore"):
        if size_fixed:
            losses = draws_loss(draws, params, tokens)
        else:
            compute = np.atleast_1d(flops_6nd)
            if throughput_errors:
                compute = compute * np.exp(-np.asarray(throughput_errors))
            columns = {k: v[:, None] for k, v in draws.items()}
            ns, ds = draws_allocate(columns, compute[None, :])
            losses = draws_loss(columns, ns, ds)
            out["params_interval"] = [float(x) for x in np.quantile(ns, qs)]
            out["tokens_interval"] = [float(x) for x in np.quantile(ds, qs)]
    out["predicted_loss_interval"] = [float(x) for x in np.quantile(losses, qs)]
    out["law_interval_basis"] = (f"{len(draws['E'])} bootstrap refits of law '{law.name}'"
                                 + (" crossed with the throughput errors" if throughput_errors is not None else ""))
    return out


def draws_allocate(draws: dict[str, np.ndarray], flops):
    """Compute-optimal (N, D) of every bootstrap draw at law compute `flops` (Hoffmann Eq. 4),
    broadcast over draws × compute."""
    return chinchilla_math.allocate(draws, flops)


def draws_loss(draws: dict[str, np.ndarray], params, tokens):
    return chinchilla_math.loss(draws, params, tokens)


class FitRange(Strict):
    flops: tuple[float, float]
    source: str
    note: str | None = None


def _exp(x):
    """exp that gives inf beyond float range without a warning: callers refuse non-finite answers."""
    with np.errstate(over="ignore"):
        return np.exp(x)


def decayed(unique, total, r_star):
    """What `total` tokens (or parameters) over `unique` ones are worth (Muennighoff et al. 2023, Eq. 5-6):
    U + U·R*·(1 − e^(−R/R*)) with R = total/U − 1 repetitions beyond the first."""
    return unique + unique * r_star * (1.0 - np.exp(-(total / unique - 1.0) / r_star))


DRAWN = ("E", "A", "B", "alpha", "beta")


def _read_draws(draws: dict) -> tuple[dict[str, np.ndarray], str | None]:
    """A law file's bootstrap draws as arrays, and what is wrong with them ("key.path: message"), if anything."""
    out: dict[str, np.ndarray] = {}
    for key in DRAWN:
        try:
            out[key] = np.asarray(draws[key], dtype=float)
        except KeyError:
            return out, f"fitted.bootstrap_draws.{key}: required: lists of numbers {', '.join(DRAWN)}"
        except (TypeError, ValueError):
            return out, f"fitted.bootstrap_draws.{key}: must be a list of numbers"
        if out[key].ndim != 1 or out[key].size < 10 or not np.isfinite(out[key]).all():
            return out, f"fitted.bootstrap_draws.{key}: must be at least 10 finite draws"
        if key != "E" and (out[key] <= 0).any():
            return out, f"fitted.bootstrap_draws.{key}.{int(np.argmax(out[key] <= 0))}: must be positive"
    if len({v.size for v in out.values()}) != 1:
        return out, "fitted.bootstrap_draws: E, A, B, alpha and beta need the same number of draws"
    return out, None


class Law(Entry):
    citation: str = Field(description="the paper, for tables and proposals")
    params_counted: Literal["total", "non-embedding"] = "total"
    loss: Annotated[ChinchillaLoss | KaplanLoss, Field(discriminator="form")] | None = None
    allocation: PowerAllocation | None = Field(None, description="None: allocation follows from the loss")
    data_constrained: DataConstrained | None = None
    fit_range: FitRange | None = None
    fitted: dict | None = Field(None, description="for laws written by `planner fit`: data span, intervals")

    @model_validator(mode="after")
    def _consistent(self) -> Law:
        if self.allocation is None and not isinstance(self.loss, ChinchillaLoss):
            raise ValueError("a law without `allocation` needs a chinchilla-form `loss` to derive it from")
        positive = {"loss": ("A", "B", "N_c", "D_c"), "allocation": ("coefficient",),
                    "data_constrained": ("R_N_star", "R_D_star")}
        for part, keys in positive.items():  # each is a scale of a power law: zero divides
            for key in keys:
                item = getattr(getattr(self, part), key, None)
                if item is not None and item.value <= 0:
                    raise ValueError(f"{part}.{key}: must be positive")
        for key in ("alpha", "beta", "alpha_N", "alpha_D"):
            item = getattr(self.loss, key, None)
            if item is not None and not EXPONENTS[0] <= item.value <= EXPONENTS[1]:
                raise ValueError(f"loss.{key}: {item.value:.4g} is not a scaling exponent (published fits lie between "
                                 f"0.05 and 0.6; accepted: {EXPONENTS[0]:g} to {EXPONENTS[1]:g})")
        if isinstance(self.loss, ChinchillaLoss) and not 0 <= self.loss.E.value <= MAX_LOSS:
            raise ValueError(f"loss.E: {self.loss.E.value:.4g} nats per token is no irreducible loss (a cross-entropy is "
                             f"at least 0, and a uniform guess over a million-token vocabulary is 13.8; accepted: 0 to {MAX_LOSS:g})")
        if self.data_constrained is not None and not isinstance(self.loss, ChinchillaLoss):
            raise ValueError("data_constrained needs a chinchilla-form loss")
        if self.fit_range:
            if self.fit_range.source not in self.sources:
                raise ValueError(f"fit_range.source: '{self.fit_range.source}' is not a key of `sources`")
            lo, hi = self.fit_range.flops
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ValueError(f"fit_range.flops: [{lo:g}, {hi:g}] is not a range of compute (0 < low ≤ high)")
        if isinstance(self.loss, ChinchillaLoss) and isinstance((self.fitted or {}).get("bootstrap_draws"), dict):
            _, problem = _read_draws((self.fitted or {})["bootstrap_draws"])
            if problem:  # at load time, so the error names the file and the line of the bad draws
                raise ValueError(problem)
        self._check_allocation()
        return self

    def _check_allocation(self) -> None:
        """Refuse coefficients whose compute-optimal allocation floats cannot hold (`alpha: 1e-300` or
        `A: 1e308` overflow G, Hoffmann Eq. 4) or that do not grow both N and D with compute."""
        where = "allocation.exponent" if self.allocation is not None else "loss"
        try:
            with np.errstate(over="raise", divide="raise", under="ignore", invalid="raise"):
                intercept, slope = self.log_params_line()
        except (OverflowError, ZeroDivisionError, ValueError, FloatingPointError):
            intercept, slope = math.nan, math.nan
        if not (math.isfinite(intercept) and math.isfinite(slope)):
            raise ValueError(f"{where}: the compute-optimal size N_opt(C) these coefficients give is beyond the range "
                             "of numbers; check them")
        if not 0 < slope < 1:  # N_opt ∝ C^slope and D_opt ∝ C^(1 - slope)
            raise ValueError(f"{where}: N_opt grows as C^{slope:.4g} and D_opt as C^{1 - slope:.4g}; a compute-optimal "
                             "allocation grows both (each exponent between 0 and 1)")

    # --- what the law can do ----------------------------------------------------------------

    @property
    def predicts_loss(self) -> bool:
        return self.loss is not None

    @property
    def form(self) -> str:
        if self.allocation is None:
            return "L(N,D) = E + A/N^alpha + B/D^beta; allocation in closed form (Hoffmann Eq. 4)"
        a = self.allocation
        what = {"params": "N_opt", "tokens": "D_opt", "flops_per_token": "M_opt (FLOPs/token)"}[a.quantity]
        unit = "C" if a.compute_unit_flops == 1 else f"(C/{a.compute_unit_flops:g})"
        return f"{what} = {a.coefficient.value:g}·{unit}^{a.exponent.value:g}; D = C/(6N)"

    def closed_form(self) -> tuple[float, float, float]:
        """(G, a, b) with N_opt = G (C/6)^a, D_opt = (C/6)^b / G (Hoffmann Eq. 4)."""
        if not isinstance(self.loss, ChinchillaLoss):
            raise PlannerError(f"law '{self.name}' has no Chinchilla-form loss")
        return chinchilla_math.closed_form(self.loss.coefficients())

    def bootstrap_draws(self) -> dict[str, np.ndarray] | None:
        """E, A, B, alpha, beta of each bootstrap refit, when a fitted law file keeps them."""
        draws = (self.fitted or {}).get("bootstrap_draws")
        if not isinstance(self.loss, ChinchillaLoss) or not isinstance(draws, dict):
            return None
        out, problem = _read_draws(draws)
        if problem:
            raise PlannerError(f"law '{self.name}': {problem}")
        return out

    def log_params_line(self) -> tuple[float, float]:
        if self.allocation is not None:
            return self.allocation.log_params_line()
        g, a, _ = self.closed_form()
        return math.log(g) - a * LN6, a

    def optimal_params(self, flops):
        intercept, slope = self.log_params_line()
        return _exp(intercept + slope * np.log(flops))

    def allocate(self, flops):
        """Compute-optimal (N, D) for compute C under C = 6ND. Vectorised over C."""
        flops = np.asarray(flops, dtype=float)
        n = self.optimal_params(flops)
        with np.errstate(over="ignore", divide="ignore"):  # D beyond float range is inf; plans refuse it
            return n, flops / (6.0 * n)

    def flops_for_params(self, params):
        """The compute for which `params` is compute-optimal (inverse of the allocation)."""
        intercept, slope = self.log_params_line()
        return _exp((np.log(params) - intercept) / slope)

    def flops_for_tokens(self, tokens):
        """The compute whose optimal token count is `tokens`: ln D = ln C - ln 6 - ln N_opt(C)."""
        intercept, slope = self.log_params_line()
        return _exp((np.log(tokens) + LN6 + intercept) / (1.0 - slope))

    def predict_loss(self, params, tokens, unique_tokens: float | None = None):
        if self.loss is None:
            return None
        if unique_tokens is None:
            return self.loss(params, tokens)
        n_eff, d_eff = self.effective(params, tokens, unique_tokens)
        return self.loss(n_eff, d_eff)

    def frontier_loss(self, flops):
        """Loss of the compute-optimal model at C (None when the law predicts no loss)."""
        if self.loss is None:
            return None
        n, d = self.allocate(flops)
        return self.loss(n, d)

    def flops_for_loss(self, target: float) -> float:
        """Smallest compute whose compute-optimal model reaches `target` loss."""
        if self.loss is None:
            raise PlannerError(f"law '{self.name}' does not predict loss; choose one that does", "target_loss")
        if isinstance(self.loss, ChinchillaLoss) and self.allocation is None:
            # On the frontier L*(C) - E = K (C/6)^-gamma with gamma = alpha·beta/(alpha+beta).
            lo = self.loss
            e_ = lo.E.value
            if target <= e_:
                raise PlannerError(f"{target:g} is at or below the law's irreducible loss E = {e_:.4g}", "target_loss")
            g, a, _ = self.closed_form()
            try:
                k = lo.A.value * g ** -lo.alpha.value + lo.B.value * g**lo.beta.value
                flops = 6.0 * ((target - e_) / k) ** (-1.0 / (lo.alpha.value * a))
            except (OverflowError, ZeroDivisionError):  # coefficients at the ends of float range
                flops = math.inf
            if not (math.isfinite(flops) and flops >= 1.0):  # a loss every model beats, or beyond float range
                raise PlannerError(f"{target:g} needs {flops:.3g} FLOPs under law '{self.name}': "
                                   "outside the range of any training run", "target_loss")
            return flops
        return self._invert_frontier(target)

    def _invert_frontier(self, target: float) -> float:
        lo, hi = 1e6, 1e40
        f_lo, f_hi = float(self.frontier_loss(lo)), float(self.frontier_loss(hi))
        if not (f_hi < target < f_lo):
            raise PlannerError(f"{target:g} is outside what law '{self.name}' reaches ({f_hi:.4g} to {f_lo:.4g})", "target_loss")
        a, b = math.log(lo), math.log(hi)
        for _ in range(200):  # bisection in log C: the frontier loss falls monotonically with C
            mid = 0.5 * (a + b)
            if float(self.frontier_loss(math.exp(mid))) > target:
                a = mid
            else:
                b = mid
        return math.exp(0.5 * (a + b))

    # --- data-constrained (Muennighoff et al. 2023, Eq. 5-6) ----------------------------------

    def effective(self, params, tokens, unique_tokens: float):
        """(N', D'): repeated epochs and parameters beyond the optimum for U_D are worth less."""
        if self.data_constrained is None:
            raise PlannerError(
                f"law '{self.name}' has no data-constrained terms; choose one that has (e.g. muennighoff-2023)", "unique_tokens"
            )
        r_n_star, r_d_star = self.data_constrained.R_N_star.value, self.data_constrained.R_D_star.value
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # inf and nan: the plan refuses them
            return self._effective(params, tokens, unique_tokens, r_n_star, r_d_star)

    def _effective(self, params, tokens, unique_tokens: float, r_n_star: float, r_d_star: float):
        params, tokens = np.asarray(params, float), np.asarray(tokens, float)
        u_d = np.minimum(unique_tokens, tokens)
        u_n = np.minimum(self.optimal_params(self.flops_for_tokens(u_d)), params)
        return decayed(u_n, params, r_n_star), decayed(u_d, tokens, r_d_star)

    def extrapolation(self, flops: float) -> PlannerWarning | None:
        """A warning when C lies more than 10x outside the compute the law was fitted on."""
        if self.fit_range is None:
            return None
        if not flops > 0:
            return PlannerWarning("law.range", f"{flops:.3g} FLOPs is not a compute budget")
        lo, hi = self.fit_range.flops
        if flops > 10 * hi:
            return PlannerWarning("law.range", f"{flops:.3g} FLOPs is {flops / hi:.3g}x beyond the largest compute law "
                                  f"'{self.name}' was fitted on ({hi:.3g})")
        if flops < lo / 10:
            return PlannerWarning("law.range", f"{flops:.3g} FLOPs is {lo / flops:.3g}x below the smallest compute law "
                                  f"'{self.name}' was fitted on ({lo:.3g})")
        return None
