"""The public API (`planner.__all__`) and docs/api.md, which shows it: every Python block runs."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import planner

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
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
