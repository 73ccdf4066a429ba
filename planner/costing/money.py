"""What a run costs in money where the resource is rented: GPU-hours × a price per GPU-hour.

The price is the cluster's (`accounting.price_per_gpu_hour` in the catalog, with its currency, date and
source) or one the user gives, which wins and also prices a cluster that has none (e.g. an allocation at a
centre's published rate). `hardware.hardware_costs` calls `money_cost` once per run, so plans, sweeps and
grants cost alike.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from planner.errors import PlannerError

CURRENCY_DEFAULT = "USD"  # a given price on a cluster without one


class GivenPrice(NamedTuple):
    """A price the user states: the amount per GPU-hour and, optionally, its ISO 4217 currency."""

    per_gpu_hour: float
    currency: str | None = None


class Price(NamedTuple):
    """The price a cost is computed at, and where it comes from."""

    per_gpu_hour: float
    currency: str
    as_of: str | None  # the date the source stated it; None for a given price
    source: str  # the citation, or "given"
    status: str  # verified / secondary / unverified / derived, or "given"


class Cost(NamedTuple):
    """A run's cost in money: the GPU-hours billed × the price, with the 80% range of the GPU-hours."""

    amount: float
    currency: str
    per_gpu_hour: float
    gpu_hours: float  # billed: whole nodes on a cluster
    as_of: str | None
    source: str
    status: str
    interval: tuple[float, float] | None = None

    def record(self) -> dict:
        out: dict = {"amount": self.amount, "currency": self.currency, "per_gpu_hour": self.per_gpu_hour,
                     "gpu_hours": self.gpu_hours, "as_of": self.as_of, "source": self.source, "status": self.status}
        if self.interval is not None:
            out["interval"] = list(self.interval)
        return out

    def describe(self) -> str:
        """The price as a plan's note states it: amount, currency, date and source."""
        when = f", as of {self.as_of}" if self.as_of else ""
        whence = "given" if self.status == "given" else f"{self.status}: {self.source}"
        return (f"{self.per_gpu_hour:g} {self.currency} per GPU-hour{when} ({whence}); "
                f"cost = {self.gpu_hours:,.0f} GPU-hours billed × the price")


def given_price(per_gpu_hour: float | None, currency: str | None = None, field: str = "price_per_gpu_hour") -> GivenPrice | None:
    """A user's price, checked: a positive finite amount (at most 10,000 per GPU-hour) and a 3-letter currency."""
    if per_gpu_hour is None:
        if currency is not None:
            raise PlannerError("goes with {price_per_gpu_hour}", "currency", refs=("price_per_gpu_hour",))
        return None
    if isinstance(per_gpu_hour, bool) or not isinstance(per_gpu_hour, (int, float)) or not math.isfinite(per_gpu_hour) \
            or not 0 < per_gpu_hour <= 1e4:
        raise PlannerError(f"must be a price per GPU-hour above 0 and at most 10,000, got {per_gpu_hour!r}", field)
    if currency is not None and not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise PlannerError(f"must be a 3-letter ISO 4217 code such as USD or EUR, got {currency!r}", "currency")
    return GivenPrice(float(per_gpu_hour), currency)


def price_for(cluster, given: GivenPrice | None = None) -> Price | None:
    """The price a run on `cluster` (None: a bare accelerator) costs at: the given one, else the cluster's, else None."""
    listed = cluster.accounting.price_per_gpu_hour if cluster is not None else None
    if given is not None:
        currency = given.currency or (listed.currency if listed is not None else CURRENCY_DEFAULT)
        return Price(given.per_gpu_hour, currency, None, "given", "given")
    if listed is None:
        return None
    return Price(listed.value, listed.currency, listed.as_of, f"{cluster.title}: {cluster.cite(listed)}",
                 cluster.status_of(listed))


def money_cost(gpu_hours: float, price: Price, factors: tuple[float, float] | None = None) -> Cost:
    """GPU-hours × price, and its range from the GPU-hours' range `factors` (low, high) when there is one."""
    amount = gpu_hours * price.per_gpu_hour
    interval = (amount * factors[0], amount * factors[1]) if factors is not None else None
    return Cost(amount, price.currency, price.per_gpu_hour, gpu_hours, price.as_of, price.source, price.status, interval)
