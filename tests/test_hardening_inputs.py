"""Hardening II, the inputs: numbers as people read and mistype them, hardware a run cannot have, catalog
overrides, and every failure one line. Each case invokes the CLI and checks the exit code and the one
error line exactly (or the warning a success prints), and that no traceback reaches stderr."""

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog import builtin_dir
from planner.numbers import SUFFIXES, parse_quantity
from planner.yamlio import load_text

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def edit(text: str, old: str, new: str) -> tuple[str, int]:
    """`text` with its one line `old` replaced by `new` (which may hold line breaks), and that line's number."""
    lines = text.splitlines(keepends=True)
    numbers = [i for i, ln in enumerate(lines, 1) if ln.rstrip("\n") == old]
    assert len(numbers) == 1, (old, numbers)
    lines[numbers[0] - 1] = new + "\n"
    return "".join(lines), numbers[0]


def error_line(code: int, err: str) -> str:
    """The one error line of a bad-input exit."""
    assert code == 2, err
    line = check_stderr(code, err)
    assert line is not None
    return line


# --- YAML numbers as the YAML 1.2 core schema reads them --------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("010", 10),            # YAML 1.1: octal 8
    ("0o10", 8), ("0x1F", 31), ("-7", -7), ("+3", 3),
    ("1:20", "1:20"),       # YAML 1.1: base 60, 80
    ("1_000", "1_000"),     # YAML 1.1: 1000
    ("1e3", 1000.0),        # YAML 1.1: text (no dot)
    ("7e9", 7e9), (".5", 0.5), ("1.", 1.0), ("-.inf", float("-inf")),
    ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"),  # YAML 1.1: booleans
    ("true", True), ("False", False), ("~", None), ("null", None), ("", None),
    ("2027-04-01", date(2027, 4, 1)), ("2027-04", "2027-04"), ("7B", "7B"),
])
def test_yaml_scalars_read_as_the_core_schema(text, value):
    data, _ = load_text(f"x: {text}\n", "f.yaml")
    assert data["x"] == value and type(data["x"]) is type(value)


SPEC = """\
name: hardening
cluster: juwels-booster
nodes: 1
command: echo {run_id}
sweep:
  kind: list
  runs:
    - {params: 1e8, tokens: 1e9}
"""

PROPOSAL = """\
title: t
program: gcs
cluster: juwels-booster
start: 2027-04
months: 12
experiments:
  - name: ref
    params: 7e9
    tokens: 1.4e11
    nodes: 8
"""


@pytest.mark.parametrize("old, new, expected", [
    ("nodes: 1", "nodes: 1:20", "nodes: Input should be a valid integer, unable to parse string as an integer (and 1 more)"),
    ("nodes: 1", "nodes: 1_000", "nodes: 1000 exceeds the 936 nodes of juwels-booster"),  # text to YAML 1.2; pydantic reads it
    ("nodes: 1", "nodes: abc", "nodes: Input should be a valid integer, unable to parse string as an integer (and 1 more)"),
    ("    - {params: 1e8, tokens: 1e9}", "    - {params: 7, tokens: 1e9}",
     "sweep.runs.0.params: 7 parameters is smaller than any model trained (at least 1e5); did you mean 7B or 7M?"),
    ("    - {params: 1e8, tokens: 1e9}", "    - {params: 1e8, tokens: 2e12T}",
     "sweep.runs.0.tokens: '2e12T' has both an exponent and a suffix, which multiply (2e12 × T); write one, e.g. 2e12 or 2T"),
    ("nodes: 1", "~: 1", "(top level): the key '~' is null, not a name (quote it if it is one)"),
])
def test_sweep_spec_numbers(tmp_path, capsys, old, new, expected):
    text, line = edit(SPEC, old, new)
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert error_line(code, err) == f"planner: error: {spec}:{line}: {expected}"
    assert not (tmp_path / "out").exists()


def test_a_leading_zero_is_decimal_not_octal(tmp_path, capsys):
    text, _ = edit(PROPOSAL, "    nodes: 8", "    nodes: 010")
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(text)
    code, out, err = run(["grant", str(proposal), "--format", "json"], capsys)
    assert check_stderr(code, err) is None
    (row,) = json.loads(out)["rows"]
    assert row["nodes"] == 10 and row["gpus_per_run"] == 40  # YAML 1.1 read 010 as 8


def grant_error(tmp_path, capsys, text: str) -> str:
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(text)
    code, _, err = run(["grant", str(proposal)], capsys)
    return error_line(code, err).replace(f"{proposal}:", "proposal.yaml:")


@pytest.mark.parametrize("old, new, expected", [
    ("    params: 7e9", "    params: 7", "proposal.yaml:8: experiments.0.params: 7 parameters is smaller than any model "
     "trained (at least 1e5); did you mean 7B or 7M?"),
    ("    tokens: 1.4e11", "    tokens: 300", "proposal.yaml:9: experiments.0.tokens: 300 tokens is fewer than any training "
     "run (at least 1e6); did you mean 300B or 300M?"),
    ("    tokens: 1.4e11", "    tokens: 2e12T", "proposal.yaml:9: experiments.0.tokens: '2e12T' has both an exponent and a "
     "suffix, which multiply (2e12 × T); write one, e.g. 2e12 or 2T"),
    # tracebacks before
    ("    tokens: 1.4e11", "    tokens: 1e300", "proposal.yaml:7: experiments.0: its node-hours overflow; check params, "
     "tokens, samples, runs and wall_hours"),
    ("    nodes: 8", "    nodes: 8\n    start_month: 13", "proposal.yaml:11: experiments.0.start_month: month 13 is after the "
     "12-month allocation"),
    ("    nodes: 8", "    nodes: 8\n    start_month: " + "9" * 300, "proposal.yaml:11: experiments.0.start_month: month "
     "999999…(300 digits) is after the 12-month allocation"),
    # messages: the misspelt key at its own line, not `experiments` missing at line 1; a null key at its line
    ("experiments:", "experiements:", "proposal.yaml:6: experiements: unknown field; did you mean 'experiments'? (valid: "
     "title, program, cluster, start, months, pi, project, contingency, storage_tb, storage, mfu, goodput, confidence, "
     "mfu_basis, stack, seq_len, dtype, law, partition, unit, period, justification, price_per_gpu_hour, currency, max_nodes_concurrent, experiments, scaling) (and 1 more)"),
    ("months: 12", "months: 12\n~: x", "proposal.yaml:6: (top level): the key '~' is null, not a name (quote it if it is one)"),
    ("    nodes: 8", "    nodes: 8\nscaling:\n  - {experiment: ref, global_batch: 2e11}", "proposal.yaml:12: "
     "scaling.0.global_batch: 2e+11 tokens per step is more than the run's 1.4e+11 tokens: it would not finish one "
     "optimizer step"),
])
def test_proposal_inputs(tmp_path, capsys, old, new, expected):
    text, _ = edit(PROPOSAL, old, new)
    assert grant_error(tmp_path, capsys, text) == f"planner: error: {expected}"


@pytest.mark.parametrize("depth, expected_line", [(500, 1), (900_000, 1)])
def test_deep_nesting_is_one_line(tmp_path, depth, expected_line):
    """900,000 levels crashed libyaml's recursive composer (a segfault): a subprocess, so a regression cannot take
    the test run down with it."""
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text("title: " + "[" * depth + "]" * depth + "\n")
    done = cli(["grant", str(proposal)])
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.splitlines() == [f"planner: error: {proposal}:{expected_line}: nesting deeper than 40 levels"]


def test_block_nesting_points_at_the_line(tmp_path, capsys):
    text = "title: t\n" + "".join(" " * i + "a:\n" for i in range(500)) + " " * 500 + "b: 1\n"
    assert grant_error(tmp_path, capsys, text) == "planner: error: proposal.yaml:42: nesting deeper than 40 levels"


def cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; its output decoded as UTF-8 (click writes UTF-8 to a stream it finds set to ASCII)
    or, failing that, in the encoding the environment sets."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, env=environment, timeout=300,
                          cwd=ROOT)

    def text(data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode(env.get("PYTHONIOENCODING", "utf-8"))

    return subprocess.CompletedProcess(done.args, done.returncode, text(done.stdout), text(done.stderr))


# --- numbers people mistype on the command line ----------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    ("plan --params 7B --tokens 2e12T", "planner plan: error: Invalid value for --tokens: '2e12T' has both an exponent "
     "and a suffix, which multiply (2e12 × T); write one, e.g. 2e12 or 2T"),
    ("plan --flops 1.5e3K", "planner plan: error: Invalid value for --flops: '1.5e3K' has both an exponent and a suffix, "
     "which multiply (1.5e3 × K); write one, e.g. 1.5e3 or 1.5K"),
    ("plan --params 7", "planner: error: --params: 7 parameters is smaller than any model trained (at least 1e5); did you "
     "mean 7B or 7M?"),
    ("plan --params 1B,70", "planner: error: --params: 70 parameters is smaller than any model trained (at least 1e5); "
     "did you mean 70B or 70M?"),
    ("plan --params 7B --tokens 2", "planner: error: --tokens: 2 tokens is fewer than any training run (at least 1e6); "
     "did you mean 2T or 2B?"),
    ("plan --model llama-2-7b --tokens 300", "planner: error: --tokens: 300 tokens is fewer than any training run (at "
     "least 1e6); did you mean 300B or 300M?"),
    ("plan --flops 1e23 --unique-tokens 5", "planner: error: --unique-tokens: 5 tokens is fewer than any training run "
     "(at least 1e6); did you mean 5T or 5B?"),
    ("scaling --params 7 --tokens 2T --cluster juwels-booster", "planner: error: --params: 7 parameters is smaller than "
     "any model trained (at least 1e5); did you mean 7B or 7M?"),
    # hardware the cluster does not have
    ("plan --flops 1e22 --cluster juwels-booster --gpus 5000", "planner: error: --gpus: 5000 exceeds the 3,744 GPUs of "
     "juwels-booster (936 nodes × 4)"),
    ("plan --flops 1e22 --cluster juwels-booster --nodes " + "9" * 300, "planner: error: --nodes: 999999…(300 digits) "
     "exceeds the 936 nodes of juwels-booster"),
    ("scaling --model llama-2-7b --tokens 2T --cluster juwels-booster --nodes 8 --global-batch 4T", "planner: error: "
     "--global-batch: 4e+12 tokens per step is more than the run's 2e+12 tokens: it would not finish one optimizer step"),
    ("scaling --model openclip-vit-b-32 --samples 1e9 --cluster juwels-booster --nodes 4 --global-batch 2e9",
     "planner: error: --global-batch: 2e+09 samples per step is more than the run's 1e+09 samples: it would not finish "
     "one optimizer step"),
])
def test_command_line_inputs(capsys, args, expected):
    code, _, err = run(args, capsys)
    assert error_line(code, err) == expected


def test_a_missing_choice_option_lists_its_choices_on_one_line(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("flops,loss\n1e18,3\n1e19,2.8\n")
    code, _, err = run(["fit", str(data)], capsys)
    assert error_line(code, err) == ("planner fit: error: Missing option '--form'. Choose from: chinchilla, data-constrained, "
                                     "isoflop, overtrain, power, saturating")


# --- hardware: what a success must say --------------------------------------------------------------------


def plan_json(capsys, args: str) -> dict:
    code, out, err = run(args + " --format json", capsys)
    assert check_stderr(code, err) is None
    return json.loads(out)


@pytest.mark.parametrize("args, warning", [
    ("--cluster juwels-booster --gpus 6", "6 GPUs do not fill whole 4-GPU nodes of juwels-booster: the job holds 2 nodes "
     "(8 GPUs), and node-hours and charge count all of them (2 idle)"),
    ("--cluster juwels-booster --nodes 2 --mfu 0.9", "MFU 0.9 is above the measured matmul ceiling of a100-sxm-40gb (0.869 "
     "of its dense bf16 peak, verified): no training run reaches it"),
    ("--accelerator h100-sxm --gpus 8 --mfu 0.85", "MFU 0.85 is above the measured matmul ceiling of h100-sxm (0.803 of "
     "its dense bf16 peak, verified): no training run reaches it"),
])
def test_hardware_warnings(capsys, args, warning):
    plan = plan_json(capsys, f"plan --flops 1e22 {args}")
    assert warning in plan["warnings"]


@pytest.mark.parametrize("args", ["--cluster juwels-booster --gpus 8", "--cluster juwels-booster --nodes 2 --mfu 0.5"])
def test_no_hardware_warning_without_cause(capsys, args):
    plan = plan_json(capsys, f"plan --flops 1e22 {args}")
    assert not [w for w in plan["warnings"] if "whole" in w or "ceiling" in w], plan["warnings"]


def test_a_partly_used_node_is_billed_whole(capsys):
    plan = plan_json(capsys, "plan --flops 1e22 --cluster juwels-booster --gpus 6 --mfu 0.4")
    assert plan["gpus"] == 6 and plan["nodes"] == 2
    assert plan["node_hours"] == pytest.approx(plan["wall_clock_hours"] * 2)


CRITICAL = re.compile(r"800,000 GPUs need at least 4\.1e\+08 tokens per step \(one 4096-token sequence per 8-GPU "
                      r"tensor-parallel group\), \S+x the critical batch at loss 2\.\d+ \(\S+ tokens: Kaplan et al\. 2020 "
                      r"Eq\. 5\.3, McCandlish et al\. 2018\): 450 optimizer steps instead of at least \S+, and the law's "
                      r"loss at that batch needs about \S+x the tokens; plan fewer GPUs")


def test_more_gpus_than_the_critical_batch_can_feed_are_named(capsys):
    plan = plan_json(capsys, "plan --flops 1e22 --cluster cloud-8xh100 --nodes 100000")
    assert plan["wall_clock_hours"] < 0.1  # what went unremarked: a 1e22-FLOP run in a minute
    assert [w for w in plan["warnings"] if CRITICAL.fullmatch(w)], plan["warnings"]


@pytest.mark.parametrize("args", ["--flops 1e22 --cluster cloud-8xh100 --nodes 64",
                                  "--days 1 --nodes all --cluster juwels-booster",
                                  "--model llama-2-7b --tokens 2T --cluster juwels-booster --nodes 64"])
def test_runs_within_the_critical_batch_get_no_batch_warning(capsys, args):
    plan = plan_json(capsys, f"plan {args}")
    assert not [w for w in plan["warnings"] if "critical batch" in w]


def test_the_critical_batch_is_kaplans_eq_5_3():
    from planner.costing.batch import critical_batch

    # B_crit(L) = B* / L^(1/alpha_B) with B* = 2e8 tokens and alpha_B = 0.21: about 2e8 / 2^4.76 = 7.4e6 at L = 2
    assert critical_batch(2.0) == pytest.approx(2e8 / 2 ** (1 / 0.21))
    assert critical_batch(1.0) == pytest.approx(2e8)


# --- catalog overrides -----------------------------------------------------------------------------------


@pytest.fixture
def user_catalog(tmp_path):
    """A user catalog whose juwels-booster replaces the built-in one (one number changed)."""
    root = tmp_path / "site"
    (root / "clusters").mkdir(parents=True)
    builtin = builtin_dir() / "clusters" / "juwels-booster.yaml"
    mine = root / "clusters" / "juwels-booster.yaml"
    mine.write_text(builtin.read_text().replace("node_power_kw: {value: 1.88", "node_power_kw: {value: 2.0"))
    assert mine.read_text() != builtin.read_text()
    return root, mine, builtin


def test_catalog_list_says_which_entry_overrides(capsys, user_catalog):
    root, mine, builtin = user_catalog
    code, out, err = run(["--catalog", str(root), "catalog", "list", "clusters", "--format", "json"], capsys)
    assert check_stderr(code, err) is None
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["juwels-booster"]["overrides"] == f"{mine} over {builtin}"
    assert "overrides" not in rows["jupiter-booster"]


@pytest.mark.parametrize("command, says", [
    ("plan --flops 1e21 --cluster juwels-booster --nodes 8", True),
    ("plan --params 1B,7B --cluster juwels-booster --nodes 8", True),
    ("scaling --model llama-2-7b --tokens 2T --cluster juwels-booster --nodes 8,16", True),
    ("plan --flops 1e21 --cluster jupiter-booster --nodes 8", False),  # does not read juwels-booster
])
def test_every_output_that_uses_an_overridden_entry_says_so(capsys, user_catalog, command, says):
    root, mine, builtin = user_catalog
    code, out, err = run(["--catalog", str(root), *command.split()], capsys)
    assert check_stderr(code, err) is None
    note = f"catalog override: clusters/juwels-booster is read from {mine}, not from {builtin}"
    assert (note in out.splitlines()) == says, out[-800:]


def test_grant_and_sweep_say_so_too(tmp_path, capsys, user_catalog):
    root, mine, builtin = user_catalog
    note = f"catalog override: clusters/juwels-booster is read from {mine}, not from {builtin}"
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(PROPOSAL)
    code, out, err = run(["--catalog", str(root), "grant", str(proposal)], capsys)
    assert check_stderr(code, err) is None and f"- {note}" in out.splitlines()
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    code, out, err = run(["--catalog", str(root), "sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert check_stderr(code, err) is None and note in out.splitlines()


def test_an_overridden_campaign_set_is_named_also_when_the_fit_is_cached(tmp_path, capsys, monkeypatch):
    """The campaign estimator's fit is cached across runs: the second, cached, plan must say what the first says."""
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "site"
    (root / "campaigns").mkdir(parents=True)
    mine = root / "campaigns" / "published-runs.yaml"
    shutil.copy(builtin_dir() / "campaigns" / "published-runs.yaml", mine)
    with mine.open("a") as f:
        f.write("# a site's copy\n")
    note = f"catalog override: campaigns/published-runs is read from {mine}, not from " \
           f"{builtin_dir() / 'campaigns' / 'published-runs.yaml'}"
    for attempt in ("fitted", "cached"):
        code, out, err = run(["--catalog", str(root), "plan", "--flops", "1e21", "--cluster", "juwels-booster"], capsys)
        assert check_stderr(code, err) is None and note in out.splitlines(), attempt
    assert list((tmp_path / "cache").glob("throughput-*.json"))
    code, out, err = run(["--catalog", str(root), "plan", "--flops", "1e21", "--cluster", "juwels-booster", "--mfu", "0.4"],
                         capsys)
    assert check_stderr(code, err) is None and note not in out.splitlines()  # a given MFU reads no campaigns


# --- fits ------------------------------------------------------------------------------------------------


def test_a_power_fit_rising_with_compute_is_flagged(tmp_path, capsys):
    data = tmp_path / "acc.csv"
    data.write_text("flops,acc\n1e18,0.3\n1e19,0.4\n1e20,0.5\n1e21,0.6\n1e22,0.65\n1e23,0.7\n")
    base = ["fit", str(data), "--form", "power", "--x-col", "flops", "--y-col", "acc", "--format", "json"]
    code, out, err = run(base, capsys)
    assert check_stderr(code, err) is None
    warnings = json.loads(out)["warnings"]
    assert ("the fitted exponent alpha = 0.0729 is not negative: acc rises with compute, which no loss or error should "
            "(an accuracy column? fit 1 − accuracy)") in warnings
    code, out, err = run(base + ["--one-minus"], capsys)
    assert check_stderr(code, err) is None
    assert not [w for w in json.loads(out)["warnings"] if "not negative" in w]


# --- law files at the ends of float range ----------------------------------------------------------------

LAW = (builtin_dir() / "laws" / "epoch-2024.yaml").read_text()


@pytest.mark.parametrize("old, new, expected", [
    ('  alpha: {value: 0.3478, source: epoch, note: "95% CI (0.317, 0.373)"}', "  alpha: {value: 1e-300, source: epoch}",
     "loss.alpha: 1e-300 is not a scaling exponent (published fits lie between 0.05 and 0.6; accepted: 0.01 to 2)"),
    ('  beta: {value: 0.3658, source: epoch, note: "95% CI (0.331, 0.415)"}', "  beta: {value: 1e300, source: epoch}",
     "loss.beta: 1e+300 is not a scaling exponent (published fits lie between 0.05 and 0.6; accepted: 0.01 to 2)"),
    ('  A: {value: 482.01, source: epoch, note: "95% CI (285.2, 743.6)"}', "  A: {value: 1e308, source: epoch}",
     "loss: the compute-optimal size N_opt(C) these coefficients give is beyond the range of numbers; check them"),
    ('  B: {value: 2085.43, source: epoch, note: "95% CI (1042.4, 5810.3)"}', "  B: {value: 1e308, source: epoch}",
     "loss: the compute-optimal size N_opt(C) these coefficients give is beyond the range of numbers; check them"),
    ('  E: {value: 1.8172, source: epoch, note: "95% CI (1.769, 1.871)"}', "  E: {value: 1e308, source: epoch}",
     "loss.E: 1e+308 nats per token is no irreducible loss (a cross-entropy is at least 0, and a uniform guess over a "
     "million-token vocabulary is 13.8; accepted: 0 to 100)"),
    ("  flops: [1.4e18, 1.3e22]", "  flops: [0, 1.3e22]",
     "fit_range.flops: [0, 1.3e+22] is not a range of compute (0 < low ≤ high)"),
])
@pytest.mark.parametrize("question", ["--flops 1e22", "--target-loss 2.1", "--params 7B"])
def test_law_file_coefficients(tmp_path, capsys, old, new, expected, question):
    text, line = edit(LAW, old, new)
    law = tmp_path / "law.yaml"
    law.write_text(text)
    code, _, err = run(f"plan {question} --law-file {law}", capsys)
    if expected.startswith("loss: "):  # about the loss as a whole: at its key
        line = text.splitlines().index("loss:") + 1
    assert error_line(code, err) == f"planner: error: {law}:{line}: {expected}"


coefficient = st.sampled_from([0.0, -1.0, 1e-300, 1e-30, 1e-5, 0.011, 0.05, 0.3, 1.0, 1.9, 3.0, 1e5, 1e30, 1e300, 1.7e308])
QUESTIONS = ["--flops 1e22", "--params 7B", "--params 7B --tokens 2T", "--target-loss 2.1", "--params 1B,7B",
             "--flops 1e22 --inference-tokens 1e12", "--flops 1e22 --unique-tokens 1e11",
             "--gpu-hours 1e5 --cluster juwels-booster", "--days 3 --cluster juwels-booster --nodes 4"]


@settings(FUZZ, max_examples=60)
@given(law=st.sampled_from(sorted(p.name for p in (builtin_dir() / "laws").glob("*.yaml"))),
       values=st.lists(coefficient, min_size=6, max_size=6), question=st.sampled_from(QUESTIONS))
def test_law_coefficients_anywhere_in_float_range_never_crash(tmp_path_factory, capsys, law, values, question):
    """Any law file's coefficients replaced by values from 0 to 1.7e308: a plan or one line, never a traceback
    (or a numpy RuntimeWarning on stderr)."""
    import yaml

    data = yaml.safe_load((builtin_dir() / "laws" / law).read_text())
    slots = [v for part in ("loss", "allocation", "data_constrained") if isinstance(data.get(part), dict)
             for v in data[part].values() if isinstance(v, dict) and "value" in v]
    for slot, value in zip(slots, values):
        slot["value"] = value
    path = tmp_path_factory.mktemp("law") / "law.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = run(f"plan {question} --law-file {path}", capsys)
    check_stderr(code, err)


# --- the top level: one line for everything ---------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_with_exit_1_and_debug_shows_the_traceback(capsys, monkeypatch):
    import planner.costing.plan

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(planner.costing.plan, "make_plan", broken)
    line = ("planner: internal error: ZeroDivisionError: float division by zero (a bug in the planner: please report it "
            "with the traceback from `planner --debug ...`)")
    code, _, err = run("plan --flops 1e21", capsys)
    assert code == 1 and err.splitlines()[-1] == line and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if "error" in ln]) == 1
    code, _, err = run("--debug plan --flops 1e21", capsys)
    assert code == 1 and "Traceback (most recent call last)" in err and "in broken" in err and err.splitlines()[-1] == line


def test_debug_shows_where_bad_input_was_found(capsys):
    code, _, err = run("--debug plan --params 7", capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and "planner/costing/plan.py" in err
    assert err.splitlines()[-1].startswith("planner: error: --params: 7 parameters")


def test_memory_exhausted_by_the_input_is_bad_input(capsys, monkeypatch):
    import planner.costing.plan

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(planner.costing.plan, "make_plan", exhausted)
    code, _, err = run("plan --flops 1e21", capsys)
    assert error_line(code, err) == ("planner: error: out of memory: the input asks for more than this machine holds "
                                     "(fewer runs, points or node counts?)")


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
@pytest.mark.parametrize("args", [["plan", "--flops", "1e21", "--cluster", "juwels-booster", "--nodes", "8"],
                                  ["plan", "--params", "7"]])
def test_a_terminal_without_unicode_gets_escapes_not_a_traceback(encoding, args):
    done = cli(args, PYTHONIOENCODING=encoding)
    assert "Traceback" not in done.stderr and done.returncode in (0, 2), done.stderr[-2000:]
    if done.returncode == 0:
        assert "law: epoch-2024 \\u2014 L(N,D)" in done.stdout or "law: epoch-2024 — L(N,D)" in done.stdout
    else:
        assert len(done.stderr.splitlines()) == 1


# --- the number parser -----------------------------------------------------------------------------------

mantissas = st.one_of(st.integers(min_value=0, max_value=10**6).map(str),
                      st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.6g}"
                                                                                  if "e" not in f"{f:.6g}" else "1.5"),
                      st.just(".5"), st.just("7."))
exponents = st.integers(min_value=-30, max_value=30).map(lambda e: f"e{e:+d}") | st.sampled_from(["e9", "E3", "e-2"])
suffixes = st.sampled_from(sorted(SUFFIXES))


@settings(max_examples=500, deadline=None)
@given(mantissa=mantissas, exponent=st.none() | exponents, suffix=suffixes, sign=st.sampled_from(["", "-", "+"]),
       pad=st.sampled_from(["", " "]))
def test_accepted_numbers_round_trip_and_exponent_with_suffix_is_refused(mantissa, exponent, suffix, sign, pad):
    text = f"{pad}{sign}{mantissa}{exponent or ''}{suffix}{pad}"
    if exponent and suffix:
        with pytest.raises(ValueError, match="has both an exponent and a suffix"):
            parse_quantity(text)
        return
    value = parse_quantity(text)
    expected = float(f"{sign}{mantissa}{exponent or ''}") * SUFFIXES[suffix]
    assert value == expected and value == value  # not NaN
    assert parse_quantity(repr(value)) == value  # what the parser gives back it reads again


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=30) | st.from_regex(r"\s*[+-]?\d{0,400}\.?\d{0,5}([eE][+-]?\d{1,4})?\s*[kKMBGTPx]?\s*",
                                                 fullmatch=True))
def test_the_number_parser_refuses_with_value_error_only(text):
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc).replace(text.strip(), "")  # one line, but for the input it quotes
    else:
        assert isinstance(value, float) and value == value


@settings(FUZZ, max_examples=80)
@given(text=st.from_regex(r"[0-9.]{1,6}([eE][+-]?[0-9]{1,3})?[kKMBGTP]?", fullmatch=True),
       option=st.sampled_from(["--params", "--tokens", "--flops"]))
def test_any_number_on_the_command_line_is_a_plan_or_one_line(capsys, text, option):
    args = ["plan", option, text] + (["--params", "7B"] if option == "--tokens" else [])
    code, _, err = run(args, capsys)
    line = check_stderr(code, err)
    if re.search(r"[eE][+-]?\d+[kKMBGTP]$", text) and re.fullmatch(r"(\d+\.?\d*|\.\d+)[eE].*", text):
        assert line is not None and "has both an exponent and a suffix" in line


@pytest.mark.parametrize("options, expected", [
    ({"flops": 1e21, "cluster": "juwels-booster", "nodes": "x"},
     "nodes: Input should be a valid integer, unable to parse string as an integer"),
    ({"flops": 1e21, "cluster": "juwels-booster", "gpus": 5000}, "gpus: 5000 exceeds the 3,744 GPUs of juwels-booster "
     "(936 nodes × 4)"),
    ({"params": 7}, "params: 7 parameters is smaller than any model trained (at least 1e5); did you mean 7B or 7M?"),
])
def test_the_python_api_names_fields_without_pydantic_internals(catalog, options, expected):
    import planner
    from planner.errors import PlannerError

    with pytest.raises(PlannerError) as caught:
        planner.plan(catalog, **options)
    assert str(caught.value) == expected and "constrained" not in str(caught.value)
