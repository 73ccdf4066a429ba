"""The wording of errors about YAML files: `file:line: field: message`, with the file, the line and the field
exact. Each case breaks one known line of a sweep spec, a grant proposal or a catalog file; the tests fail if
the file name, the line number or the field name is dropped or shifted."""

import pytest
from cli_helpers import check_stderr, run

from planner.catalog import builtin_dir

SWEEP = """\
# An IsoFLOP sweep; comments and a blank line so that line numbers are not key counts.
name: iso

cluster: juwels-booster
law: chinchilla-approach3
nodes: 1
command: echo {run_id}
sweep:
  kind: isoflop
  budgets: [1e18, 1e19]
  points: 3
  span: 4
"""

PROPOSAL = """\
# A proposal with two experiments.
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
  - name: clip
    model: openclip-vit-b-32
    samples: 1e9
    nodes: 2
"""


def edit(text: str, old: str, new: str) -> tuple[str, int]:
    """`text` with the one line `old` replaced by `new`, and that line's number (1-based)."""
    lines = text.splitlines(keepends=True)
    numbers = [i for i, ln in enumerate(lines, 1) if ln.rstrip("\n") == old]
    assert len(numbers) == 1, (old, numbers)
    lines[numbers[0] - 1] = new + "\n" if new is not None else ""
    return "".join(lines), numbers[0]


@pytest.mark.parametrize("old, new, field, message", [
    ("  budgets: [1e18, 1e19]", "  budgets: [1e18, abc]", "sweep.budgets.1", "'abc' is not a number"),  # schema, in a list
    ("nodes: 1", "nodez: 1", "nodez", "unknown field; did you mean 'nodes'?"),                      # a misspelt key
    ("nodes: 1", "nodes: 0", "nodes", "Input should be greater than or equal to 1"),                  # a union's member
    ("  span: 4", "  span: 0.5", "sweep.span", "Input should be greater than 1"),
    ("law: chinchilla-approach3", "law: no-such-law", "law", "unknown law 'no-such-law'"),            # the catalog (Source.error)
    ("cluster: juwels-booster", "cluster: no-such-cluster", "cluster", "unknown cluster 'no-such-cluster'"),
    ("command: echo {run_id}", "command: echo {runid}", "command", "unknown placeholder {runid}; did you mean {run_id}?"),
    ("nodes: 1", "name: again", "name", "duplicate key"),                                            # yamlio's own checks
    ("name: iso", "name: iso: x", "invalid YAML", "mapping values are not allowed"),
])
def test_sweep_spec_errors_name_file_line_and_field(tmp_path, capsys, old, new, field, message):
    text, line = edit(SWEEP, old, new)
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:{line}: {field}: {message}"), err


@pytest.mark.parametrize("old, new, field, message", [
    ("    tokens: 1.4e11", "    tokens: lots", "experiments.0.tokens", "'lots' is not a number"),      # schema (parse_model)
    ("    nodes: 8", "    nodes: 0", "experiments.0.nodes", "Input should be greater than or equal to 1"),
    ("    nodes: 8", "    nodez: 8", "experiments.0.nodez", "unknown field"),
    ("months: 12", "months: 100", "months", "Input should be less than or equal to 60"),
    ("    model: openclip-vit-b-32", "    model: no-such-model", "experiments.1.model", "unknown model 'no-such-model'"),
    ("    nodes: 2", "    nodes: 100000", "experiments.1.nodes", "100000 exceeds the 936 nodes of juwels-booster"),
    ("cluster: juwels-booster", "cluster: no-such-cluster", "cluster", "unknown cluster 'no-such-cluster'"),  # Where.error
])
def test_proposal_errors_name_file_line_and_field(tmp_path, capsys, old, new, field, message):
    text, line = edit(PROPOSAL, old, new)
    spec = tmp_path / "proposal.yaml"
    spec.write_text(text)
    code, _, err = run(["grant", str(spec)], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:{line}: {field}: {message}"), err


def test_a_missing_field_is_reported_at_its_parent(tmp_path, capsys):
    """No line holds a missing field: the error points at the mapping that lacks it (the top level starts at
    line 2, after the comment; experiment 1 at its `- name:` line)."""
    spec = tmp_path / "proposal.yaml"
    spec.write_text(edit(PROPOSAL, "title: t", None)[0])
    code, _, err = run(["grant", str(spec)], capsys)
    assert check_stderr(code, err) == f"planner: error: {spec}:2: title: required field missing"
    text, _ = edit(PROPOSAL, "    samples: 1e9", "    tokens: 1e9")
    spec.write_text(text)
    code, _, err = run(["grant", str(spec)], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:12: experiments.1.samples: openclip-vit-b-32 is a "
                                              "CLIP model: give samples"), err


ACCELERATOR = builtin_dir() / "accelerators" / "h100-sxm.yaml"


def _accelerator(tmp_path, old, new):
    text, line = edit(ACCELERATOR.read_text(), old, new)
    target = tmp_path / "accelerators" / ACCELERATOR.name
    target.parent.mkdir()
    target.write_text(text)
    return target, line


def test_catalog_file_errors_name_file_line_and_field(tmp_path, capsys):
    """The same error from `catalog validate` (file:line: field: message) and from a command that loads the file
    from --catalog (planner: error: file:line: field: message)."""
    target, line = _accelerator(tmp_path, "memory_gb: {value: 80, source: h100-table, note: HBM3}",
                                "memory_gb: {value: lots, source: h100-table, note: HBM3}")
    assert line == 20
    problem = f"{target}:{line}: memory_gb.value: Input should be a valid number"
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2 and err.splitlines()[0].startswith(problem) and err.splitlines()[1:] == ["1 files checked, 1 errors"], err
    code, _, err = run(["--catalog", str(tmp_path), "plan", "--flops", "1e21", "--accelerator", "h100-sxm", "--gpus", "8"], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {problem}"), err


def test_catalog_validate_names_every_problem_at_its_line(tmp_path, capsys):
    target, line = _accelerator(tmp_path, "tdp_w: {value: 700, source: h100-table}", "tdp_ww: {value: 700, source: h100-table}")
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2
    valid = ("name, title, notes, sources, vendor, peak_tflops, sparse_factor, memory_gb, hbm_bandwidth_tbs, link, tdp_w, "
             "matmul_ceiling, architecture, schedulable_unit")
    assert err.splitlines() == [f"{target}:{line}: tdp_ww: unknown field; did you mean 'tdp_w'? (valid: {valid})",
                                f"{target}:2: tdp_w: required field missing",  # the mapping starts at line 2
                                "1 files checked, 2 errors"]
