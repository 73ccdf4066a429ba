"""Hardening II (issue 12), sweep and fit: sbatch keys that sbatch would read as the planner's own options,
accounts and shell code that would break the job script, hostile manifests and result files for
`planner collect`, and fits on large inputs (bounded memory, Ctrl-C, limits on --bins and --bootstrap).
Each bad input is one case; each case's error is checked as the exact line the user gets."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import check_stderr, run

from planner.sweep import slurm
from planner.sweep.design import design, load_spec
from planner.sweep.rules import SBATCH_OPTIONS, quoting_problem, sbatch_key_problem

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
name: t
cluster: juwels-booster
law: chinchilla-approach3
account: acct
command: echo {run_id} {params} {tokens}
"""
SWEEP = "sweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}, {params: 2e8, tokens: 4e9}]}\n"


def spec_file(tmp_path: Path, body: str = "", base: str = SPEC) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(base + textwrap.dedent(body) + SWEEP)
    return path


def sweep_error(capsys, tmp_path: Path, spec: Path, *extra: str) -> str:
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "out"), *extra], capsys)
    line = check_stderr(code, err)
    assert code == 2 and out == "" and not (tmp_path / "out").exists(), err
    assert line is not None
    return line


# --- sbatch keys: what sbatch's getopt_long would make of them ---------------------------------------

MANAGED_MSG = "set by the planner (from nodes, partition, account, time_margin, ...); not allowed here"


@pytest.mark.parametrize("key, message", [
    # a unique prefix of an option the planner sets: sbatch would override the planner's line with it
    ("arr", "sbatch reads it as 'array', which the planner sets; not allowed here"),
    ("outp", "sbatch reads it as 'output', which the planner sets; not allowed here"),
    ("dep", "sbatch reads it as 'dependency', which the planner sets; not allowed here"),
    ("job", "sbatch reads it as 'job-name', which the planner sets; not allowed here"),
    ("tasks-per", "sbatch reads it as 'tasks-per-node', which the planner sets; not allowed here"),
    # an alias of one the planner sets
    ("tasks-per-node", MANAGED_MSG),
    ("time", MANAGED_MSG),
    # ambiguous: sbatch refuses the whole script at submit time
    ("tim", "ambiguous: sbatch cannot tell which of 'time' (set by the planner) or 'time-min' it means; write the option in full"),
    ("acc", "ambiguous: sbatch cannot tell which of 'account' (set by the planner) or 'acctg-freq' it means; write the option in full"),
    ("mail", "ambiguous: sbatch cannot tell which of 'mail-type' or 'mail-user' it means; write the option in full"),
    # a unique prefix of an option the planner leaves alone: today's sbatch reads it, a later one may not
    ("mail-t", "sbatch reads it as 'mail-type': write the option in full"),
    # not an option at all
    ("memory", "not an sbatch option (Slurm 22.05); did you mean 'mem'?"),
    ("qqq", "not an sbatch option (Slurm 22.05)"),
])
def test_sbatch_keys_are_read_as_sbatch_reads_them(tmp_path, capsys, key, message):
    spec = spec_file(tmp_path, f"sbatch: {{{key}: '1'}}\n")
    assert sweep_error(capsys, tmp_path, spec) == f"planner: error: {spec}:6: sbatch.{key}: {message}"


@pytest.mark.parametrize("key", ["mem", "qos", "mail-type", "constraint", "exclusive", "time-min", "cluster"])
def test_full_names_of_options_the_planner_leaves_alone_are_written(tmp_path, capsys, key):
    spec = spec_file(tmp_path, f"sbatch: {{{key}: 'x1'}}\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert f"#SBATCH --{key}=x1\n" in (tmp_path / "out" / "arrays" / "a00.sbatch").read_text()


SBATCH = shutil.which("sbatch")


def sbatch_version() -> str:
    if SBATCH is None:
        return ""
    return subprocess.run([SBATCH, "--version"], capture_output=True, text=True).stdout


@pytest.mark.skipif("22.05." not in sbatch_version(), reason="needs sbatch of Slurm 22.05, whose options the list holds")
def test_the_option_list_is_the_installed_sbatchs():
    """`sbatch --c=1` lists every long option starting with c (it is ambiguous): the list must hold exactly those."""
    seen: set[str] = set()
    for letter in "abcdeghimnopqrstuvw":  # the letters with more than one option (j, k, l: one each)
        err = subprocess.run([SBATCH, "--test-only", f"--{letter}=1", "--wrap=true"], capture_output=True, text=True,
                             timeout=30).stderr
        found = set(re.findall(r"'--([a-z-]+)'", err.splitlines()[0]))
        assert found == {o for o in SBATCH_OPTIONS if o.startswith(letter)}, err
        seen |= found
    assert SBATCH_OPTIONS - seen == {"job-name", "kill-on-invalid-dep", "licenses"}


@pytest.mark.skipif("22.05." not in sbatch_version(), reason="needs sbatch of Slurm 22.05, whose options the list holds")
@pytest.mark.parametrize("key", ["tim", "acc", "a", "cont", "clust", "mail", "qqq", "memory", "gpus-per"])
def test_keys_refused_as_ambiguous_or_unknown_are_so_for_sbatch(key):
    err = subprocess.run([SBATCH, "--test-only", f"--{key}=1", "--wrap=true"], capture_output=True, text=True, timeout=30).stderr
    problem = sbatch_key_problem(key)
    assert problem is not None
    assert ("is ambiguous" in err) == problem.startswith("ambiguous"), err
    assert ("unrecognized option" in err) == problem.startswith("not an sbatch option"), err


# --- the account and the shell code that land in the job script -----------------------------------


@pytest.mark.parametrize("account", ["proj\n", "\nproj", "pr oj", "proj\r", "-proj"])
def test_an_account_that_is_not_a_plain_name_is_refused(tmp_path, capsys, account):
    line = sweep_error(capsys, tmp_path, spec_file(tmp_path), "--account", account)
    assert line == f"planner: error: --account: {account!r} must be letters, digits, '.', '_' or '-'"


@pytest.mark.parametrize("command, problem", [
    ("echo 'unclosed", "a quote (') is not closed"),
    ('echo "unclosed', 'a quote (") is not closed'),
    ("echo `date", "a backquote (`) is not closed"),
    ("echo $'it\\'s", "a quote ($') is not closed"),
    ("echo it's {run_id}", "a quote (') is not closed"),
    ("cat <<EOF\nno end", "the here-document <<EOF is not ended by a line 'EOF'"),
])
def test_a_command_with_unclosed_quoting_is_refused_at_its_line(tmp_path, capsys, command, problem):
    spec = spec_file(tmp_path, base=SPEC.replace("echo {run_id} {params} {tokens}", json.dumps(command)))
    line = sweep_error(capsys, tmp_path, spec)
    assert line == f"planner: error: {spec}:5: command: {problem}: the job script would not run"


def test_setup_lines_are_shell_code_too(tmp_path, capsys):
    spec = spec_file(tmp_path, "setup: [module load x, echo \"it's]\n")
    assert sweep_error(capsys, tmp_path, spec) == (f"planner: error: {spec}:6: setup: a quote (\") is not closed: "
                                                   "the job script would not run")


# commands bash accepts and rejects, among them the cases a naive quote count gets wrong
SHELL_CODE = [
    "echo {run_id}",
    "echo \"it's\" 'say \"hi\"'",
    "echo it\\'s",
    "echo $'it\\'s'",
    "echo $$'x'",
    "# a comment that says don't\necho ok",
    "echo ok # don't",
    "echo a#'b",
    "echo ${#HOME} \"${HOME#/}\"",
    "echo $((1 << 2)) $(( 8 >> 1 ))",
    "cat <<EOF\nit's\nEOF\necho after",
    "cat <<-'E F'\n\tit's\n\tE F",
    "cat <<\"EOF\" <<B\n'\nEOF\n\"\nB",
    "cat <<EOF\nno end",
    "cat <<EOF\nEOF2",
    "echo \"$(echo \"nested\")\"",
    "echo `echo ok`",
    "echo 'unclosed",
    "echo \"unclosed",
    "echo `unclosed",
    "echo $'unclosed\\'",
    "echo \"escaped \\\" quote",
    "echo trailing \\",
    "srun python train.py --out \"runs/{run_id}\" && touch \"{done_file}\"",
]


@pytest.mark.parametrize("command", SHELL_CODE)
def test_the_quoting_check_agrees_with_bash_n_on_the_generated_script(tmp_path, catalog, command):
    """Render the job script with the command unchecked (as before the check existed) and ask bash."""
    spec, src = load_spec(spec_file(tmp_path))
    sw = design(spec, src, catalog, tmp_path / "out")
    sw.spec = spec.model_copy(update={"command": command})
    script = tmp_path / "a00.sbatch"
    script.write_text(slurm.array_script(sw, sw.arrays[0]))
    bash = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert (quoting_problem(command) is None) == (bash.returncode == 0), (quoting_problem(command), bash.stderr)
