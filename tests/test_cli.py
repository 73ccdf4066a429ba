"""The command line: help, formats, errors as one line with exit 2, no-clobber writes, determinism."""

import json
import subprocess
import sys

import click
import pytest
from cli_helpers import run

from planner.cli import cli

PLAN = "plan --flops 5.76e23 --cluster juwels-booster --nodes 64"


def all_commands(group=cli, prefix=()):
    for name in group.list_commands(None):
        cmd = group.get_command(None, name)
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=" ".join)
def test_every_command_has_help_with_an_example(capsys, path):
    code, out, _ = run(list(path) + ["--help"], capsys)
    assert code == 0
    assert "Example" in out, f"planner {' '.join(path)} --help shows no example"


def test_plan_help_shows_examples(capsys):
    code, out, _ = run("plan --help", capsys)
    assert "planner plan --gpu-hours 4e6 --cluster jupiter-booster --nodes all" in out


def test_plan_json_has_the_documented_keys(capsys):
    code, out, err = run(PLAN + " --format json", capsys)
    assert code == 0
    data = json.loads(out)
    for key in ("params", "tokens", "tokens_per_param", "flops", "flops_convention", "predicted_loss", "gpus",
                "nodes", "mfu", "gpu_hours", "node_hours", "wall_clock_hours", "wall_clock_days", "energy_kwh",
                "accelerator", "cluster", "law", "sources", "warnings", "mfu_kind", "interval_level",
                "gpu_hours_interval", "node_hours_interval", "wall_clock_hours_interval", "energy_kwh_interval"):
        assert key in data, key
    assert data["flops_convention"] == "6ND+attention"  # the default, as the calibration counts FLOPs
    assert data["mfu_kind"] == "campaign" and data["interval_level"] == 0.8
    low, high = data["gpu_hours_interval"]
    assert low < data["gpu_hours"] < high
    assert data["law"] == "epoch-2024"
    assert "planning" in err  # progress goes to stderr


def test_predicted_loss_is_null_for_allocation_laws(capsys):
    _, out, _ = run("plan --flops 1e22 --law chinchilla-approach1 --format json", capsys)
    assert json.loads(out)["predicted_loss"] is None


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "latex"])
def test_every_format_renders(capsys, fmt):
    code, out, _ = run(f"{PLAN} --format {fmt}", capsys)
    assert code == 0 and out.strip()
    if fmt == "latex":
        assert "\\toprule" in out and "\\bottomrule" in out
    if fmt == "markdown":
        assert out.splitlines()[1].startswith("|--")
    if fmt == "csv":
        header, row = out.splitlines()[:2]
        assert header.startswith("params,tokens,")


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "latex"])
def test_projection_table_in_every_format(capsys, fmt):
    code, out, _ = run(f"plan --params 400M,1B,10B,67B --law chinchilla-approach1 --format {fmt}", capsys)
    assert code == 0
    if fmt == "json":
        rows = json.loads(out)["rows"]
        assert [r["params"] for r in rows] == [4e8, 1e9, 1e10, 6.7e10]


def test_projection_prints_gopher_units_like_table3(capsys):
    _, out, _ = run("plan --params 400M,1B,10B --law chinchilla-approach1", capsys)
    assert "1/29,898" in out  # Table 3: 1/29,968 (from the rounded 1.92e19)


BAD = [
    ("plan --flops -1e21", "must be positive"),
    ("plan --flops 0", "must be positive"),
    ("plan --flops nan", "not a number"),
    ("plan --flops inf", "not a number"),
    ("plan --flops 1e400", "not finite"),
    ("plan --flops abc", "not a number"),
    ("plan --flops 1e21 --gpu-hours 100", "one budget"),
    ("plan --flops 1e21 --params 1e9", "give one"),
    ("plan", "give a budget"),
    ("plan --tokens 1e12", "needs --params"),
    ("plan --flops 1e21 --law chinchila", "did you mean"),
    ("plan --flops 1e21 --cluster juwels", "did you mean juwels-booster"),
    ("plan --flops 1e21 --accelerator a100", "did you mean"),
    ("plan --days 3 --cluster juwels-booster", "needs --nodes"),
    ("plan --gpu-hours 100", "need hardware"),
    ("plan --flops 1e21 --cluster juwels-booster --nodes 0", "positive whole number"),
    ("plan --flops 1e21 --cluster juwels-booster --nodes 5000", "exceeds"),
    ("plan --flops 1e21 --cluster juwels-booster --gpus -4", "--gpus"),
    ("plan --flops 1e21 --mfu 1.5", "--mfu"),
    ("plan --flops 1e21 --format tabel", "table"),
    ("plan --flops 1e21 --flop 3", "--flop"),
    ("plan --params 1e9,,2e9", "comma-separated"),
    ("plan --target-loss 1.5", "irreducible"),
    ("plan --target-loss 2 --law chinchilla-approach1", "does not predict loss"),
    ("plan --flops 1e21 --unique-tokens 1e9", "data-constrained"),
    ("plan --flops 1e21 --inference-tokens 1e12 --law llama3-2024", "predicts loss"),
    ("plan --flops 1e21 --cluster juwels-booster --dtype fp8", "no fp8 peak"),
    ("plna --flops 1e21", "no such command"),
    ("catalog show nosuchthing", "unknown catalog entry"),
]


@pytest.mark.parametrize("args, expected", BAD, ids=[a for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(capsys, args, expected):
    code, out, err = run(args, capsys)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("planning")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]


def test_out_is_not_overwritten_without_force(capsys, tmp_path):
    target = tmp_path / "plan.json"
    assert run(f"{PLAN} --format json --out {target}", capsys)[0] == 0
    first = target.read_bytes()
    target.write_text("keep me")
    code, _, err = run(f"{PLAN} --format json --out {target}", capsys)
    assert code == 2 and "--force" in err
    assert target.read_text() == "keep me"
    assert run(f"{PLAN} --format json --out {target} --force", capsys)[0] == 0
    assert target.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temp files left behind


def test_same_inputs_give_byte_identical_output(capsys):
    outputs = {run(f"{PLAN} --format {fmt}", capsys)[1] for fmt in ["json"] * 3}
    assert len(outputs) == 1


def test_module_entry_point_runs_in_a_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "planner", "plan", "--flops", "1e21", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["flops_6nd"] == 1e21
    bad = subprocess.run([sys.executable, "-m", "planner", "plan", "--flops", "-5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_whole_cluster_and_suffixes(capsys):
    code, out, _ = run("plan --gpu-hours 4M --cluster juwels-booster --nodes all --format json", capsys)
    data = json.loads(out)
    assert data["gpus"] == 3744
    assert data["wall_clock_hours"] == pytest.approx(4e6 / 3744)


def test_shell_completion_offers_catalog_names():
    env = {**__import__("os").environ, "COMP_WORDS": "planner plan --cluster juw", "COMP_CWORD": "3",
           "_PLANNER_COMPLETE": "bash_complete"}
    proc = subprocess.run([sys.executable, "-m", "planner"], capture_output=True, text=True, env=env)
    assert "plain,juwels-booster" in proc.stdout.splitlines()
