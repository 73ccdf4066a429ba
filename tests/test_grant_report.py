"""`planner grant` figures and the HTML report: Markdown and LaTeX link PNG files written beside them (all
or none, never over a file without --force), LaTeX with figures compiles, the HTML is one self-contained
file, and a headless browser (Chromium, installed by .ci/run) opens it without errors, draws every figure
and shows every table row of the JSON output."""

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from browser import find_browser, load
from cli_helpers import run

from planner.errors import PlannerError
from planner.grant.build import build, load_proposal
from planner.grant.report import Figure, figure_directory, figures_of, render_report, write_report
from planner.report.grant_plots import draw_law, law_band, law_caption
from planner.report.output import human

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "grants"
JUWELS, LUMI = EXAMPLES / "juwels-booster.yaml", EXAMPLES / "lumi-g.yaml"
FIGURES = {JUWELS: ["law", "scaling", "schedule", "burn"], LUMI: ["law", "schedule", "burn"]}  # LUMI's proposal has no scaling entry
PNG = b"\x89PNG\r\n\x1a\n"


def document(path, catalog):
    p, where, base = load_proposal(path)
    return build(p, where, base, catalog)


@pytest.fixture(scope="module")
def juwels(catalog):
    return document(JUWELS, catalog)


def test_markdown_links_the_figures_written_beside_it(tmp_path, capsys):
    out = tmp_path / "report.md"
    code, _, err = run(["grant", str(JUWELS), "--out", str(out)], capsys)
    assert code == 0, err
    md = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == [f"report_files/{name}.png" for name in FIGURES[JUWELS]]
    for link in links:
        assert (tmp_path / link).read_bytes().startswith(PNG)
    assert sorted(p.name for p in (tmp_path / "report_files").iterdir()) == sorted(f"{n}.png" for n in FIGURES[JUWELS])
    assert "## Weak scaling (predicted, fixed work per node): 7B reference run" in md
    assert f"wrote {out}" in err and f"wrote {tmp_path / 'report_files'}" in err


def test_figures_and_html_are_byte_identical_run_to_run(tmp_path, capsys):
    for name in ("a", "b"):
        assert run(["grant", str(JUWELS), "--format", "latex", "--out", str(tmp_path / f"{name}.tex")], capsys)[0] == 0
        assert run(["grant", str(JUWELS), "--format", "html", "--out", str(tmp_path / f"{name}.html")], capsys)[0] == 0
    for fig in FIGURES[JUWELS]:
        assert (tmp_path / "a_files" / f"{fig}.png").read_bytes() == (tmp_path / "b_files" / f"{fig}.png").read_bytes()
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_stdout_has_no_figures_and_says_so(capsys):
    code, md, err = run(["grant", str(LUMI)], capsys)
    assert code == 0 and "## Figures" not in md and "](" not in md.split("## Justification")[0]
    assert "no figures: they are written beside a file" in err


def test_nothing_is_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "r.md"
    assert run(["grant", str(LUMI), "--out", str(out)], capsys)[0] == 0
    before = out.read_bytes()
    code, _, err = run(["grant", str(LUMI), "--out", str(out)], capsys)
    assert code == 2 and "exists" in err and out.read_bytes() == before
    assert run(["grant", str(LUMI), "--out", str(out), "--force"], capsys)[0] == 0
    # a figure directory left from elsewhere is not replaced either, and then no document is written
    other = tmp_path / "s.md"
    (tmp_path / "s_files").mkdir()
    (tmp_path / "s_files" / "law.png").write_bytes(b"mine")
    code, _, err = run(["grant", str(LUMI), "--out", str(other)], capsys)
    assert code == 2 and "law.png exists" in err and not other.exists()
    assert (tmp_path / "s_files" / "law.png").read_bytes() == b"mine"


def test_a_document_that_cannot_be_written_takes_its_new_figures_with_it(tmp_path, monkeypatch):
    import planner.files

    def refuse(*args, **kwargs):
        raise PlannerError("disk full")

    monkeypatch.setattr(planner.files, "write_atomic", refuse)
    figures = [Figure(None, "law", "caption", PNG + b"x")]
    with pytest.raises(PlannerError, match="disk full"):
        write_report(tmp_path / "r.md", "text", figures, force=False)
    assert not figure_directory(tmp_path / "r.md").exists() and not (tmp_path / "r.md").exists()


def test_figure_directory_is_a_name_latex_reads():
    assert figure_directory(Path("/x/my report.v2.tex")) == Path("/x/my-report-v2_files")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("example", [JUWELS, LUMI], ids=["juwels", "lumi"])
def test_latex_with_figures_compiles_and_includes_them(tmp_path, capsys, example):
    tex = tmp_path / "grant.tex"
    code, _, err = run(["grant", str(example), "--format", "latex", "--out", str(tex)], capsys)
    assert code == 0, err
    text = tex.read_text()
    included = re.findall(r"\\includegraphics\[[^]]*\]\{([^}]+)\}", text)
    assert included == [f"grant_files/{n}.png" for n in FIGURES[example]]
    assert text.count("\\begin{figure}") == len(included)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:]
    log = (tmp_path / "grant.log").read_text(errors="replace")
    for path in included:  # pdflatex logs each graphic it embeds with its size
        assert re.search(rf"<{re.escape(path)}, id=\d+, [\d.]+pt x [\d.]+pt>", log), path
    pdf = (tmp_path / "grant.pdf").read_bytes()
    assert len(re.findall(rb"/Subtype\s*/Image", pdf)) >= len(included)


def test_html_is_one_self_contained_escaped_file(juwels):
    hostile = dataclasses.replace(juwels, title='<script>alert("x")</script> & co')
    page = render_report(hostile, "html", [Figure(None, "law", "a <caption>", PNG + b"data")])
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "a &lt;caption&gt;" in page and 'src="data:image/png;base64,' in page
    assert not re.search(r"<(link|script|iframe|object|embed)\b", page)
    assert not re.search(r"""(src|srcset)=["'](?!data:)""", page) and "url(" not in page and "@import" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert '<a href="https://hpc-wiki.info/hpc/Scaling">' in page  # sources are links


def test_the_law_figure_draws_the_band_of_a_law_with_bootstrap_draws(juwels, catalog, tmp_path):
    central = catalog.law("chinchilla-approach3")
    rng = np.random.default_rng(0)
    coeffs = {k: getattr(central.loss, k).value for k in ("E", "A", "B", "alpha", "beta")}
    draws = {k: (v * np.exp(rng.normal(0, 0.02, 40))).tolist() for k, v in coeffs.items()}
    fitted = central.model_copy(update={"fitted": {"bootstrap_draws": draws}})
    flops = np.geomspace(1e19, 1e22, 5)
    n_lo, n_hi, l_lo, l_hi = law_band(fitted, flops, 0.8)
    assert (n_lo < fitted.optimal_params(flops)).all() and (fitted.optimal_params(flops) < n_hi).all()
    assert (l_lo < l_hi).all()
    assert law_band(central, flops, 0.8) is None

    class WithDraws:
        def law(self, name):
            return fitted

    assert "central 80% of the bootstrap refits" in law_caption(juwels, WithDraws())
    assert "no uncertainty band" in law_caption(juwels, catalog)
    assert draw_law(juwels, tmp_path / "band.png", WithDraws()) and draw_law(juwels, tmp_path / "none.png", catalog)
    assert (tmp_path / "band.png").read_bytes() != (tmp_path / "none.png").read_bytes()


def test_every_figure_applies_where_it_should(juwels, catalog):
    assert [f.name for f in figures_of(juwels, catalog)] == FIGURES[JUWELS]
    no_scaling = dataclasses.replace(juwels, scaling=())
    assert [f.name for f in figures_of(no_scaling, catalog)] == ["law", "schedule", "burn"]


# --- the HTML report in a real browser -----------------------------------------------------------

def expected_rows(data: dict) -> list[list[str]]:
    """Key cells of every table row of the JSON output, as the page must show them."""
    out = []
    for part in data.get("systems", [data]):
        for key in ("rows",):
            out += [[r["name"], human(r["request"], "hours")] for r in part[key]]
        out += [[part[k]["name"], human(part[k]["request"], "hours")] for k in ("subtotal", "contingency_row", "total")]
        out += [[p["period"], p["label"], human(p["request"], "hours")] for p in part["burn"]["periods"]]
        out += [[t["what"]] for t in part["thresholds"]]
        out += [[s["name"], human(s["tb"], "ratio")] for s in part["storage"]["items"]]
        out += [[str(r["nodes"]), human(r["throughput"], "count")] for sc in part["scaling"] for r in sc["rows"]]
        out += [[str(r["nodes"]), human(r["amount"], "count")] for w in part["weak_scaling"] for r in w["rows"]]
        out += [[d["run_id"], human(d["params"], "count")] for r in part["rows"] for d in r["sweep_runs"]]
    return out


def missing_rows(page, data) -> list[list[str]]:
    shown = [set(row.split("\t")) for row in page.probe["rows"]]
    return [want for want in expected_rows(data) if not any(set(want) <= cells for cells in shown)]


def figure_problems(page) -> list[str]:
    bad = [f"{i['alt']}: {i}" for i in page.probe["images"]
           if not (i["complete"] and min(i["natural"]) > 0 and min(i["shown"]) > 0)]
    return bad + [f"svg {s}" for s in page.probe["svgs"] if min(s["shown"]) <= 0]


def needs_browser() -> str:
    found = find_browser()
    if found is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium)")
    return found


@pytest.mark.browser
@pytest.mark.parametrize("example", [JUWELS, LUMI], ids=["juwels", "lumi"])
def test_html_report_in_a_headless_browser(tmp_path, capsys, example):
    binary = needs_browser()
    page_path = tmp_path / "report.html"
    code, _, err = run(["grant", str(example), "--format", "html", "--out", str(page_path)], capsys)
    assert code == 0, err
    code, out, err = run(["grant", str(example), "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    page = load(page_path, binary)
    assert page.console_errors == [] and page.exceptions == [] and page.requests == []
    assert [i["alt"] for i in page.probe["images"]] == [f"Figure {k}: {n}" for k, n in enumerate(FIGURES[example], 1)]
    assert figure_problems(page) == []
    assert len(expected_rows(data)) > 20 and missing_rows(page, data) == []


@pytest.mark.browser
def test_the_browser_check_sees_a_broken_page(tmp_path, capsys):
    """The same checks fail on a page with a corrupt figure, a row missing and something fetched from the net."""
    binary = needs_browser()
    good = tmp_path / "good.html"
    assert run(["grant", str(LUMI), "--format", "html", "--out", str(good)], capsys)[0] == 0
    data = json.loads(run(["grant", str(LUMI), "--format", "json"], capsys)[1])
    html = good.read_text()
    html = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", html, count=1)  # truncated PNG
    html = re.sub(r"<tr><td class=\"text\">7B reference run</td>.*?</tr>\n", "", html, count=1)
    html = html.replace("</body>", '<img src="https://example.org/x.png" alt="remote"></body>')
    broken = tmp_path / "broken.html"
    broken.write_text(html)
    page = load(broken, binary)
    assert any("Figure 1" in p for p in figure_problems(page))
    assert ["7B reference run", human(data["rows"][1]["request"], "hours")] in missing_rows(page, data)
    assert page.console_errors  # the Content-Security-Policy refuses the remote image, and says so
