"""The public API (`planner.__all__`) and the two documents that show it: docs/api.md runs, and the
catalog examples of docs/extending.md validate and do what the page says."""

import ast
import importlib
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run

import planner

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
EXTENDING_DOC = ROOT / "docs" / "extending.md"
HEAVY = ("numpy", "pydantic", "scipy", "yaml")


def fenced(path: Path, info: str) -> list[tuple[str, str]]:
    """(the fence's info string after the language, body) of every ``` block whose language is `info`."""
    blocks = re.findall(r"^```(\S+)([^\n]*)\n(.*?)^```\s*$", path.read_text(), flags=re.S | re.M)
    return [(rest.strip(), body) for lang, rest, body in blocks if lang == info]


# --- planner.__all__ -------------------------------------------------------------------------------


def test_every_name_in_all_resolves():
    assert len(planner.__all__) == len(set(planner.__all__))
    for name in planner.__all__:
        assert getattr(planner, name) is not None, name


def test_all_lists_the_api():
    expected = {"Catalog", "search_path", "PlanRequest", "build_request", "make_plan", "plan", "estimate_memory", "min_nodes",
                "best_layout", "Layout", "FitOptions", "fit_law", "compare_laws", "load_spec", "design_sweep", "write_sweep",
                "load_proposal", "build_grant", "render_grant", "strong_scaling", "campaign_report", "PlannerError",
                "__version__"}
    assert expected <= set(planner.__all__)
    assert set(planner.__all__) <= set(dir(planner))


def test_star_import_gives_the_api():
    namespace: dict = {}
    exec("from planner import *", namespace)
    assert set(planner.__all__) <= set(namespace)


def test_unknown_names_and_subpackages():
    with pytest.raises(AttributeError):
        planner.no_such_name  # noqa: B018
    # names must not shadow subpackages: `from planner import fit` is the package, as the CLI expects
    for sub in ("fit", "sweep", "grant", "catalog", "costing", "laws", "report", "cli"):
        assert sub not in planner.__all__
    proc = subprocess.run([sys.executable, "-c", "from planner import fit, grant; print(fit.__name__, grant.__name__)"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.split() == ["planner.fit", "planner.grant"], proc.stderr


def test_importing_planner_imports_nothing_heavy():
    """`import planner` (and reading __all__) must not import numpy or pydantic: the CLI imports it first."""
    code = ("import sys, planner; names = planner.__all__; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none"
    # ... and the names are really there once used
    code = "import sys, planner; planner.make_plan; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout.strip() == "True"


def test_thin_wrappers_agree_with_the_library(catalog):
    from planner.costing.plan import build_request, make_plan

    assert planner.plan(flops=1e21, law="chinchilla-approach3", catalog=catalog) == make_plan(
        build_request({"flops": 1e21, "law": "chinchilla-approach3"}), catalog)
    with pytest.raises(planner.PlannerError):
        planner.plan(flops=1e21, gpu_hours=10, catalog=catalog)


# --- docs/api.md ---------------------------------------------------------------------------------


def test_api_doc_blocks_run_in_order(monkeypatch, tmp_path, capsys):
    blocks = [body for _, body in fenced(API_DOC, "python")]
    assert len(blocks) >= 8
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the page's outputs go to this test's directory
    namespace: dict = {"__name__": "docs_api"}
    for i, body in enumerate(blocks, 1):
        exec(compile(body, f"{API_DOC.name}, python block {i}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Llama 2 7B on 2T tokens" in printed and "total request: 2,577,238 core-h" in printed
    assert list(tmp_path.glob("planner-api-*/isoflop/arrays/*.sbatch"))
    assert list(tmp_path.glob("planner-api-*/epoch-refit.yaml"))


# --- docs/extending.md ---------------------------------------------------------------------------


def catalog_examples() -> dict[str, str]:
    """KIND/NAME.yaml -> text of every ```yaml catalog=KIND/NAME.yaml block."""
    found = {}
    for info, body in fenced(EXTENDING_DOC, "yaml"):
        match = re.fullmatch(r"catalog=(\w+/[\w.-]+\.yaml)", info)
        if match:
            found[match.group(1)] = body
    return found


@pytest.fixture
def my_catalog(tmp_path, monkeypatch) -> Path:
    for rel, text in catalog_examples().items():
        path = tmp_path / "my-catalog" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANNER_CATALOG_PATH", raising=False)
    return tmp_path / "my-catalog"


def test_extending_has_an_example_for_each_kind_it_walks_through():
    kinds = {rel.split("/")[0] for rel in catalog_examples()}
    assert kinds == {"accelerators", "clusters", "laws", "programs"}


def test_extending_examples_validate(my_catalog, capsys):
    code, out, err = run(["catalog", "validate", str(my_catalog)], capsys)
    assert code == 0, err
    assert out.strip() == f"ok: {len(catalog_examples())} files valid"


def test_extending_examples_cite_public_primary_sources(my_catalog):
    """Every source is a page anyone can open (a URL) or a paper with its arXiv id and the table or section used."""
    from planner.catalog import load_entry

    for path in sorted(my_catalog.rglob("*.yaml")):
        entry = load_entry(path.parent.name, path)
        for key, source in entry.sources.items():
            where = f"{path.relative_to(my_catalog)}: sources.{key}"
            if source.url is not None:
                assert source.url.startswith("https://"), where
            else:
                assert re.search(r"arXiv \d{4}\.\d{4,5}", source.citation), f"{where}: no URL and no arXiv id"
                assert re.search(r"Table|§|Fig\.|Eq\.", source.citation), f"{where}: which table or section?"


def console_commands(path: Path) -> list[str]:
    commands = []
    for _, body in fenced(path, "console"):
        commands += [line[2:] for line in body.splitlines() if line.startswith("$ planner ")]
    return commands


@pytest.mark.parametrize("command", console_commands(EXTENDING_DOC))
def test_extending_commands_run(command, my_catalog, capsys):
    code, out, err = run(shlex.split(command)[1:], capsys)
    assert code == 0, err
    assert out.strip()


def test_extending_examples_do_what_the_page_says(my_catalog):
    mine = planner.Catalog(planner.search_path([str(my_catalog)]))
    gopher = planner.plan(flops=5.76e23, law="chinchilla-20-tokens", catalog=mine)
    assert round(gopher.params / 1e9, 1) == 69.3 and round(gopher.tokens / 1e12, 2) == 1.39
    with pytest.raises(planner.PlannerError, match="no published dense-lm campaign on ada-lovelace") as refused:
        planner.plan(params=1e9, tokens=2e10, accelerator="l40s", gpus=8, catalog=mine)
    assert refused.value.field == ("mfu",)  # the library names the input in its own words; the CLI spells it --mfu
    roihu = planner.plan(model="llama-3-8b", tokens=1e11, cluster="roihu-gpu", nodes=10, catalog=mine)
    assert roihu.costs.charge.unit == "gpu-h" and roihu.costs.charge.amount == pytest.approx(roihu.costs.gpu_hours)
    assert any("assumed to carry over" in w.message for w in roihu.warnings)


def sketch(module: str) -> dict:
    """The namespace of `module` with the extending.md code block tagged `module=...` defined in it."""
    blocks = [body for info, body in fenced(EXTENDING_DOC, "python") if info == f"module={module}"]
    assert len(blocks) == 1
    namespace = dict(vars(importlib.import_module(module)))
    exec(compile(blocks[0], f"{EXTENDING_DOC.name}: {module}", "exec"), namespace)
    return namespace


def test_extending_python_blocks_name_their_module():
    for info, body in fenced(EXTENDING_DOC, "python"):
        assert info.startswith("module="), info
        ast.parse(body)


def test_extending_fit_form_sketch_fits():
    fit_loglinear = sketch("planner.fit.curves")["fit_loglinear"]
    compute = np.logspace(15, 20, 12)
    fitted = fit_loglinear(compute, 0.9 - 0.1 * np.log10(compute / 1e15))
    assert fitted["params"] == pytest.approx({"a": 2.4, "b": -0.1})


def test_extending_output_format_sketch_writes_tsv():
    output = sketch("planner.report.output")
    rows = [{"run": "a", "gpu_hours": 1 / 3, "gpu_hours_interval": [0.25, 2 / 3]}, {"run": "b", "gpu_hours": None, "nodes": 4}]
    assert output["to_tsv"](rows) == output["to_csv"](rows).replace(",", "\t")


@pytest.mark.parametrize("options, field", [({"huber_delta": -1}, "huber_delta"), ({"huber_delta": 0}, "huber_delta"),
                                            ({"drop_highest": -3}, "drop_highest"), ({"bootstrap": 2.5}, "bootstrap"),
                                            ({"seed": "x"}, "seed"), ({"params_column": "x"}, "params_column")])
def test_fit_options_from_python_are_checked_as_on_the_command_line(options, field):
    # a negative Huber delta used to make the fit run forever; a misspelt keyword was a TypeError
    with pytest.raises(planner.PlannerError) as refused:
        planner.fit_law("tests/data/chinchilla_epoch_svg.csv", "chinchilla", params_col="Model Size",
                        flops_col="Training FLOP", **options)
    assert refused.value.field == (field,)


@pytest.mark.parametrize("counts, batch, field", [([0], None, "nodes"), ([3.5], None, "nodes"), ([], None, "nodes"),
                                                  ([16], -1, "global_batch"), ([16], "4M", "global_batch")])
def test_strong_scaling_refuses_impossible_counts_and_batches(catalog, counts, batch, field):
    run = planner.build_request({"model": "llama-2-7b", "tokens": 2e12, "cluster": "juwels-booster"})
    with pytest.raises(planner.PlannerError) as refused:
        planner.strong_scaling(run, catalog, counts, global_batch=batch)
    assert refused.value.field == (field,)


def test_render_grant_names_the_formats_it_knows(catalog):
    proposal, where, base = planner.load_proposal(ROOT / "examples" / "grants" / "juwels-booster.yaml")
    grant = planner.build_grant(proposal, where, base, catalog)
    with pytest.raises(planner.PlannerError, match=r"unknown format 'html' \(known: markdown, latex, csv, json\)"):
        planner.render_grant(grant, "html")
