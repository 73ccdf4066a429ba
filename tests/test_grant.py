"""`planner grant`: totals are sums of rows, rows cost what `planner plan` costs, program units and
rules come from the program catalog, every format renders, bad proposals exit 2 with one line."""

import csv
import io
import json
import math
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run

from planner.costing import mfu
from planner.costing.mfu_basis import campaign_estimator
from planner.grant.build import build, load_proposal
from planner.grant.document import GrantRow
from planner.grant.programs import apportion, conversion, simulate_jsc
from planner.grant.render import burn_rows, render

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "grants"
JUWELS, LUMI = EXAMPLES / "juwels-booster.yaml", EXAMPLES / "lumi-g.yaml"
PROGRAMS = ("gcs", "eurohpc-extreme", "eurohpc-regular", "eurohpc-ai-factory", "incite", "alcc", "custom")
SUMMED = ("node_hours", "gpu_hours", "charge", "units", "request")


def grant(path, catalog):
    p, where, base = load_proposal(path)
    return build(p, where, base, catalog)


@pytest.fixture(scope="module")
def results(catalog):
    return {"juwels": grant(JUWELS, catalog), "lumi": grant(LUMI, catalog)}


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """title: t
program: {program}
cluster: {cluster}
start: 2027-04
months: 12
experiments:
"""


def plan_json(capsys, args):
    code, out, err = run(f"plan {args} --format json", capsys)
    assert code == 0, err
    return json.loads(out)


# --- catalog ---------------------------------------------------------------------------------------


def test_every_program_file_loads_with_sourced_facts(catalog):
    assert set(PROGRAMS) <= set(catalog.names("programs"))
    for name in PROGRAMS:
        prog = catalog.get("programs", name)
        for fact in [prog.unit, prog.period, *prog.also, *prog.forfeiture, *prog.expects]:
            assert prog.status_of_fact(fact) in ("verified", "secondary", "unverified", "derived")
        c = prog.contingency
        assert (c.low.value, c.high.value) == (0.10, 0.20) and prog.status_of(c.default) == "unverified"


def test_catalog_validate_accepts_the_program_files(capsys):
    code, out, err = run(["catalog", "validate", str(ROOT / "catalogs" / "programs")], capsys)
    assert code == 0, err


def test_eflop_conversion_states_its_peak_and_the_other_reading(catalog):
    gcs = catalog.get("programs", "gcs")
    c = conversion("eflop-peak", catalog.cluster("juwels-booster"), catalog, gcs.peak_basis, gcs)
    assert c.per_node_hour == pytest.approx(4 * 19.5e12 * 3600 / 1e18)  # 0.2808 EFLOP per node-hour at FP64 tensor
    assert c.status == "unverified" and "fp64_tensor" in c.basis and "16×" in c.basis


def test_units_follow_the_program(catalog):
    incite = catalog.get("programs", "incite")
    frontier = catalog.cluster("frontier")
    assert conversion(incite.unit.value, frontier, catalog).unit == "node-h"
    lumi = conversion("cluster", catalog.cluster("lumi-g"), catalog)
    assert (lumi.unit, lumi.per_node_hour, lumi.label) == ("gpu-h", 4.0, "billed GPU-h")
    assert "one billed GPU-hour = 2 Slurm GPU-hours" in lumi.basis
    assert conversion("cluster", catalog.cluster("juwels-booster"), catalog).per_node_hour == 48


# --- arithmetic -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["juwels", "lumi"])
def test_every_total_is_the_sum_of_its_rows(results, which):
    r = results[which]
    rows, sub, cont, total = r.rows, r.subtotal, r.contingency_row, r.total
    for key in SUMMED:
        assert getattr(sub, key) == pytest.approx(sum(getattr(row, key) for row in rows), rel=1e-12)
        assert getattr(total, key) == pytest.approx(getattr(sub, key) + getattr(cont, key), rel=1e-12)
    assert sub.runs == sum(row.runs for row in rows)
    assert all(isinstance(row.request, int) and row.request >= row.units * (1 - 1e-9) for row in rows)
    assert total.request == sum(row.request for row in rows) + cont.request
    assert cont.request == math.ceil(sub.request * r.contingency - 1e-9)
    for row in rows:  # units are node-hours × the program's factor
        assert row.units == pytest.approx(row.node_hours * r.unit.per_node_hour)
        for d in row.sweep_runs:
            assert d.node_hours == pytest.approx(d.wall_hours * d.nodes)
        if row.sweep_runs:
            assert row.gpu_hours == pytest.approx(sum(d.gpu_hours for d in row.sweep_runs))


@pytest.mark.parametrize("which", ["juwels", "lumi"])
def test_burn_plan_adds_up_by_period_and_by_experiment(results, which):
    r = results[which]
    periods, months = r.burn.periods, r.burn.months
    assert sum(p.request for p in periods) == sum(m.request for m in months) == r.total.request
    assert sum(p.contingency for p in periods) == r.contingency_row.request
    for row in r.rows:
        assert sum(p.by_experiment[row.name] for p in periods) == row.request
        active = [m for m in months if m.by_experiment[row.name]]
        assert len(active) <= row.months
    for p in periods:
        assert p.request == sum(p.by_experiment.values()) + p.contingency
    assert sum(p.node_hours for p in periods) == pytest.approx(r.total.node_hours)
    assert periods[-1].cumulative == pytest.approx(1.0)
    table = burn_rows(r)
    assert table[-1]["request"] == r.total.request


def test_periods_follow_the_program(results):
    assert results["juwels"].burn.period == "month" and len(results["juwels"].burn.periods) == 12
    assert results["lumi"].burn.period == "quarter" and len(results["lumi"].burn.periods) == 4
    assert results["juwels"].burn.periods[0].label == "2027-04"
    assert results["lumi"].burn.periods[-1].label == "2028-01 – 2028-03"


def test_rows_cost_what_plan_costs(results, capsys):
    """The same run through `planner plan` gives the same GPU-hours (the campaign basis by default in both)."""
    rows = {r.name: r for r in results["juwels"].rows}
    ref = plan_json(capsys, "--params 7e9 --tokens 1.4e11 --cluster juwels-booster --nodes 64")
    assert rows["7B reference run"].gpu_hours == pytest.approx(ref["gpu_hours"], rel=1e-12)
    assert rows["7B reference run"].node_hours == pytest.approx(ref["node_hours"], rel=1e-12)
    assert rows["7B reference run"].charge == pytest.approx(ref["charge"]["amount"], rel=1e-12)
    clip = plan_json(capsys, "--model openclip-vit-l-14 --samples 34e9 --cluster juwels-booster --nodes 256 --stack open_clip")
    assert rows["openCLIP ViT-L/14"].gpu_hours == pytest.approx(clip["gpu_hours"], rel=1e-12)
    for d in (rows["IsoFLOP sweep"].sweep_runs[0], rows["IsoFLOP sweep"].sweep_runs[-1]):
        ref = plan_json(capsys, f"--params {d.params} --tokens {d.tokens} --cluster juwels-booster --nodes {d.nodes}")
        assert d.gpu_hours == pytest.approx(ref["gpu_hours"], rel=1e-9)
    lumi = {r.name: r for r in results["lumi"].rows}
    ref = plan_json(capsys, "--params 7e9 --tokens 1.4e11 --cluster lumi-g --nodes 64 --mfu 0.3")
    assert lumi["7B reference run"].gpu_hours == pytest.approx(ref["gpu_hours"], rel=1e-12)
    ref = plan_json(capsys, "--model openclip-vit-l-14 --samples 34e9 --cluster lumi-g --nodes 128 --mfu 0.15")
    assert lumi["openCLIP ViT-L/14"].gpu_hours == pytest.approx(ref["gpu_hours"], rel=1e-12)


def test_rows_without_goodput_cost_what_plan_costs_by_default(tmp_path, catalog, capsys):
    path = write(tmp_path, BASE.format(program="custom", cluster="juwels-booster")
                 + "  - {name: run, params: 1.3e9, tokens: 2.6e10, nodes: 8, runs: 3}\n")
    row = grant(path, catalog).rows[0]
    ref = plan_json(capsys, "--params 1.3e9 --tokens 2.6e10 --cluster juwels-booster --nodes 8")
    assert row.run_gpu_hours == pytest.approx(ref["gpu_hours"], rel=1e-12)
    assert row.gpu_hours == pytest.approx(3 * ref["gpu_hours"], rel=1e-12)


def test_clip_uses_gmacs_and_the_sourced_clip_profile(results, catalog):
    assert (ROOT / "catalogs" / "mfu" / "clip-a100.yaml").is_file()
    row = next(r for r in results["juwels"].rows if r.name == "openCLIP ViT-L/14")
    model = catalog.model("openclip-vit-l-14")
    assert row.flops == pytest.approx(6 * model.gmacs_per_sample.value * 1e9 * 34e9)
    profile = catalog.mfu_profile("clip-a100")
    assert profile.workload == "clip" and profile.sources
    # the campaign estimate for CLIP, capped by the sourced openCLIP throughput profile (the tuned upper bound)
    bench = mfu.estimate(profile, catalog.accelerator("a100-sxm-40gb"), model.params, row.gpus_per_run).value
    assert row.mfu <= bench + 1e-12
    assert row.mfu_basis.startswith("campaign")
    mfu_fact = next(f for f in results["juwels"].method if f.topic == "mfu" and "openCLIP" in f.text)
    assert any("campaign set" in c for c in mfu_fact.cite)


def test_lumi_bills_one_mi250x_as_one_gpu_hour(results):
    r = results["lumi"]
    for row in r.rows:
        assert row.units == pytest.approx(4 * row.node_hours)
        assert row.gpu_hours == pytest.approx(8 * row.node_hours)  # Slurm's 8 GCDs per node
    assert r.unit.label == "billed GPU-h"
    md = render(r, "markdown")
    assert "one billed GPU-hour = 2 Slurm GPU-hours" in md and "GPU-h (Slurm)" in md
    assert r.storage.tb_hours == pytest.approx(300 * 8766)


def test_gcs_states_the_eflop_threshold_both_ways(results):
    (t,) = results["juwels"].thresholds
    assert t.unit == "eflop-peak" and t.limit == 45000 and t.basis_status == "unverified"
    assert t.alternative_value == pytest.approx(t.value * 16)
    assert any(w.topic == "program" and "45,000" in w.message for w in results["juwels"].warnings) == (not t.met)


def test_jsc_quota_simulation():
    even = simulate_jsc([100.0] * 12, 1200.0)  # the allocation: 12 monthly quotas of 100
    assert even.forfeited == 0 and not even.low_priority_months
    idle_first = simulate_jsc([0.0, 0.0] + [120.0] * 10, 1200.0)
    assert idle_first.months[1].forfeited == pytest.approx(100.0)  # month 1's quota lost at the end of month 2
    assert idle_first.forfeited == pytest.approx(100.0)
    late = simulate_jsc([50.0] * 6 + [150.0] * 6, 1200.0)
    assert late.low_priority_months


def test_apportion_sums_exactly():
    assert sum(apportion(1001, [1, 1, 1])) == 1001
    assert apportion(10, [0, 1, 0, 1]) == [0, 5, 0, 5]
    assert apportion(0, [1, 2]) == [0, 0]


def test_uneven_plan_on_jsc_warns_about_forfeiture(tmp_path, catalog):
    path = write(tmp_path, BASE.format(program="gcs", cluster="juwels-booster")
                 + "  - {name: a, params: 1e9, tokens: 2e10, nodes: 8, runs: 20, start_month: 1, months: 2}\n"
                 + "  - {name: b, params: 1e9, tokens: 2e10, nodes: 8, runs: 20, start_month: 9, months: 4}\n")
    r = grant(path, catalog)
    assert r.burn.simulation.forfeited > 0
    assert any(w.topic == "program" and "forfeits" in w.message for w in r.warnings)
    assert any(w.topic == "program" and "above an even share" in w.message for w in r.warnings)


def test_checkpoint_storage_estimate(tmp_path, catalog):
    path = write(tmp_path, BASE.format(program="custom", cluster="juwels-booster")
                 + "  - {name: run, params: 7e9, tokens: 1e11, nodes: 16, checkpoints: 3}\n")
    s = grant(path, catalog).storage
    assert s.items[0].tb == pytest.approx(3 * 14 * 7e9 / 1e12)
    assert s.requested_tb == 1


# --- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", [JUWELS, LUMI], ids=["juwels", "lumi"])
@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv", "json"])
def test_examples_render_in_every_format(capsys, tmp_path, example, fmt):
    out_file = tmp_path / f"out.{fmt}"
    code, out, err = run(["grant", str(example), "--format", fmt, "--out", str(out_file)], capsys)
    assert code == 0, err
    text = out_file.read_text()
    if fmt == "markdown":
        lines = text.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("| experiment"))
        assert lines[header + 1].startswith("|--") and lines[header + 2].startswith("| ")
        assert "## Burn plan" in text and "## Justification" in text and re.search(r"\[1[\],]", text)
    elif fmt == "latex":
        assert r"\toprule" in text and r"\begin{tabular}" in text and r"\end{document}" in text
        assert "IsoFLOP sweep" in text and r"\%" in text
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        res = [r for r in rows if r["section"] == "resources"]
        experiments = [r for r in res if r["name"] not in ("subtotal", "total") and not r["name"].startswith("contingency")]
        total = next(r for r in res if r["name"] == "total")
        sub = next(r for r in res if r["name"] == "subtotal")
        assert int(sub["request"]) == sum(int(r["request"]) for r in experiments)
        assert float(sub["node_hours"]) == pytest.approx(sum(float(r["node_hours"]) for r in experiments))
        burn = [r for r in rows if r["section"] == "burn" and r["name"] != "total"]
        assert sum(int(r["request"]) for r in burn) == int(total["request"])
    else:
        data = json.loads(text)
        assert data["references"] and data["justification"].startswith("We request")
        assert data["total"]["request"] == sum(r["request"] for r in data["rows"]) + data["contingency_row"]["request"]


@pytest.mark.parametrize("which", ["juwels", "lumi"])
def test_json_rows_share_one_schema_named_by_the_attributes(results, which):
    """Rows of every kind (sweep, model, params, wall-hours) print the same keys, each an attribute of
    GrantRow (or a further unit the call names), so a script reads them without guessing."""
    document = results[which]
    data = json.loads(render(document, "json"))
    assert {r.kind for r in document.rows} >= {"sweep", "model", "wall-hours"}
    keys = {frozenset(row) for row in data["rows"]}
    assert len(keys) == 1
    (key_set,) = keys
    extra_units = {a.unit for a in document.also}
    assert {k for k in key_set if k not in extra_units} == {f.name for f in fields(GrantRow)} - {"also", "mfu_errors"}
    for row, typed in zip(data["rows"], document.rows, strict=True):
        assert row["request"] == typed.request and row["units"] == typed.units
        assert all(row[u] == typed.also[u] for u in extra_units)


def test_output_is_deterministic(capsys):
    a = run(["grant", str(LUMI), "--format", "json"], capsys)[1]
    b = run(["grant", str(LUMI), "--format", "json"], capsys)[1]
    assert a == b


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
@pytest.mark.parametrize("example", [JUWELS, LUMI], ids=["juwels", "lumi"])
def test_latex_compiles(capsys, tmp_path, example):
    tex = tmp_path / "grant.tex"
    code, _, err = run(["grant", str(example), "--format", "latex", "--out", str(tex)], capsys)
    assert code == 0, err
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "grant.pdf").stat().st_size > 1000


# --- errors ---------------------------------------------------------------------------------------


def error_of(capsys, path):
    code, out, err = run(["grant", str(path)], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    return lines[-1]


def test_unknown_program_exits_2_with_line_and_suggestion(tmp_path, capsys):
    path = write(tmp_path, BASE.format(program="eurohpc-extrem", cluster="lumi-g")
                 + "  - {name: r, params: 1e9, tokens: 2e10, nodes: 2, mfu: 0.3}\n")
    line = error_of(capsys, path)
    assert f"{path}:2: program: unknown grant program 'eurohpc-extrem'" in line and "did you mean eurohpc-extreme" in line


def test_negative_hours_exit_2(tmp_path, capsys):
    path = write(tmp_path, BASE.format(program="custom", cluster="juwels-booster")
                 + "  - name: eval\n    nodes: 1\n    wall_hours: -2\n")
    line = error_of(capsys, path)
    assert f"{path}:9: experiments.0.wall_hours: must be a positive finite number" in line


def test_missing_sweep_file_exits_2(tmp_path, capsys):
    path = write(tmp_path, BASE.format(program="gcs", cluster="juwels-booster")
                 + "  - name: sweep\n    sweep: nowhere.yaml\n")
    line = error_of(capsys, path)
    assert f"{path}:8: experiments.0.sweep: sweep spec 'nowhere.yaml' not found" in line


@pytest.mark.parametrize("body, expected", [
    ("  - {name: r, params: 1e9, nodes: 2}\n", "tokens: params needs tokens"),
    ("  - {name: r, params: 1e9, tokens: 2e10, model: llama-2-7b, nodes: 2}\n", "give exactly one of"),
    ("  - {name: r, params: 1e9, tokens: 2e10}\n", "nodes: required"),
    ("  - {name: r, params: 1e9, tokens: 2e10, nodes: 2, start_month: 12, months: 3}\n", "run past the 12-month"),
    ("  - {name: r, model: openclip-vit-l-14, tokens: 1e9, nodes: 2}\n", "is a CLIP model: give samples"),
    ("  - {name: r, model: llama-9b, tokens: 1e9, nodes: 2}\n", "unknown model 'llama-9b'"),
    ("  - {name: r, params: 1e9, tokens: 2e10, nodes: 5000}\n", "exceeds the 936 nodes"),
    ("  - {name: r, params: 1e9, tokens: 2e10, nodes: 2, colour: red}\n", "experiments.0.colour: unknown field"),
])
def test_bad_experiments_exit_2_with_one_line(tmp_path, capsys, body, expected):
    path = write(tmp_path, BASE.format(program="custom", cluster="juwels-booster") + body)
    line = error_of(capsys, path)
    assert line.startswith(f"planner: error: {path}:") and expected in line


def test_lumi_without_mfu_says_where_to_put_it(tmp_path, capsys):
    path = write(tmp_path, BASE.format(program="eurohpc-extreme", cluster="lumi-g")
                 + "  - {name: r, params: 1e9, tokens: 2e10, nodes: 2}\n")
    line = error_of(capsys, path)
    assert f"{path}:7: experiments.0.mfu: no published" in line and line.endswith("give one (e.g. 0.3)")


def test_inline_sweep_errors_point_into_the_proposal(tmp_path, capsys):
    path = write(tmp_path, BASE.format(program="custom", cluster="juwels-booster")
                 + "  - name: s\n    sweep:\n      kind: isoflop\n      budgets: [1e18]\n      pints: 3\n")
    line = error_of(capsys, path)
    assert f"{path}:" in line and "pints" in line


def test_sweep_for_another_cluster_is_refused(tmp_path, capsys):
    spec = ROOT / "examples" / "grants" / "isoflop-juwels.yaml"
    path = write(tmp_path, BASE.format(program="eurohpc-extreme", cluster="lumi-g")
                 + f"  - name: s\n    sweep: {spec}\n")
    line = error_of(capsys, path)
    assert "is for cluster 'juwels-booster'" in line


def test_partition_limits_nodes_and_sets_the_job_length(tmp_path, capsys, catalog):
    text = BASE.format(program="eurohpc-extreme", cluster="lumi-g").replace("experiments:", "partition: {part}\nexperiments:")
    big = write(tmp_path, text.format(part="ju-standard-g") + "  - {name: r, params: 1e9, tokens: 2e10, nodes: 600, mfu: 0.3}\n")
    assert "exceed the 512-node limit of partition ju-standard-g" in error_of(capsys, big)
    bad = write(tmp_path, text.format(part="standard") + "  - {name: r, params: 1e9, tokens: 2e10, nodes: 2, mfu: 0.3}\n")
    assert "unknown partition of lumi-g 'standard'" in error_of(capsys, bad)
    dev = write(tmp_path, text.format(part="dev-g") + "  - {name: r, params: 7e9, tokens: 1.4e11, nodes: 32, mfu: 0.3}\n")
    row = grant(dev, catalog).rows[0]
    assert row.jobs_per_run == math.ceil(row.wall_hours_per_run / 3)


def test_same_proposal_gives_byte_identical_output(capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "grants" / "juwels-booster.yaml"
    outputs = set()
    for fmt in ("markdown", "markdown", "latex", "latex", "csv", "json"):
        code, out, _ = run(["grant", str(example), "--format", fmt], capsys)
        assert code == 0
        outputs.add((fmt, out))
    assert len(outputs) == 4  # one per format: repeats are identical


MULTI = """\
title: two systems
program: gcs
cluster: juwels-booster
start: 2027-04
months: 12
storage_tb: 100
experiments:
  - {name: 7B run, params: 7e9, tokens: 1.4e11, nodes: 64}
  - {name: 70B run, params: 70e9, tokens: 1.4e12, nodes: 256, cluster: jupiter-booster}
  - {name: evaluation, nodes: 1, wall_hours: 2, runs: 100}
  - name: small sweep on JUPITER
    cluster: jupiter-booster
    sweep: {kind: isoflop, budgets: [1e19, 1e20], points: 3}
scaling:
  - {experiment: 70B run, nodes: [64, 256]}
"""


def test_a_proposal_over_two_systems_keeps_each_in_its_own_accounting(tmp_path, catalog, capsys):
    path = write(tmp_path, MULTI)
    result = grant(path, catalog)
    juwels, jupiter = result.systems
    assert (juwels.cluster.name, jupiter.cluster.name) == ("juwels-booster", "jupiter-booster")
    assert [r.name for r in juwels.rows] == ["7B run", "evaluation"]
    assert [r.name for r in jupiter.rows] == ["70B run", "small sweep on JUPITER"]
    for part in (juwels, jupiter):  # totals are sums of the part's own rows, in the part's own unit
        for key in SUMMED:
            assert getattr(part.subtotal, key) == pytest.approx(sum(getattr(r, key) for r in part.rows))
        assert part.total.units == pytest.approx(part.total.node_hours * part.unit.per_node_hour)
    assert jupiter.unit.per_node_hour != juwels.unit.per_node_hour  # 288 vs 48 core-h: never added up
    assert juwels.storage.requested_tb == 100 and jupiter.storage.requested_tb == 0  # stated storage: home system
    assert [s.experiment for s in jupiter.scaling] == ["70B run"] and juwels.scaling == ()
    # each row costs what `planner plan` gives on its own system
    code, out, _ = run("plan --params 70e9 --tokens 1.4e12 --cluster jupiter-booster --nodes 256 --format json", capsys)
    assert jupiter.rows[0].gpu_hours == pytest.approx(json.loads(out)["gpu_hours"], rel=1e-12)
    for fmt in ("markdown", "latex", "csv", "json"):
        code, text, err = run(["grant", str(path), "--format", fmt], capsys)
        assert code == 0, err
    code, md, _ = run(["grant", str(path)], capsys)
    assert "## Request by system" in md and "## System: JUPITER Booster" in md and "### Resources by experiment" in md
    code, out, _ = run(["grant", str(path), "--format", "csv"], capsys)
    systems = {r["system"] for r in csv.DictReader(io.StringIO(out))}
    assert systems == {"juwels-booster", "jupiter-booster"}


def test_two_system_latex_compiles(tmp_path, capsys):
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex here (.ci/run installs it)")
    tex = tmp_path / "two.tex"
    code, _, err = run(["grant", str(write(tmp_path, MULTI)), "--format", "latex", "--out", str(tex)], capsys)
    assert code == 0, err
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]


def test_an_unknown_system_is_named_with_its_line(tmp_path, capsys):
    path = write(tmp_path, MULTI.replace("cluster: jupiter-booster}", "cluster: jupitr-booster}"))
    code, _, err = run(["grant", str(path)], capsys)
    assert code == 2 and "p.yaml:9: experiments.1.cluster: unknown cluster 'jupitr-booster'; did you mean" in err


def test_confidence_sets_the_quantile_each_row_requests(tmp_path, catalog):
    """A row at confidence 0.9 requests more than at 0.5; estimate, 80% range and request are all shown."""
    body = "  - {name: run, params: 7e9, tokens: 1.4e11, nodes: 64}\n"
    rows = {}
    for conf in (0.5, 0.9):
        text = BASE.format(program="gcs", cluster="juwels-booster").replace("experiments:\n", f"confidence: {conf}\nexperiments:\n")
        rows[conf] = grant(write(tmp_path, text + body, f"p{conf}.yaml"), catalog)
    low, high = rows[0.5].rows[0], rows[0.9].rows[0]
    assert low.units == pytest.approx(high.units)  # the same estimate
    assert high.request > low.request >= low.units
    errors = np.array(campaign_estimator(catalog).errors(stack_stated=False))  # no stack in this proposal
    assert high.request == math.ceil(high.units * math.exp(np.quantile(errors, 0.9)))
    lo, hi = high.units_interval
    assert lo < high.units < hi and hi == pytest.approx(high.units * math.exp(np.quantile(errors, 0.9)))
    assert rows[0.9].subtotal.request == high.request
    # the method paragraph says how the range was obtained, with the numbers
    fact = next(f for f in rows[0.9].method if f.topic == "confidence")
    assert f"{campaign_estimator(catalog).n_runs} published end-to-end training runs" in fact.text and "90% quantile" in fact.text


def test_confidence_shows_in_every_format(tmp_path, capsys):
    text = BASE.format(program="gcs", cluster="juwels-booster").replace("experiments:\n", "confidence: 0.9\nexperiments:\n")
    path = write(tmp_path, text + "  - {name: run, params: 7e9, tokens: 1.4e11, nodes: 64}\n")
    code, out, err = run(["grant", str(path), "--format", "markdown"], capsys)
    assert code == 0, err
    assert "request at 90%" in out and "estimate (core-h)" in out and "80% range" in out
    code, out, _ = run(["grant", str(path), "--format", "json"], capsys)
    row = json.loads(out)["rows"][0]
    assert row["request"] > row["units"] and len(row["units_interval"]) == 2


def test_a_given_mfu_requests_its_estimate(tmp_path, catalog):
    text = BASE.format(program="gcs", cluster="juwels-booster").replace("experiments:\n", "confidence: 0.95\nexperiments:\n")
    row = grant(write(tmp_path, text + "  - {name: run, params: 7e9, tokens: 1.4e11, nodes: 64, mfu: 0.4}\n"), catalog).rows[0]
    assert row.units_interval is None and row.request == math.ceil(row.units - 1e-9)


def test_a_confidence_beyond_what_the_calibration_resolves_is_flagged(tmp_path, catalog):
    body = "  - {name: run, params: 7e9, tokens: 1.4e11, nodes: 64}\n"
    for conf, flagged in ((0.8, False), (0.99, True)):
        text = BASE.format(program="gcs", cluster="juwels-booster").replace("experiments:\n", f"confidence: {conf}\nexperiments:\n")
        result = grant(write(tmp_path, text + body, f"c{conf}.yaml"), catalog)
        assert any(w.topic == "request" and "rests on their" in w.message for w in result.warnings) is flagged
