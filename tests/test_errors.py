"""Errors by field: the domain says what is wrong about which input, in its own words; each front end
spells the input its way (the CLI as the flag of the command that ran, a YAML file as `file:line:
key`). Nothing below planner/cli/ names a flag, and warnings are picked by topic, never by text."""

import ast
import re
from pathlib import Path

import pytest
from cli_helpers import run

from planner.costing.plan import PlanRequest, make_plan
from planner.costing.scaling import strong_scaling
from planner.errors import FileLocator, PlannerError, PlannerWarning, located
from planner.grant.build import build, load_proposal

PACKAGE = Path(__file__).resolve().parent.parent / "planner"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

# Strings that look like flags but are not planner's: the sbatch and srun options of the Slurm scripts
# a sweep writes (and the comments and docstrings about them), and submit.sh's own --test-only.
NOT_PLANNER_FLAGS = {
    "planner/sweep/slurm.py": {"--time", "--output", "--error", "--cpus-per-task", "--test-only", "--parsable", "--dependency",
                               "--requeue"},
    "planner/sweep/resubmit.py": {"--array", "--parsable", "--dependency"},
}


def flags_in_strings(path: Path) -> list[tuple[int, str]]:
    """(line, flag) for every `--name` inside a string literal (docstrings and f-string parts included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, flag) for flag in FLAG.findall(node.value)]
    return found


def test_nothing_below_the_cli_names_a_flag():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel.startswith("planner/cli/"):
            continue
        allowed = NOT_PLANNER_FLAGS.get(rel, set())
        offenders += [f"{rel}:{line}: {flag}" for line, flag in flags_in_strings(path) if flag not in allowed]
    assert not offenders, "flags belong to planner/cli/; give the error a field instead:\n" + "\n".join(offenders)


def test_the_flag_scan_sees_strings_docstrings_and_f_strings(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""Uses --law."""\nx = f"give --mfu {1}"  # --not-a-string\ny = "a -- b; ---x; e--mail"\n')
    assert flags_in_strings(probe) == [(1, "--law"), (2, "--mfu")]


# --- one domain error, three front ends -------------------------------------------------------------

DTYPE = "the campaign estimator is calibrated on bf16/fp16 training, not fp8; give {mfu} (e.g. 0.3)"
NODES = "99999 exceeds the 936 nodes of juwels-booster"


def error_line(capsys, args) -> str:
    code, out, err = run(args, capsys)
    lines = [line for line in err.splitlines() if line.startswith("planner: error:")]  # not the progress lines
    assert code == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_cli_names_the_flag(capsys):
    line = error_line(capsys, "plan --params 1e9 --tokens 2e10 --cluster jupiter-booster --dtype fp8")
    assert line == "planner: error: --dtype: " + DTYPE.format(mfu="--mfu")
    line = error_line(capsys, "plan --params 1e9 --tokens 2e10 --cluster juwels-booster --nodes 99999")
    assert line == f"planner: error: --nodes: {NODES}"
    # raised inside the request's validator, through pydantic, field and references intact
    line = error_line(capsys, "plan --flops 1e21 --params 1e9")
    assert line == "planner: error: --flops: conflicts with --params (both fix the model); give one"


def test_the_cli_spells_a_field_by_the_option_of_the_command_that_ran(capsys):
    # `scaling` calls its node counts node_counts; the domain says nodes; both are --nodes
    line = error_line(capsys, "scaling --params 7e9 --tokens 1.4e11 --cluster juwels-booster --nodes 8,99999")
    assert line == "planner: error: --nodes: 99999 nodes exceed the 936 nodes of juwels-booster"
    # `memory` has --zero and --fsdp, named inside the message too
    line = error_line(capsys, "memory --model deepseek-v3 --cluster jupiter-booster --nodes 128 --ep 8 --fsdp full_shard")
    assert line == "planner: error: --ep: is modelled with Megatron-style ZeRO stages (--zero), not with FSDP (--fsdp)"


SPEC = """\
name: t
cluster: jupiter-booster
command: echo {run_id}
dtype: fp8
sweep:
  kind: list
  runs: [{params: 1e9, tokens: 2e10}]
"""


def test_a_sweep_spec_names_its_file_line_and_key(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    line = error_line(capsys, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert line == f"planner: error: {spec}:4: dtype: " + DTYPE.format(mfu="mfu")
    assert "--" not in line.removeprefix("planner: error: ")
    assert not (tmp_path / "out").exists()


PROPOSAL = """\
title: t
program: custom
cluster: {cluster}
start: 2027-04
months: 12
{extra}experiments:
  - name: r
    params: 1e9
    tokens: 2e10
    nodes: {nodes}
"""


def test_a_proposal_names_its_file_line_and_key(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(PROPOSAL.format(cluster="juwels-booster", extra="", nodes=99999))
    line = error_line(capsys, ["grant", str(path)])
    assert line == f"planner: error: {path}:10: experiments.0.nodes: {NODES}"
    assert "--" not in line.removeprefix("planner: error: ")
    # a field the experiment does not have is the proposal's key
    path.write_text(PROPOSAL.format(cluster="jupiter-booster", extra="dtype: fp8\n", nodes=4))
    assert error_line(capsys, ["grant", str(path)]) == f"planner: error: {path}:6: dtype: " + DTYPE.format(mfu="mfu")


def test_an_experiment_key_is_preferred_to_the_proposal_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROPOSAL.format(cluster="juwels-booster", extra="mfu: 0.4\n", nodes=2)
                    + "    mfu: 0.3\n  - {name: s, params: 1e9, tokens: 2e10, nodes: 2}\n")
    _, where, _ = load_proposal(path)
    assert where.key("mfu", ("experiments", 0)) == ("experiments", 0, "mfu")  # stated in the experiment: line 12
    assert where.key("mfu", ("experiments", 1)) == ("mfu",)  # not stated there: the proposal's, line 6
    assert where.key("dtype", ("experiments", 1)) == ("dtype",)
    assert where.key("nodes", ("scaling", 0)) == ("scaling", 0, "nodes")
    assert where.key("gpus", ("experiments", 0)) is None
    err = where.error(("experiments", 1), PlannerError("must be at most 1", "mfu"))
    assert str(err) == f"{path}:6: mfu: must be at most 1"


class Lines(FileLocator):
    filename = "f.yaml"
    lines = {(): 1, ("a",): 2, ("a", "nodes"): 3}

    def key(self, name, near):
        return near + (name,) if name == "nodes" else None


def test_located_places_an_error_at_its_field_and_spells_its_references():
    with pytest.raises(PlannerError) as exc, located(Lines(), "a"):
        raise PlannerError("needs {cluster} (no node size without one); use {gpus}", "nodes", refs=("cluster", "gpus"))
    assert str(exc.value) == "f.yaml:3: a.nodes: needs cluster (no node size without one); use gpus"
    assert exc.value.where == "f.yaml:3" and exc.value.field == ("a", "nodes")
    with pytest.raises(PlannerError) as outer, located(Lines(), "b"):
        raise exc.value  # located once: an outer block does not locate it again
    assert outer.value is exc.value
    with pytest.raises(PlannerError) as no_key, located(Lines(), "a"):
        raise PlannerError("unknown thing", "colour")  # the file has no key for it: at the block's path
    assert str(no_key.value) == "f.yaml:2: a: unknown thing"


def test_the_domain_error_spelled_three_ways():
    err = PlannerError("needs {cluster}; use {gpus}", "nodes", refs=("cluster", "gpus"))
    assert err.message == "needs {cluster}; use {gpus}" and err.field == ("nodes",)
    assert str(err) == "nodes: needs cluster; use gpus"
    assert err.text(lambda name: "--" + name) == "--nodes: needs --cluster; use --gpus"
    assert str(PlannerError("no field", refs=())) == "no field"


# --- warnings by topic ------------------------------------------------------------------------------


def test_warnings_have_known_topics_and_read_as_their_message():
    w = PlannerWarning("energy", "alps node_power_kw = 3.1 is unverified")
    assert str(w) == w.message and f"warning: {w}" == "warning: alps node_power_kw = 3.1 is unverified"
    with pytest.raises(ValueError, match="unknown warning topic"):
        PlannerWarning("enrgy", "x")


def test_scaling_and_grant_leave_warnings_out_by_topic(catalog, tmp_path):
    """Alps's node power and accounting are unverified: a plan says both; a scaling table (no charge, no
    energy) neither; a grant (energy is not part of a request) the accounting only."""
    run_7b = dict(params=[7e9], tokens=1.4e11, cluster="alps")
    plan = make_plan(PlanRequest(**run_7b, nodes=8), catalog)
    assert {"charge", "energy"} <= {w.topic for w in plan.warnings}
    table = strong_scaling(PlanRequest(**run_7b), catalog, [8, 16])
    assert not {"charge", "energy"} & {w.topic for w in table.warnings}
    path = tmp_path / "p.yaml"
    path.write_text(PROPOSAL.format(cluster="alps", extra="", nodes=8))
    p, where, base = load_proposal(path)
    topics = {w.topic for w in build(p, where, base, catalog).warnings}
    assert "charge" in topics and "energy" not in topics
