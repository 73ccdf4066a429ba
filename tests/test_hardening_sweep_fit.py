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


# --- collect: the manifest and the result files are input like any other -------------------------


@pytest.fixture(scope="module")
def swept_once(tmp_path_factory):
    out = tmp_path_factory.mktemp("swept") / "sweep"
    spec = out.parent / "spec.yaml"
    spec.write_text(SPEC + SWEEP)
    code, _, err = run(["sweep", str(spec), "--out", str(out)])
    assert code == 0, err
    return out


@pytest.fixture
def swept(swept_once, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(swept_once, out)
    return out


def manifest_lines(out: Path) -> list[list[str]]:
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.reader(handle))


def short(value: object) -> str | None:
    """Test ids for long inputs (100,000 brackets) that stay readable."""
    return value[:40] if isinstance(value, str) else None


def collect_error(capsys, out: Path) -> str:
    code, stdout, err = run(["collect", str(out)], capsys)
    line = check_stderr(code, err)
    assert code == 2 and stdout == "" and line is not None, err
    return line


def edit_row(row: list[str], header: list[str], column: str, value: str) -> list[str]:
    row = list(row)
    row[header.index(column)] = value
    return row


@pytest.mark.parametrize("edit, message", [
    (lambda h, r: r[:-1], f"2: {len(slurm.COLUMNS) - 1} fields, the header has {len(slurm.COLUMNS)}"),
    (lambda h, r: r + ["x"], f"2: {len(slurm.COLUMNS) + 1} fields, the header has {len(slurm.COLUMNS)}"),
    (lambda h, r: edit_row(r, h, "params", "lots"), "2: params: 'lots' is not a positive number"),
    (lambda h, r: edit_row(r, h, "tokens", "1_000"), "2: tokens: '1_000' is not a positive number"),
    (lambda h, r: edit_row(r, h, "params", ""), "2: params: '' is not a positive number"),
    (lambda h, r: edit_row(r, h, "params", "-5"), "2: params: '-5' is not a positive number"),
    (lambda h, r: edit_row(r, h, "gpu_hours", "nan"), "2: gpu_hours: 'nan' is not a number"),
    (lambda h, r: edit_row(r, h, "flops", " 1e18"), "2: flops: ' 1e18' is not a number"),
    (lambda h, r: edit_row(r, h, "run_id", "/etc/passwd"),
     "2: run_id: '/etc/passwd' is not a run id (letters, digits, '.', '_' and '-', the name of a file in results/)"),
    (lambda h, r: edit_row(r, h, "run_id", "../../x"),
     "2: run_id: '../../x' is not a run id (letters, digits, '.', '_' and '-', the name of a file in results/)"),
    (lambda h, r: edit_row(r, h, "run_id", ".."),
     "2: run_id: '..' is not a run id (letters, digits, '.', '_' and '-', the name of a file in results/)"),
    (lambda h, r: edit_row(r, h, "run_id", "t-1-N200M-D4B"), "3: run_id: t-1-N200M-D4B appears twice"),
])
def test_a_bad_manifest_row_is_one_line_at_its_line(swept, capsys, edit, message):
    header, *rows = manifest_lines(swept)
    assert rows[1][0] == "t-1-N200M-D4B"
    rows[0] = edit(header, rows[0])
    with open(swept / "manifest.csv", "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    (swept / "results").mkdir()
    (swept / "results" / "t-1-N200M-D4B").write_text("2.5\n")
    assert collect_error(capsys, swept) == f"planner: error: {swept / 'manifest.csv'}:{message}"


def test_a_manifest_that_is_not_utf8_is_one_line(swept, capsys):
    (swept / "manifest.csv").write_bytes((swept / "manifest.csv").read_bytes() + b"\xff\xfe,\n")
    assert collect_error(capsys, swept) == f"planner: error: {swept / 'manifest.csv'}: not UTF-8 text"


@pytest.mark.parametrize("content, message", [
    ('{"loss": 2.5, "loss": 9.9}', "loss: appears twice in the JSON object"),
    ('{"eval": {"x": 1, "x": 2}}', "x: appears twice in the JSON object"),
    ("1_000", "expected a number (the final loss) or a JSON object of numbers"),
    ('{"loss": 1_000}', "expected a number (the final loss) or a JSON object of numbers"),
    ("0x10", "expected a number (the final loss) or a JSON object of numbers"),
    ("2.5 nats", "expected a number (the final loss) or a JSON object of numbers"),
    ("[" * 100_000, 'nested too deeply; expected a JSON object of numbers, e.g. {"loss": 2.31}'),
    ('{"loss": ' + "[" * 100_000 + "]" * 100_000 + "}", 'nested too deeply; expected a JSON object of numbers, e.g. {"loss": 2.31}'),
    ('{"loss": [2.5]}', "loss: a JSON array is not a number"),
    ('{"loss": {"v": 2.5}}', "loss: a JSON object is not a number"),
    ('{"flops_6nd": 1e20}', "flops_6nd: the manifest already gives this field"),
], ids=short)
def test_a_bad_result_file_is_one_line(swept, capsys, content, message):
    (swept / "results").mkdir()
    path = swept / "results" / "t-0-N100M-D2B"
    path.write_text(content)
    assert collect_error(capsys, swept) == f"planner: error: {path}:1: {message}"


@pytest.mark.parametrize("content, loss", [(" 2.5\n", 2.5), ("1e0", 1.0), ('{"loss": 3}', 3.0), ("-inf", None), ("NaN", None),
                                           ('{"loss": ' + "9" * 5000 + "}", None)], ids=short)
def test_numbers_a_program_prints_are_read(swept, capsys, content, loss):
    (swept / "results").mkdir()
    (swept / "results" / "t-0-N100M-D2B").write_text(content)
    code, out, err = run(["collect", str(swept), "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["rows"][0]["loss"] == loss


# --- fit: every documented input size finishes in bounded memory, and Ctrl-C ends it --------------

GIB = 1 << 30
LARGE_ROWS = 200_000


def bench_module():
    """benchmarks/bench_fit_large.py: its generator of rows from a known law (the benchmark's own data)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_fit_large", ROOT / "benchmarks" / "bench_fit_large.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("large") / "runs.csv"
    bench_module().write_rows(path, LARGE_ROWS)
    return path


@pytest.fixture(scope="module")
def large_repeated_csv(tmp_path_factory) -> Path:
    """The same rows, a fifth of them repeating their data (what the data-constrained form reads)."""
    path = tmp_path_factory.mktemp("large") / "repeated.csv"
    bench_module().write_rows(path, LARGE_ROWS, repeats=True)
    return path


def planner_process(args: list[str], memory_limit: int | None = None, **popen) -> subprocess.Popen:
    """`python -m planner ARGS` importing this checkout, optionally under an address-space limit."""
    def limit() -> None:
        if memory_limit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "planner", *args], env=env, preexec_fn=limit, **popen)


def run_limited(args: list[str], tmp_path: Path) -> tuple[int, int, str, str]:
    """`planner ARGS` under RLIMIT_AS = 1 GiB (an allocation beyond it is a MemoryError): exit code, peak
    RSS in bytes (wait4: this child alone), stdout, stderr."""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = planner_process(args, memory_limit=GIB, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, out.read_text(), err.read_text()


@pytest.mark.parametrize("form", list(bench_module().FORMS))
def test_a_large_fit_stays_under_1_gib(large_csv, large_repeated_csv, tmp_path, form):
    """Every registered form on 200,000 rows, within 1 GiB of address space and of peak RSS.
    Not timed; benchmarks/bench_fit_large.py is."""
    data = large_repeated_csv if bench_module().FORMS[form].columns.unique_tokens else large_csv
    args = ["fit", str(data), "--form", form, *bench_module().form_args(form), "--format", "json"]
    code, rss, out, err = run_limited(args, tmp_path)
    assert code == 0, err
    assert rss < GIB
    result = json.loads(out)
    assert result["n_points"] == LARGE_ROWS
    if form == "chinchilla":  # the law the rows were drawn from, found by the grid on 500 runs and refined on all
        assert result["procedure"]["grid_points"] == 500
        assert result["params"]["alpha"] == pytest.approx(0.34, abs=0.01)
        assert result["params"]["beta"] == pytest.approx(0.28, abs=0.01)


def test_compare_at_the_resample_ceiling_stays_under_1_gib(tmp_path):
    """10,000 bootstrap pairs, each curve evaluated on a 4,001-point grid: in chunks of draws."""
    laion, wit = ROOT / "examples" / "openclip" / "laion.csv", ROOT / "examples" / "openclip" / "clip-wit.csv"
    code, rss, out, err = run_limited(["compare", str(laion), str(wit), "--form", "power", "--x-col", "gmacs_total",
                                       "--y-col", "acc1", "--one-minus", "--bins", "5", "--bins-b", "0", "--bootstrap",
                                       "10000", "--target-error", "0.3", "--format", "json"], tmp_path)
    assert code == 0, err
    assert rss < GIB
    assert json.loads(out)["crossover_ci"] is not None


@pytest.mark.parametrize("after_progress", [0.0, 1.5])
def test_ctrl_c_ends_a_large_fit_with_one_line_and_exit_130(large_csv, after_progress):
    proc = planner_process(["fit", str(large_csv), "--form", "chinchilla", "--tokens-col", "tokens", "--solver", "bfgs"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    progress = proc.stderr.readline().rstrip("\n")  # printed as the grid of starts begins
    assert progress == f"fitting {LARGE_ROWS} points from 4500 starts (Huber δ=0.001, summed)"
    time.sleep(after_progress)
    proc.send_signal(signal.SIGINT)
    try:
        _, rest = proc.communicate(timeout=10)  # a generous bound: it must not run on to the end of the fit
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the fit went on after Ctrl-C")
    assert proc.returncode == 130
    assert rest == "planner: aborted\n"


@pytest.mark.parametrize("args, line", [
    (["fit", "{csv}", "--form", "power", "--bins", "1000000000"],
     "planner fit: error: Invalid value for '--bins': 1000000000 is not in the range 1<=x<=10000."),
    (["fit", "{csv}", "--form", "power", "--bootstrap", "10001"],
     "planner fit: error: Invalid value for '--bootstrap': 10001 is not in the range 0<=x<=10000."),
    (["compare", "{csv}", "{csv}", "--form", "power", "--bins-b", "20000"],
     "planner compare: error: Invalid value for '--bins-b': 20000 is not in the range 0<=x<=10000."),
])
def test_bins_and_resamples_have_a_ceiling(tmp_path, capsys, args, line):
    data = tmp_path / "runs.csv"
    data.write_text("flops,loss\n1e18,3\n1e19,2.8\n1e20,2.6\n1e21,2.5\n")
    code, _, err = run([a.format(csv=data) for a in args], capsys)
    assert check_stderr(code, err) == line


@pytest.mark.parametrize("options, text", [
    ({"bins": 10**9}, "bins: must be between 1 and 10000 bins, got 1000000000"),
    ({"bins": 0}, "bins: must be between 1 and 10000 bins, got 0"),
    ({"bootstrap": 10**6}, "bootstrap: must be at most 10000 resamples, got 1000000"),
])
def test_the_api_has_the_same_ceilings(options, text):
    from planner.errors import PlannerError
    from planner.fit import FitOptions

    with pytest.raises(PlannerError) as exc:
        FitOptions(form="power", **options)
    assert exc.value.text() == text


def per_bin_minima(x: np.ndarray, y: np.ndarray, bins: int):
    """openCLIP's binned minima the direct way (a pass over the points per bin), to hold the one-sort version to."""
    edges = np.histogram_bin_edges(x, bins=bins, range=(x.min(), x.max() + 0.1))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    picks = [members[np.argmin(y[members])] for k in range(bins) if (members := np.flatnonzero(which == k)).size]
    return np.array([0.5 * (edges[which[i]] + edges[which[i] + 1]) for i in picks]), y[picks], np.array(picks)


@pytest.mark.parametrize("seed, bins", [(0, 1), (1, 5), (2, 37), (3, 400), (4, 10_000)])
def test_binned_minima_are_those_of_a_pass_per_bin(seed, bins):
    from planner.fit.curves import frontier_bins

    rng = np.random.default_rng(seed)
    x = rng.uniform(15, 22, 3000).round(2)  # repeated values: ties within and across bins
    y = rng.uniform(0, 1, 3000).round(2)
    for got, want in zip(frontier_bins(x, y, bins), per_bin_minima(x, y, bins), strict=True):
        assert np.array_equal(got, want)


def test_chunked_starts_find_the_same_optimum(monkeypatch):
    """The grid in chunks of 7 starts on two threads finds the optimum one batch finds (to the optimiser's
    tolerance: a BLAS product's last bits depend on the batch), and the same chunks give the same bits."""
    from planner.fit import chinchilla, optim

    rng = np.random.default_rng(5)
    n, d = 10 ** rng.uniform(7, 10, 60), 10 ** rng.uniform(9, 12, 60)
    loss = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    fun_grad = chinchilla.objective(np.log(n), np.log(d), np.log(loss), 1e-3)
    starts = chinchilla.start_grid()[::45]
    whole = optim.bfgs_chunked(fun_grad, starts, 60)
    monkeypatch.setattr(optim, "CHUNK_ELEMENTS", 7 * 60)
    chunked = optim.bfgs_chunked(fun_grad, starts, 60, threads=2)
    assert chunked.fun.min() == pytest.approx(whole.fun.min(), rel=1e-6, abs=1e-12)
    assert chunked.x[np.argmin(chunked.fun)] == pytest.approx(whole.x[np.argmin(whole.fun)], rel=1e-3)
    again = optim.bfgs_chunked(fun_grad, starts, 60, threads=2)
    assert np.array_equal(chunked.x, again.x) and np.array_equal(chunked.iterations, again.iterations)
