"""Every unit a call can be requested in, and every quota mechanism a burn plan simulates, honours the
same contract on every cluster of the catalog (one check over each registry)."""

import typing

import pytest

from planner.grant.programs import QUOTA_RULES, PeakBasis, QuotaRule, Unit
from planner.grant.units import UNITS, conversion

CLUSTERS = ["juwels-booster", "jupiter-booster", "lumi-g", "leonardo-booster", "jean-zay-a100", "frontier", "alps"]
PEAK = PeakBasis(source="s", dtype="fp64_tensor", alternative="bf16")


def test_the_registries_and_the_schema_name_the_same_entries():
    assert set(UNITS) == set(typing.get_args(Unit))
    assert set(QUOTA_RULES) == set(typing.get_args(QuotaRule))


@pytest.mark.parametrize("unit", sorted(UNITS))
@pytest.mark.parametrize("name", CLUSTERS)
def test_every_unit_converts_node_hours_on_every_cluster(catalog, unit, name):
    cluster = catalog.cluster(name)
    if unit == "core-h" and cluster.cpu_cores_per_node is None:
        pytest.skip(f"{name} states no cores per node")
    conv = conversion(unit, cluster, catalog, PEAK)
    assert conv.unit == unit and conv.per_node_hour > 0 and conv.basis and conv.status in typing.get_args(
        typing.get_type_hints(type(cluster).status_of)["return"])
    if unit == cluster.accounting.unit:  # the cluster's own published factor wins over any derivation
        assert conv.per_node_hour == cluster.accounting.units_per_node_hour.value
        assert conv.status == cluster.status_of(cluster.accounting.units_per_node_hour)


@pytest.mark.parametrize("name", CLUSTERS)
def test_the_cluster_unit_is_the_clusters_own(catalog, name):
    cluster = catalog.cluster(name)
    own = conversion("cluster", cluster, catalog, PEAK)
    assert own.unit == cluster.accounting.unit and own.per_node_hour == cluster.accounting.units_per_node_hour.value


def test_a_billed_gpu_hour_that_is_not_a_slurm_gpu_says_so(catalog):
    lumi = catalog.cluster("lumi-g")  # bills one MI250X (2 GCDs) as a GPU-hour; Slurm shows 8 GCDs per node
    conv = conversion("gpu-h", lumi, catalog)
    assert conv.label == "billed GPU-h" and conv.per_node_hour == 4 and "Slurm shows 8 GPUs per node" in conv.basis


def programs_simulating(catalog, name: str) -> list:
    """The forfeiture rules of the catalog's programs that simulate `name`."""
    return [r for p in catalog.all("programs") for r in p.forfeiture if r.simulate == name]


@pytest.mark.parametrize("rule", sorted(QUOTA_RULES))
def test_every_quota_rule_keeps_the_books(rule, catalog):
    simulate = QUOTA_RULES[rule]
    rules = programs_simulating(catalog, rule)
    assert rules, f"no program simulates {rule}"
    for r in rules:
        first = r.year_start or 1  # the allocation year the rule is written for
        labels = [f"{2027 + (first - 1 + k) // 12}-{(first - 1 + k) % 12 + 1:02d}" for k in range(12)]
        even = simulate([100.0] * 12, 1200.0, labels, r)
        assert even.forfeited == 0 and not even.low_priority_months and len(even.months) == 12
        idle_start = simulate([0.0] * 10 + [1000.0, 200.0], 1200.0, labels, r)  # most of the year idle: hours are lost
        assert idle_start.forfeited > 0
        assert sum(m.used for m in idle_start.months) == 1200.0
        assert all(m.forfeited >= 0 for m in idle_start.months)
    if rule == "jsc-monthly":
        burst = simulate([400.0, 0.0, 0.0, 0.0], 400.0, ["2027-01", "2027-02", "2027-03", "2027-04"], rules[0])  # far beyond one quota of overdraft
        assert burst.low_priority_months == (1, 2)  # month 2 still owes more than one quota
