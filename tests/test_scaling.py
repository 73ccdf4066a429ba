"""`planner scaling` and the scaling-evidence section of `planner grant`: predicted rows are
`planner plan --nodes K`, speed-up and efficiency are relative to the smallest count that holds the
model, measured throughput implies an MFU, and bad benchmarks exit 2 with one line."""

import csv
import io
import json
import textwrap

import pytest
from cli_helpers import check_stderr, run

from planner.costing.scaling import default_node_counts

RUN_7B = "--params 7e9 --tokens 1.4e11 --cluster juwels-booster"


def one_error_line(err: str) -> bool:
    """stderr holds progress lines and exactly one error line, no traceback (cli_helpers.check_stderr)."""
    return check_stderr(2, err) is not None


def scaling(args, capsys):
    code, out, err = run(f"scaling {args} --format json", capsys)
    assert code == 0, err
    return json.loads(out)


def test_each_predicted_row_is_planner_plan_at_that_node_count(capsys):
    result = scaling(f"{RUN_7B} --nodes 2,8,64", capsys)
    assert [r["nodes"] for r in result["rows"]] == [2, 8, 64]
    for row in result["rows"]:
        code, out, _ = run(f"plan {RUN_7B} --nodes {row['nodes']} --format json", capsys)
        plan = json.loads(out)
        assert row["mfu"] == plan["mfu"] and row["wall_hours"] == plan["wall_clock_hours"]
        assert row["throughput"] == pytest.approx(1.4e11 / (plan["wall_clock_hours"] * 3600), rel=1e-12)


def test_speedup_and_efficiency_are_relative_to_the_smallest_count_that_fits(capsys):
    result = scaling("--model gpt-3-175b --tokens 300B --cluster juwels-booster --nodes 16,32,56,112,224", capsys)
    rows = {r["nodes"]: r for r in result["rows"]}
    assert rows[16]["fits"] is False and "speedup" not in rows[16]
    assert result["baseline_nodes"] == 32 and rows[32]["speedup"] == 1.0
    for n in (56, 112, 224):
        assert rows[n]["speedup"] == pytest.approx(rows[n]["throughput"] / rows[32]["throughput"], rel=1e-12)
        assert rows[n]["efficiency"] == pytest.approx(rows[n]["speedup"] / (n / 32), rel=1e-12)
        assert 0.9 < rows[n]["efficiency"] < 1.0  # MFU falls slowly with GPU count on A100
    assert any("16 nodes cannot hold the model" in w for w in result["warnings"])
    # 32 nodes hold it only with full recompute, which the MFU profile does not price: said so
    # (selective recompute needs 68 nodes with fp32 gradients, 56 with bf16)
    assert any("on 128 GPUs only full activation recompute fits" in w and "from 68 nodes" in w for w in result["warnings"])


def test_default_counts_double_from_the_smallest_that_fits(capsys):
    assert default_node_counts(56, None, 936) == [56, 112, 224, 448, 896, 936]
    assert default_node_counts(1, 64, None) == [1, 2, 4, 8, 16, 32, 64]
    assert default_node_counts(3, 20, None) == [3, 6, 12, 20]
    result = scaling("--model gpt-3-175b --tokens 300B --cluster juwels-booster", capsys)
    assert [r["nodes"] for r in result["rows"]] == [68, 136, 272, 544, 936]  # 68: the fewest with fp32 gradients


def bench(tmp_path, text):
    path = tmp_path / "bench.csv"
    path.write_text(textwrap.dedent(text))
    return path


def test_measured_throughput_implies_mfu_speedup_and_efficiency(tmp_path, capsys):
    # a synthetic benchmark (not a real measurement): 15k tokens/s on 1 node, 420k on 32
    path = bench(tmp_path, "nodes,tokens_per_s\n1,15000\n32,420000\n")
    result = scaling(f"{RUN_7B} --nodes 1,8,32 --measured {path}", capsys)
    rows = {r["nodes"]: r for r in result["rows"]}
    per_token = result["run"]["flops"] / result["run"]["tokens"]  # 6N + 12·L·h·s, the plan's convention
    assert 6 * 7e9 < per_token < 1.2 * 6 * 7e9
    assert rows[1]["measured_mfu"] == pytest.approx(15000 * per_token / (4 * 312e12), rel=1e-12)
    assert rows[32]["measured_speedup"] == pytest.approx(28.0)
    assert rows[32]["measured_efficiency"] == pytest.approx(28.0 / 32)
    assert "measured_throughput" not in rows[8]
    code, out, _ = run(f"scaling {RUN_7B} --nodes 1,8,32 --measured {path} --format markdown", capsys)
    assert "measured MFU" in out and "cite these rows" in out


def test_seconds_per_step_needs_the_global_batch(tmp_path, capsys):
    path = bench(tmp_path, "nodes,seconds_per_step\n1,280\n4,70\n")
    result = scaling(f"{RUN_7B} --measured {path} --global-batch 4M --nodes 1,4", capsys)
    assert result["rows"][0]["measured_throughput"] == pytest.approx(4e6 / 280)
    assert result["rows"][1]["measured_seconds_per_step"] == pytest.approx(70)
    code, _, err = run(f"scaling {RUN_7B} --measured {path}", capsys)
    assert code == 2 and f"{path}:1: seconds_per_step needs the global batch" in err and one_error_line(err)


@pytest.mark.parametrize("body, message", [
    ("nodes,tokens_per_s\n1,1e9\n", "the peak FLOP/s"),                       # faster than the hardware
    ("nodes,tokens_per_s\n1,15000\n1,16000\n", "two measurements for the same node count"),
    ("nodes,tokens_per_s\n1.5,15000\n", ":2: nodes: 1.5 is not a whole number"),
    ("nodes,tokens_per_s\n1,fast\n", ":2: tokens_per_s: 'fast' is not a number"),
    ("nodes,speed\n1,15000\n", "give exactly one of the columns"),
    ("nodes,tokens_per_s\n", "no measurements"),
])
def test_bad_benchmarks_exit_2_with_one_line(tmp_path, capsys, body, message):
    path = bench(tmp_path, body)
    code, _, err = run(f"scaling {RUN_7B} --nodes 1 --measured {path}", capsys)
    assert code == 2 and message in err and one_error_line(err), err


@pytest.mark.parametrize("args, message", [
    ("--params 7e9 --cluster juwels-booster", "one fixed run"),
    ("--params 7e9 --tokens 1e11", "Missing option '--cluster'"),
    (f"{RUN_7B} --nodes 0", "must be positive"),
    (f"{RUN_7B} --nodes 1.5", "whole numbers"),
    (f"{RUN_7B} --nodes 1000", "exceed the 936 nodes"),
    (f"{RUN_7B} --nodes " + ",".join(str(n) for n in range(1, 30)), "at most 24"),
    ("--model llama-2-7b --samples 1e9 --tokens 1e9 --cluster juwels-booster", "--samples"),
])
def test_bad_options_exit_2(capsys, args, message):
    code, _, err = run(f"scaling {args}", capsys)
    assert code == 2 and message in err and one_error_line(err), err


def test_clip_profile_without_gpu_dependence_says_the_prediction_is_flat(capsys):
    result = scaling("--model openclip-vit-l-14 --samples 34e9 --cluster juwels-booster --nodes 16,64,256", capsys)
    assert result["unit"] == "samples" and result["rows"][-1]["efficiency"] == pytest.approx(1.0)
    assert any("100% by construction" in w for w in result["warnings"])


def proposal(tmp_path, scaling_block, experiments=None):
    experiments = experiments or """\
      - {name: 7B run, params: 7e9, tokens: 1.4e11, nodes: 16}
      - {name: evaluation, nodes: 1, wall_hours: 2, runs: 10}
    """
    text = textwrap.dedent("""\
    title: t
    program: gcs
    cluster: juwels-booster
    start: 2027-04
    experiments:
    """) + textwrap.indent(textwrap.dedent(experiments), "") + "scaling:\n" + textwrap.indent(textwrap.dedent(scaling_block), "  ")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_grant_scaling_section_in_every_format(tmp_path, capsys):
    path = proposal(tmp_path, """\
    - experiment: 7B run
      global_batch: 4M
      measured: [{nodes: 1, throughput: 15000}, {nodes: 16, throughput: 221000}]
      source: synthetic numbers for this test
    """)
    code, out, err = run(["grant", str(path), "--format", "json"], capsys)
    assert code == 0, err
    sc = json.loads(out)["scaling"][0]
    assert [r["nodes"] for r in sc["rows"]] == [1, 2, 4, 8, 16]  # up to the experiment's 16 nodes
    assert sc["rows"][-1]["measured_efficiency"] == pytest.approx(221000 / 15000 / 16)
    assert sc["source"] == "synthetic numbers for this test"
    code, md, _ = run(["grant", str(path)], capsys)
    assert "## Strong scaling (measured and predicted): 7B run" in md and "measurements: synthetic numbers" in md
    code, tex, _ = run(["grant", str(path), "--format", "latex"], capsys)
    assert "Strong scaling (measured and predicted): 7B run" in tex
    code, out, _ = run(["grant", str(path), "--format", "csv"], capsys)
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["section"] == "scaling"]
    assert [r["nodes"] for r in rows] == ["1", "2", "4", "8", "16"]


@pytest.mark.parametrize("block, message", [
    ("- {experiment: 7B rn}", "p.yaml:9: scaling.0.experiment: unknown experiment '7B rn'; did you mean 7B run?"),
    ("- {experiment: evaluation}", "'evaluation' is a wall-hours experiment"),
    ("- {experiment: 7B run, measured: [{nodes: 1, throughput: 15000}]}", "source: say where the measurements come from"),
    ("- {experiment: 7B run, measured: missing.csv, source: x}", "missing.csv"),
    ("- {experiment: 7B run, nodes: [0]}", "scaling.0.nodes.0"),
])
def test_grant_bad_scaling_entries(tmp_path, capsys, block, message):
    code, _, err = run(["grant", str(proposal(tmp_path, block))], capsys)
    assert code == 2 and message in err and one_error_line(err), err


def test_plot_is_a_png_written_once_without_force(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "scaling.png"
    path = bench(tmp_path, "nodes,tokens_per_s\n1,15000\n8,110000\n")
    args = f"scaling {RUN_7B} --nodes 1,2,8 --measured {path} --plot {png}"
    code, _, err = run(args, capsys)
    assert code == 0, err
    first = png.read_bytes()
    assert first.startswith(b"\x89PNG")
    code, _, err = run(args, capsys)
    assert code == 2 and "--force" in err and png.read_bytes() == first
    code, _, _ = run(args + " --force", capsys)
    assert code == 0 and png.read_bytes() == first  # same inputs, same bytes
