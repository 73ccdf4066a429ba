"""Hostile input, thousands of cases: every command exits 0 or 2, never with a traceback, and
bad input is reported on one line that names the file (and line) where there is one."""

import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import check_stderr, run
from planner.catalog import builtin_dir

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

junk_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=string.printable, max_size=12),
)
junk = st.recursive(junk_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=8),
                                                                         inner, max_size=4)), max_leaves=12)


def one_error_line(code: int, err: str, validate: bool = False, path=None) -> str | None:
    """Exit 0 or 2 and no traceback; on 2, stderr is the CLI's progress and warning lines (cli_helpers lists
    them) and then exactly one `planner: error: ...` line, which is returned.

    validate: `catalog validate` prints every problem as `file:line: message` (file = `path` when given),
    then `N files checked, M errors` with M the number of problems."""
    if not validate:
        return check_stderr(code, err)
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    *problems, summary = lines or [""]
    counted = re.fullmatch(r"(\d+) files checked, (\d+) errors", summary)
    assert counted, f"the last line is not the `N files checked, M errors` summary:\n{err}"
    assert int(counted[2]) == len(problems) and (len(problems) > 0) == (code == 2), err
    where = re.escape(str(path)) if path is not None else r".+"
    for ln in problems:
        assert re.fullmatch(where + r":\d+: \S.*", ln), f"not `file:line: message`: {ln!r}\n{err}"
    return problems[0] if problems else None


def _flatten_paths(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield prefix + (k,)
            yield from _flatten_paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield prefix + (i,)
            yield from _flatten_paths(v, prefix + (i,))


def _set(data, path, value):
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


CATALOG_FILES = sorted(p for p in builtin_dir().rglob("*.yaml") if p.parent.name in ("accelerators", "clusters", "mfu", "laws", "models"))


@FAST
@given(index=st.integers(min_value=0), pick=st.integers(min_value=0), value=junk)
def test_mutated_catalog_files_are_reported_with_file_and_line(tmp_path_factory, capsys, index, pick, value):
    """Replace one value anywhere in a real catalog file with junk; validate must explain, not crash."""
    source = CATALOG_FILES[index % len(CATALOG_FILES)]
    data = yaml.safe_load(source.read_text())
    paths = list(_flatten_paths(data))
    _set(data, paths[pick % len(paths)], value)
    root = tmp_path_factory.mktemp("cat")
    target = root / source.parent.name / source.name
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    one_error_line(code, err, validate=True, path=target)


@FAST
@given(text=st.text(max_size=300))
def test_arbitrary_text_as_a_catalog_file(tmp_path_factory, capsys, text):
    root = tmp_path_factory.mktemp("cat")
    target = root / "clusters" / "x.yaml"
    target.parent.mkdir()
    target.write_text(text)
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2, err
    one_error_line(code, err, validate=True, path=target)


@FAST
@given(doc=junk)
def test_arbitrary_yaml_structures(tmp_path_factory, capsys, doc):
    root = tmp_path_factory.mktemp("cat")
    for kind in ("accelerators", "laws"):
        target = root / kind / "x.yaml"
        target.parent.mkdir()
        target.write_text(yaml.safe_dump(doc))
        code, _, err = run(["catalog", "validate", str(target)], capsys)
        assert code == 2, err
        one_error_line(code, err, validate=True, path=target)


def test_billion_laughs_is_refused(tmp_path, capsys):
    lol = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    target = tmp_path / "laws" / "lol.yaml"
    target.parent.mkdir()
    target.write_text(lol)
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2 and "anchors and aliases are not allowed" in err


def test_huge_file_is_refused(tmp_path, capsys):
    target = tmp_path / "laws" / "big.yaml"
    target.parent.mkdir()
    target.write_text("name: big\n" + "# padding\n" * 300_000)
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2 and "larger than" in err


cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 10**15).map(str),
                 st.text(alphabet=string.ascii_letters + ",\"\n ", max_size=6), st.just(""))


@FAST
@given(rows=st.lists(st.tuples(cell, cell), max_size=12), form=st.sampled_from(["power", "saturating"]),
       bins=st.sampled_from([[], ["--bins", "3"]]), fmt=st.sampled_from(["table", "json", "csv", "latex"]))
def test_fit_on_hostile_csv(tmp_path_factory, capsys, rows, form, bins, fmt):
    path = tmp_path_factory.mktemp("csv") / "runs.csv"
    path.write_text("flops,loss\n" + "".join(f"{a},{b}\n" for a, b in rows))
    code, _, err = run(["fit", str(path), "--form", form, "--format", fmt, *bins], capsys)
    one_error_line(code, err)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["1e8", "1e9", "1e10", "nan", "x", "0", "-1"]),
                               st.sampled_from(["1e10", "1e11", "2e12"]),
                               st.sampled_from(["2.5", "3.1", "2.2", "1e9", ""])), max_size=10))
def test_chinchilla_fit_on_hostile_csv(tmp_path_factory, capsys, rows):
    path = tmp_path_factory.mktemp("csv") / "runs.csv"
    path.write_text("params,tokens,loss\n" + "".join(",".join(r) + "\n" for r in rows))
    code, _, err = run(["fit", str(path), "--form", "chinchilla", "--tokens-col", "tokens"], capsys)
    one_error_line(code, err)


number_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10, 10**40).map(str),
                        st.sampled_from(["1e21", "4M", "1.5T", "-0", "0x10", "1e-400", " 7 ", "all", ""]))
PLAN_OPTIONS = ["--flops", "--gpu-hours", "--node-hours", "--days", "--params", "--tokens", "--target-loss", "--gpus",
                "--nodes", "--mfu", "--inference-tokens", "--unique-tokens", "--goodput", "--samples", "--seq-len"]
NAMES = st.sampled_from(["--law epoch-2024", "--law kaplan-2020", "--law nope", "--cluster juwels-booster",
                         "--cluster lumi-g", "--accelerator h100-sxm", "--model llama-2-7b", "--model openclip-vit-b-32",
                         "--dtype fp8", "--flops-convention 6ND", "--mfu-basis benchmark", "--stack megatron",
                         "--stack 'no such stack'", "--accelerator v100-sxm2-32gb", "--cluster jupiter-booster", ""])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.tuples(st.sampled_from(PLAN_OPTIONS), number_text), max_size=4), names=st.lists(NAMES, max_size=3),
       fmt=st.sampled_from(["table", "json", "csv", "markdown", "latex"]))
def test_plan_never_crashes(capsys, options, names, fmt):
    args = ["plan", "--format", fmt]
    for option, value in options:
        args += [option, value]
    for name in names:
        args += name.split()
    code, _, err = run(args, capsys)
    one_error_line(code, err)


ROOT = Path(__file__).resolve().parent.parent  # the repository: examples/ sit beside tests/
SPECS = {
    "sweep": ("examples/sweeps/isoflop-juwels.yaml", ["sweep"], ["--out"]),
    "grant": ("examples/grants/lumi-g.yaml", ["grant"], []),
}


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line of every key path (a mapping value's is its key's; a list item's its own), read by PyYAML's composer
    (not planner.yamlio, which the test checks)."""
    out: dict[tuple[str, ...], int] = {}

    def walk(node, path, line=None):
        out[path] = line or node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, path + (str(key.value),), key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (str(i),))

    walk(yaml.compose(text), ())
    return out


def _line_of(path: tuple, lines: dict) -> int:
    """A missing field has no line: the planner points at its deepest parent that exists."""
    while path and path not in lines:
        path = path[:-1]
    return lines[path]


# Errors about a spec that do not name file:line: none left (each used to be a real finding).
UNLOCATED: dict[str, re.Pattern] = {}
INLINE_SWEEP = ("experiments", "0", "sweep")  # lumi-g.yaml's first experiment is an inline sweep block


def assert_located(error: str, spec: Path, kind: str = "") -> None:
    """The error line is `planner: error: <spec>:<line>: <field>: <message>`, and <line> is the line of <field>
    in the spec (of its deepest parent when the field is missing)."""
    if kind in UNLOCATED and UNLOCATED[kind].fullmatch(error):
        return
    m = re.fullmatch(rf"planner: error: {re.escape(str(spec))}:(\d+): (\(top level\)|\S+): \S.*", error)
    assert m, f"the error does not name {spec}:<line>: <field>:\n{error}"
    line, field = int(m[1]), m[2]
    text = spec.read_text()
    assert 1 <= line <= len(text.splitlines()), error
    lines = _key_lines(text)
    path = () if field == "(top level)" else tuple(field.split("."))
    wanted = {_line_of(path, lines)}
    if kind == "grant" and INLINE_SWEEP in lines and path[:1] != ("experiments",):
        # Known (see test_inline_sweep_errors_name_the_proposals_field): grant.py checks an inline sweep as a spec of
        # its own, so its fields are named relative to the block (sweep.budgets.0) and the keys it takes from the
        # experiment or proposal (law, nodes, mfu, ...) are reported at the block's first line.
        wanted |= {_line_of(INLINE_SWEEP + path, lines), _line_of(INLINE_SWEEP[:-1] + path, lines)}
    assert line in wanted, f"line {line} is not the line of {field} ({sorted(wanted)}):\n{error}"


def _spec_case(tmp_path_factory, kind, index, pick, value):
    rel, command, extra = SPECS[kind]
    data = yaml.safe_load((ROOT / rel).read_text())
    paths = list(_flatten_paths(data))
    _set(data, paths[pick % len(paths)], value)
    work = tmp_path_factory.mktemp(kind)
    spec = work / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, allow_unicode=True))
    args = command + [str(spec)]
    if extra:
        args += [extra[0], str(work / "out")]
    return args, spec


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(SPECS)), pick=st.integers(min_value=0), value=junk)
def test_mutated_sweep_and_proposal_specs(tmp_path_factory, capsys, kind, pick, value):
    """One value of an example sweep spec or proposal replaced by junk: exit 0 or 2, one line naming the file, the
    line and the field."""
    args, spec = _spec_case(tmp_path_factory, kind, 0, pick, value)
    code, _, err = run(args, capsys)
    error = one_error_line(code, err)
    if code == 2:
        assert_located(error, spec, kind)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.tuples(st.sampled_from(["--params", "--gpus", "--nodes", "--tp", "--pp", "--ep", "--zero", "--seq-len",
                                                   "--micro-batch", "--recompute", "--precision", "--optimizer"]),
                                  number_text), max_size=4),
       target=st.sampled_from([["--cluster", "juwels-booster"], ["--accelerator", "h100-sxm"], ["--model", "llama-2-7b"],
                               ["--model", "deepseek-v3", "--cluster", "jupiter-booster"], []]))
def test_memory_never_crashes(capsys, options, target):
    args = ["memory", *target]
    for option, value in options:
        args += [option, value]
    code, _, err = run(args, capsys)
    one_error_line(code, err)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows_a=st.lists(st.tuples(cell, cell), max_size=8), rows_b=st.lists(st.tuples(cell, cell), max_size=8),
       form=st.sampled_from(["power", "saturating"]), target=st.sampled_from([[], ["--target-flops", "1e30"], ["--chance", "2"]]))
def test_compare_on_hostile_csvs(tmp_path_factory, capsys, rows_a, rows_b, form, target):
    work = tmp_path_factory.mktemp("cmp")
    paths = []
    for name, rows in (("a", rows_a), ("b", rows_b)):
        path = work / f"{name}.csv"
        path.write_text("flops,loss\n" + "".join(f"{x},{y}\n" for x, y in rows))
        paths.append(str(path))
    code, _, err = run(["compare", *paths, "--form", form, "--bootstrap", "20", *target], capsys)
    one_error_line(code, err)


SCALING_OPTIONS = ["--params", "--tokens", "--samples", "--nodes", "--global-batch", "--mfu"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.tuples(st.sampled_from(SCALING_OPTIONS), number_text | st.sampled_from(["1,2,4", "0,1", "8,8", "1,,2"])),
                        max_size=4),
       target=st.sampled_from([["--cluster", "juwels-booster"], ["--cluster", "lumi-g"], ["--model", "llama-2-7b"],
                               ["--model", "openclip-vit-b-32"], []]))
def test_scaling_never_crashes(capsys, options, target):
    args = ["scaling", *target]
    for option, value in options:
        args += [option, value]
    code, _, err = run(args, capsys)
    one_error_line(code, err)


SCALING_PROPOSAL = {
    "title": "t", "program": "gcs", "cluster": "juwels-booster", "start": "2027-04",
    "experiments": [{"name": "7B run", "params": 7e9, "tokens": 1.4e11, "nodes": 8}],
    "scaling": [{"experiment": "7B run", "global_batch": 4e6, "nodes": [1, 2, 8],
                 "measured": [{"nodes": 1, "throughput": 15000}, {"nodes": 8, "throughput": 110000}], "source": "synthetic"}],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0), value=junk)
def test_mutated_scaling_entries(tmp_path_factory, capsys, pick, value):
    import copy

    data = copy.deepcopy(SCALING_PROPOSAL)
    paths = [p for p in _flatten_paths(data) if p[0] in ("scaling", "experiments")]
    _set(data, paths[pick % len(paths)], value)
    spec = tmp_path_factory.mktemp("scaling") / "p.yaml"
    spec.write_text(yaml.safe_dump(data, allow_unicode=True))
    code, _, err = run(["grant", str(spec)], capsys)
    error = one_error_line(code, err)
    if code == 2:
        assert_located(error, spec)  # no inline sweep here: every line exact


def test_yaml_booleans_are_not_numbers(tmp_path, capsys):
    """YAML reads true/false as booleans; pydantic would take them as 1 and 0 (found by hypothesis)."""
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ncluster: juwels-booster\nnodes: true\ncommand: echo\n"
                    "sweep: {kind: list, runs: [{params: 1e6, tokens: 1e8}]}\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"{spec}:3: nodes: expected a value, not true" in err
    spec.write_text(spec.read_text().replace("nodes: true", "nodes: 1").replace("tokens: 1e8", "tokens: false"))
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "tokens" in err and "not false" in err, err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                         junk.map(lambda v: __import__("json").dumps(v, allow_nan=True))))
def test_collect_on_hostile_result_files(tmp_path_factory, capsys, content):
    work = tmp_path_factory.mktemp("collect")
    (work / "manifest.csv").write_text("run_id,array,index,model,params,tokens,flops,budget,nodes,gpus,mfu,gpu_hours,"
                                       "node_hours,charge,est_hours,time_limit,segments,partition\n"
                                       "r0,a00,0,,1000000,100000000,6e14,,1,4,0.4,0.1,0.03,1.0,0.03,00:10:00,1,booster\n")
    (work / "results").mkdir()
    (work / "results" / "r0").write_text(content, encoding="utf-8", errors="surrogateescape")
    code, _, err = run(["collect", str(work), "--format", "json"], capsys)
    one_error_line(code, err)


def test_a_character_yaml_forbids_is_reported_on_its_line(tmp_path, capsys):
    """libyaml's reader error has an offset (in UTF-8 bytes) and a two-line message; the planner gives the line
    (found by hypothesis: `catalog validate` printed the error over two lines, without a line number)."""
    target = tmp_path / "clusters" / "x.yaml"
    target.parent.mkdir()
    target.write_text("name: é\r\ntitle: ü\n\nsite: \x07\n", newline="")
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert err == f"{target}:4: invalid YAML: character #x0007: control characters are not allowed\n1 files checked, 1 errors\n"
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n# \x1b[31m\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    assert check_stderr(code, err) == f"planner: error: {spec}:2: invalid YAML: character #x001b: control characters are not allowed"


def test_validate_keeps_a_problem_quoting_a_line_break_on_one_line(tmp_path, capsys):
    """A catalog value holding a line break is quoted in the problem; `catalog validate` printed it raw, so the
    problem spilled over two lines (found by hypothesis: a source named '\\r')."""
    source = builtin_dir() / "accelerators" / "a100-pcie-40gb.yaml"
    target = tmp_path / "accelerators" / source.name
    target.parent.mkdir()
    text = source.read_text()
    assert text.splitlines()[10] == "  fp64: {value: 9.7, source: composer}"
    target.write_text(text.replace("fp64: {value: 9.7, source: composer}", 'fp64: {value: 9.7, source: "com\\rposer"}'))
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2
    assert err.splitlines() == [(f"{target}:11: peak_tflops.fp64: source 'com\\rposer' is not a key of `sources` "
                                 "(composer, a100-datasheet, mamf)"), "1 files checked, 1 errors"], err


HUGE = "1" + "0" * 400  # YAML reads it as an int; math.isfinite(int) raised OverflowError
SWEEP_TEXT = "name: x\ncluster: juwels-booster\ncommand: echo\nsweep:\n  kind: isoflop\n  budgets: [1e18, {}]\n"
PROPOSAL_TEXT = ("title: t\nprogram: gcs\ncluster: juwels-booster\nstart: {}\nexperiments:\n"
                 "  - name: big\n    params: 7e9\n    tokens: {}\n    nodes: 8\n    checkpoints: {}\n")


@pytest.mark.parametrize("command, text, message", [
    # PyYAML builds these scalars with int(), float() or datetime.date(), whose ValueError was a traceback
    ("sweep", SWEEP_TEXT.format(HUGE), ":6: sweep.budgets.1: '100000000000…' is beyond the range of numbers (about 1.8e308)"),
    ("sweep", SWEEP_TEXT.format("!!float 1e18x"), ":6: sweep.budgets.1: '1e18x' cannot be read as float"),
    ("sweep", SWEEP_TEXT.format("9" * 5000), ":6: sweep.budgets.1: '999999999999…' cannot be read as int"),  # > 4,300 digits
    ("grant", PROPOSAL_TEXT.format("2027-02-30", "1.4e11", 1), ":4: start: '2027-02-30' cannot be read as timestamp"),
    ("grant", PROPOSAL_TEXT.format("2027-04", "1.4e11", HUGE), (":10: experiments.0.checkpoints: '100000000000…' is beyond the "
                                                                "range of numbers (about 1.8e308)")),
    # finite numbers whose hours overflow: the request was math.ceil(nan), a traceback
    ("grant", PROPOSAL_TEXT.format("2027-04", "1e300", 1), (":6: experiments.0: its node-hours overflow; check params, tokens, "
                                                            "samples, runs and wall_hours")),
], ids=["int-beyond-float", "bad-float-tag", "int-of-5000-digits", "31st-of-february", "huge-checkpoints", "hours-overflow"])
def test_unreadable_numbers_are_errors_at_their_line(tmp_path, capsys, command, text, message):
    path = tmp_path / "in.yaml"
    path.write_text(text)
    code, _, err = run([command, str(path)] + (["--out", str(tmp_path / "o")] if command == "sweep" else []), capsys)
    assert check_stderr(code, err) == f"planner: error: {path}{message}"


def test_unreadable_scalars_in_a_catalog_file(tmp_path, capsys):
    target = tmp_path / "laws" / "x.yaml"
    target.parent.mkdir()
    target.write_text("name: x\n2027-02-30: 1\nfit_range: {flops: [1, !!int 0x]}\n")  # the first stops the file
    code, _, err = run(["catalog", "validate", str(target)], capsys)
    assert code == 2 and err == f"{target}:2: (top level): '2027-02-30' cannot be read as timestamp\n1 files checked, 1 errors\n"


# Errors about a YAML file that once did not name its file:line (or named the wrong line): real findings, fixed.

def test_workdir_with_a_line_break_names_its_line(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text('name: x\ncluster: juwels-booster\ncommand: echo\nworkdir: "a\\nb"\n'
                    "sweep: {kind: list, runs: [{params: 1e6, tokens: 1e8}]}\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:4: workdir: ")


INLINE_SWEEP = ("title: t\nprogram: gcs\ncluster: juwels-booster\nstart: 2027-04\n{top}experiments:\n"
                "  - name: iso\n{law}    nodes: 1\n    sweep:\n{block}")


@pytest.mark.parametrize("top, law, block, line, key, message", [
    ("", "    law: no-such-law\n", "      kind: isoflop\n      budgets: [1e18, 1e19]\n", 7, "experiments.0.law",
     "unknown law 'no-such-law'"),
    ("law: no-such-law\n", "", "      kind: isoflop\n      budgets: [1e18, 1e19]\n", 5, "law", "unknown law 'no-such-law'"),
    ("", "", "      kind: isoflop\n      budgets: [1e18, 1e19]\n      points: 0\n", 11, "experiments.0.sweep.points", ""),
    ("", "", "      name: x\n      command: echo\n      sweep: {kind: isoflop, budgets: [1e18, 1e19], span: -2}\n", 11,
     "experiments.0.sweep.sweep.span", ""),
], ids=["experiment-law", "proposal-law", "block-key", "whole-spec-block"])
def test_inline_sweep_errors_name_the_proposals_field(tmp_path, capsys, top, law, block, line, key, message):
    """An inline sweep is checked as a spec, but its errors point into the proposal: the key the value
    came from (the experiment's or the proposal's law, a key of the block) at its own line."""
    spec = tmp_path / "p.yaml"
    spec.write_text(INLINE_SWEEP.format(top=top, law=law, block=block))
    assert (key.split(".")[-1] + ":") in spec.read_text().splitlines()[line - 1]
    code, _, err = run(["grant", str(spec)], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:{line}: {key}: {message}"), err


LAW_WITH_DRAWS = """name: mylaw
title: t
citation: c
sources: {fit: {citation: my runs, status: verified}}
loss:
  form: chinchilla
  E: {value: 1.8, source: fit}
  A: {value: 480, source: fit}
  B: {value: 2000, source: fit}
  alpha: {value: 0.35, source: fit}
  beta: {value: 0.37, source: fit}
fitted:
  bootstrap_draws:
    E: [1.8, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8]
    A: [480, 480, 480, 480, 480, 480, 480, 480, 480, 480]
    B: [2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000]
    alpha: [0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, -0.35]
    beta: [0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37]
"""


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t, "17: fitted.bootstrap_draws.alpha.9: must be positive"),
    (lambda t: t.replace("    beta: [0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37, 0.37]\n", "").replace("-0.35", "0.35"),
     "13: fitted.bootstrap_draws.beta: required: lists of numbers E, A, B, alpha, beta"),
    (lambda t: t.replace("E: [1.8, 1.8,", "E: [1.8,"), "14: fitted.bootstrap_draws.E: must be at least 10 finite draws"),
    (lambda t: t.replace("0.37, 0.37]", "0.37, 0.37, 0.37]").replace("-0.35", "0.35").replace("1.8, 1.8]", "1.8, 1.8, 1.8]"),
     "13: fitted.bootstrap_draws: E, A, B, alpha and beta need the same number of draws"),
], ids=["negative", "missing", "short", "unequal"])
def test_bad_bootstrap_draws_in_a_law_file_name_file_and_line(tmp_path, capsys, edit, expected):
    """Bad draws are refused when the law file is read, at their line, not later by the plan that uses them."""
    law = tmp_path / "mylaw.yaml"
    law.write_text(edit(LAW_WITH_DRAWS))
    code, _, err = run(["plan", "--flops", "1e22", "--law-file", str(law), "--format", "json"], capsys)
    assert check_stderr(code, err) == f"planner: error: {law}:{expected}", err


def test_misnamed_catalog_entry_is_reported_at_its_name_line(tmp_path, capsys):
    source = builtin_dir() / "accelerators" / "h100-sxm.yaml"
    target = tmp_path / "accelerators" / "myacc.yaml"
    target.parent.mkdir()
    text = source.read_text()
    target.write_text(text.replace("name: h100-sxm\n", "name: not-myacc\n"))
    line = 1 + text.splitlines().index("name: h100-sxm")
    assert line > 1
    code, _, err = run(["--catalog", str(tmp_path), "plan", "--flops", "1e21", "--accelerator", "myacc", "--gpus", "8"], capsys)
    assert check_stderr(code, err) == (f"planner: error: {target}:{line}: name: 'not-myacc' must equal the file name 'myacc'")


def test_cluster_with_an_unknown_accelerator_names_file_and_line(tmp_path, capsys):
    source = builtin_dir() / "clusters" / "juwels-booster.yaml"
    target = tmp_path / "clusters" / "juwels-booster.yaml"
    target.parent.mkdir()
    lines = source.read_text().splitlines(keepends=True)
    line = next(i for i, ln in enumerate(lines, 1) if ln.startswith("accelerator: "))
    lines[line - 1] = "accelerator: no-such-gpu\n"
    target.write_text("".join(lines))
    code, _, err = run(["--catalog", str(tmp_path), "plan", "--flops", "1e21", "--cluster", "juwels-booster"], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {target}:{line}: accelerator: unknown accelerator"), err
