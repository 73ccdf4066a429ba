"""Cost in money where the resource is rented (issue 15): a cloud cluster carries a price per GPU-hour with
its currency, date and source; plans and grants show the cost; users override the price."""

import json
import math
import shutil

import pytest
from cli_helpers import run

from planner.catalog import Catalog, builtin_dir
from planner.costing.money import Price, given_price, money_cost, price_for
from planner.errors import PlannerError


def plan_json(capsys, *args):
    code, out, err = run(["plan", *args, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("cluster", ["cloud-8xh100", "cloud-8xa100-80gb"])
def test_every_cloud_cluster_has_a_dated_sourced_price(cluster):
    c = Catalog().cluster(cluster)
    price = c.accounting.price_per_gpu_hour
    assert price is not None and price.currency == "USD" and price.as_of >= "2024"
    assert 0.5 < price.value < 20  # a GPU-hour of an H100 or A100, in dollars
    assert c.status_of(price) in ("verified", "secondary") and "aws" in c.cite(price).lower()


def test_cost_is_gpu_hours_times_the_price(capsys):
    plan = plan_json(capsys, "--model", "llama-2-7b", "--tokens", "2T", "--cluster", "cloud-8xh100", "--nodes", "32")
    price = Catalog().cluster("cloud-8xh100").accounting.price_per_gpu_hour
    cost = plan["cost"]
    assert cost["per_gpu_hour"] == price.value and cost["currency"] == "USD" and cost["as_of"] == price.as_of
    assert cost["gpu_hours"] == plan["gpu_hours"]  # 256 GPUs fill 32 nodes: billed = used
    assert cost["amount"] == plan["gpu_hours"] * price.value
    assert cost["interval"] == pytest.approx([g * price.value for g in plan["gpu_hours_interval"]], rel=1e-12)  # their 80% range
    assert cost["status"] == "secondary" and "p5.48xlarge" in cost["source"]
    assert plan["sources"]["price"] == cost["source"]
    code, text, _ = run(["plan", "--model", "llama-2-7b", "--tokens", "2T", "--cluster", "cloud-8xh100", "--nodes", "32"], capsys)
    assert f"cost: {price.value:g} USD per GPU-hour, as of {price.as_of} (secondary: " in text
    assert f"{cost['amount']:,.0f}" in text


def test_whole_nodes_are_billed(capsys):
    plan = plan_json(capsys, "--flops", "1e21", "--cluster", "cloud-8xa100-80gb", "--gpus", "12")
    per = Catalog().cluster("cloud-8xa100-80gb").accounting.price_per_gpu_hour.value
    assert plan["nodes"] == 2
    assert plan["cost"]["gpu_hours"] == pytest.approx(plan["node_hours"] * 8)  # 16 GPUs rented for 12 used
    assert plan["cost"]["amount"] == plan["cost"]["gpu_hours"] * per
    assert plan["cost"]["gpu_hours"] > plan["gpu_hours"]


def test_a_given_price_wins_and_prices_any_cluster(capsys):
    plan = plan_json(capsys, "--flops", "1e22", "--cluster", "cloud-8xh100", "--nodes", "8", "--price-per-gpu-hour", "2.49")
    assert plan["cost"]["per_gpu_hour"] == 2.49 and plan["cost"]["status"] == "given" and plan["cost"]["as_of"] is None
    assert plan["cost"]["currency"] == "USD"  # the cluster's
    assert plan["cost"]["amount"] == plan["gpu_hours"] * 2.49
    assert "price" not in plan["sources"]  # a given price is not a citation
    centre = plan_json(capsys, "--flops", "1e22", "--cluster", "juwels-booster", "--nodes", "8",
                       "--price-per-gpu-hour", "1.2", "--currency", "EUR")
    assert centre["cost"]["currency"] == "EUR" and centre["cost"]["amount"] == centre["gpu_hours"] * 1.2
    assert plan_json(capsys, "--flops", "1e22", "--cluster", "juwels-booster", "--nodes", "8")["cost"] is None
    bare = plan_json(capsys, "--flops", "1e22", "--accelerator", "h100-sxm", "--gpus", "64", "--price-per-gpu-hour", "3")
    assert bare["cost"]["amount"] == bare["gpu_hours"] * 3


def test_an_hours_budget_has_no_cost_range(capsys):
    plan = plan_json(capsys, "--gpu-hours", "1e5", "--cluster", "cloud-8xh100", "--nodes", "16")
    assert plan["cost"]["amount"] == pytest.approx(1e5 * plan["cost"]["per_gpu_hour"])
    assert "interval" not in plan["cost"]  # the budget fixes the hours, so their cost


@pytest.mark.parametrize("args, line", [
    (["--price-per-gpu-hour", "-1"], "planner plan: error: Invalid value for --price-per-gpu-hour: must be positive, got -1"),
    (["--price-per-gpu-hour", "cheap"], "planner plan: error: Invalid value for --price-per-gpu-hour: 'cheap' is not a number "
                                        "(examples: 1e21, 5.76e23, 400M, 1.5T)"),
    (["--price-per-gpu-hour", "2e4"], "planner: error: --price-per-gpu-hour: must be a price per GPU-hour above 0 and at most "
                                      "10,000, got 20000.0"),
    (["--price-per-gpu-hour", "2", "--currency", "euro"], "planner: error: --currency: must be a 3-letter ISO 4217 code such "
                                                         "as USD or EUR, got 'euro'"),
    (["--currency", "EUR"], "planner: error: --currency: goes with --price-per-gpu-hour"),
])
def test_a_bad_price_is_one_line_naming_the_option(capsys, args, line):
    code, _, err = run(["plan", "--flops", "1e22", "--cluster", "cloud-8xh100", "--nodes", "8", *args], capsys)
    assert code == 2 and err.splitlines() == [line]


def test_a_cloud_cluster_without_a_price_is_an_error_at_its_line(tmp_path, capsys):
    (tmp_path / "clusters").mkdir()
    mine = tmp_path / "clusters" / "cloud-8xh100.yaml"
    text = (builtin_dir() / "clusters" / "cloud-8xh100.yaml").read_text()
    start = text.index("  price_per_gpu_hour:")
    mine.write_text(text[:start] + text[text.index("\n", start) + 1:])
    line = mine.read_text().splitlines().index("accounting:") + 1
    code, _, err = run(["--catalog", str(tmp_path), "plan", "--flops", "1e22", "--cluster", "cloud-8xh100", "--nodes", "8"],
                       capsys)
    assert code == 2
    assert err.splitlines()[-1] == (f"planner: error: {mine}:{line}: accounting.price_per_gpu_hour: required for a rented "
                                    "cluster (state: cloud): the price per GPU-hour with currency, as_of date and source")


@pytest.mark.parametrize("edit, message", [
    (("value: 6.88", "value: 0"), "accounting.price_per_gpu_hour: must be a number from 1e-06 to 10000, got 0"),
    (("currency: USD", "currency: dollars"), "accounting.price_per_gpu_hour.currency: String should match pattern"),
    (('as_of: "2026-11-09"', "as_of: last year"), "accounting.price_per_gpu_hour.as_of: String should match pattern"),
])
def test_a_bad_catalog_price_is_an_error(tmp_path, capsys, edit, message):
    (tmp_path / "clusters").mkdir()
    mine = tmp_path / "clusters" / "cloud-8xh100.yaml"
    shutil.copy(builtin_dir() / "clusters" / "cloud-8xh100.yaml", mine)
    assert edit[0] in mine.read_text()
    mine.write_text(mine.read_text().replace(edit[0], edit[1]))
    code, _, err = run(["--catalog", str(tmp_path), "plan", "--flops", "1e22", "--cluster", "cloud-8xh100", "--nodes", "8"],
                       capsys)
    assert code == 2 and message in err.splitlines()[-1]


def test_money_cost_and_price_for():
    catalog = Catalog()
    listed = price_for(catalog.cluster("cloud-8xh100"))
    assert listed is not None and listed.status == "secondary" and listed.as_of
    assert price_for(catalog.cluster("lumi-g")) is None  # an allocation, not a rental
    given = price_for(catalog.cluster("lumi-g"), given_price(0.9, "EUR"))
    assert given == Price(0.9, "EUR", None, "given", "given")
    c = money_cost(1234.5, given, (0.5, 2.0))
    assert c.amount == 1234.5 * 0.9 and c.interval == (1234.5 * 0.9 * 0.5, 1234.5 * 0.9 * 2.0)
    for bad in (0.0, -2.0, math.inf, math.nan, 1e5):
        with pytest.raises(PlannerError):
            given_price(bad)


def grant(tmp_path, capsys, extra: str, cluster: str = "cloud-8xh100", fmt: str = "json"):
    proposal = tmp_path / "p.yaml"
    proposal.write_text(f"title: t\nprogram: custom\ncluster: {cluster}\nstart: 2027-05\nmonths: 6\n{extra}"
                        "experiments:\n  - name: 7B run\n    model: llama-2-7b\n    tokens: 2T\n    nodes: 32\n"
                        "  - name: eval\n    nodes: 2\n    wall_hours: 100\n")
    code, out, err = run(["grant", str(proposal), "--format", fmt], capsys)
    assert code == 0, err
    return json.loads(out) if fmt == "json" else out


def test_a_grant_on_a_priced_cluster_shows_the_cost(tmp_path, capsys):
    doc = grant(tmp_path, capsys, "")
    per = Catalog().cluster("cloud-8xh100").accounting.price_per_gpu_hour.value
    for row in doc["rows"] + [doc["subtotal"], doc["contingency_row"], doc["total"]]:
        assert row["cost"]["amount"] == row["gpu_hours"] * per and row["cost"]["currency"] == "USD"
    assert doc["total"]["cost"]["amount"] == pytest.approx(sum(r["cost"]["amount"] for r in doc["rows"]) * (1 + doc["contingency"]))
    assert any("p5.48xlarge" in r for r in doc["references"])
    assert f"{per:g} USD per GPU-hour (secondary, as of 2026-11-09)" in doc["justification"]
    text = grant(tmp_path, capsys, "", fmt="markdown")
    assert "cost (USD)" in text and f"{doc['total']['cost']['amount']:,.0f}" in text


def test_a_grant_price_key_wins_and_prices_an_allocation(tmp_path, capsys):
    doc = grant(tmp_path, capsys, "price_per_gpu_hour: 2.5\ncurrency: EUR\n")
    assert {r["cost"]["per_gpu_hour"] for r in doc["rows"]} == {2.5} and doc["total"]["cost"]["currency"] == "EUR"
    assert "2.5 EUR per GPU-hour (given in the proposal)" in doc["justification"]
    centre = grant(tmp_path, capsys, "price_per_gpu_hour: 1.1\n", cluster="juwels-booster")
    assert centre["total"]["cost"]["amount"] == centre["total"]["gpu_hours"] * 1.1
    assert grant(tmp_path, capsys, "", cluster="juwels-booster")["total"]["cost"] is None
    assert "cost (" not in grant(tmp_path, capsys, "", cluster="juwels-booster", fmt="markdown")


def test_a_bad_grant_price_is_an_error_at_its_line(tmp_path, capsys):
    proposal = tmp_path / "p.yaml"
    proposal.write_text("title: t\nprogram: custom\ncluster: juwels-booster\nstart: 2027-05\nmonths: 6\n"
                        "price_per_gpu_hour: -1\nexperiments:\n  - name: run\n    nodes: 2\n    wall_hours: 10\n")
    code, _, err = run(["grant", str(proposal)], capsys)
    assert code == 2
    assert err.splitlines()[-1] == (f"planner: error: {proposal}:6: price_per_gpu_hour: must be a price per GPU-hour "
                                    "above 0 and at most 10,000, got -1.0")


def test_a_projection_is_priced_row_by_row(capsys):
    result = plan_json(capsys, "--params", "1B,7B", "--cluster", "cloud-8xh100", "--nodes", "4", "--price-per-gpu-hour", "3")
    assert [r["cost"]["amount"] for r in result["rows"]] == [r["gpu_hours"] * 3 for r in result["rows"]]
    bare = plan_json(capsys, "--params", "1B,7B", "--accelerator", "h100-sxm")
    assert [r["cost"] for r in bare["rows"]] == [None, None]
