"""Every source a user can see is public: a paper with its section or table, a datasheet, a centre's
documentation page, with a URL, a domain or an arXiv id where one exists; never a file outside the package
or the notes the project was built from (issue 15).

What counts, precisely (`problems` below):

* FORBIDDEN anywhere in what a user sees (catalog prose, citations, notes; plan and grant output): the words
  "recollection", "as recalled", "the reference" (our notes), "our notes", "internal"; `shared/` and `../`
  paths; and a file name (*.md, *.csv, *.yaml, *.json, *.py, *.txt, *.tsv) that is neither in the package
  (catalogs/, planner/, examples/, README.md), nor part of a URL or domain path, nor preceded by the public
  repository it lives in, named earlier in the same clause (`owner/repo path/file.md`).
* FOLLOWABLE: each citation (a catalog `sources` entry with its `url`, a law's `citation`, a plan's
  `sources` value, a grant's reference) carries at least one of: a URL; a domain (`docs.nersc.gov/...`);
  an arXiv id; a DOI; a public repository with a file path (`owner/repo path/file`); a file in the package;
  or a named document with a section, table, figure or appendix (`§2.1`, `Table 3`, `App. B`).
* EXCEPTIONS, which must say what they are instead: a statement derived from other catalog entries (status
  `derived`, naming the catalog); a convention ("common practice ...; not a documented requirement"); and
  a value with no public source, which must say so plainly ("no public source found ...", "not published",
  "placeholder") and be `unverified`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import run
from pydantic import BaseModel

from planner.catalog import KINDS, Catalog, Source

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ("catalogs/", "planner/", "examples/", "README.md")  # what the wheel and the sdist ship that a citation may name

FORBIDDEN = re.compile(r"recollect|as recalled|\breference gives\b|\bthe reference(?!s)\b|\bour notes\b|\binternal\b|\bshared/|\.\./", re.I)
FILE = re.compile(r"(?<![\w/.@-])((?:[\w.+-]+/)*[\w+-][\w.+-]*\.(?:md|csv|ya?ml|json|py|txt|tsv))(?![\w/-])")
# a public repository named earlier in the same clause (`owner/repo path/file`, `(owner/repo, path/file)`)
REPO = re.compile(r"(?<![\w./-])[A-Za-z0-9_-][A-Za-z0-9_.-]*/[A-Za-z0-9_-][A-Za-z0-9_.-]*(?![\w/-])")


def repo_before(text: str, at: int) -> bool:
    clause = re.split(r"[;]", text[:at])[-1]
    return (any(not FILE.fullmatch(r.group(0)) for r in REPO.finditer(clause))
            or any(not FILE.fullmatch(d.group(0)) for d in (*URL.finditer(clause), *DOMAIN.finditer(clause))))
URL = re.compile(r"https?://\S+")
DOMAIN = re.compile(r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|eu|de|fr|ch|uk|it|es|gov|edu|io|ai|jp|hr|cz|info|co)"
                    r"\b(?:/\S*)?", re.I)
ARXIV = re.compile(r"\barXiv[: ]\s*\d{4}\.\d{4,5}")
DOI = re.compile(r"\b10\.\d{4,9}/\S+")
SECTION = re.compile(r"§\s*\d|\bTable\s+\d|\bTab\.\s*\d|\bFig(?:ure|\.)\s*\d|\bApp(?:endix|\.)\s*[A-Z0-9]|\bEq\.\s*\d"
                     r"|\bsection\s+\d", re.I)
DERIVED = re.compile(r"\bcatalog\b", re.I)
CONVENTION = re.compile(r"^common practice\b.*not a documented requirement", re.I)
NO_SOURCE = re.compile(r"no public source found|not published|placeholder", re.I)


def file_problems(text: str) -> list[str]:
    """File names in `text` a reader cannot open: not in the package, not in a URL or domain path, not after its repo."""
    out = []
    for m in FILE.finditer(text):
        path = m.group(1)
        if (ROOT / path).is_file() and path.startswith(PACKAGED):
            continue
        if repo_before(text, m.start()):
            continue
        inside_link = any(u.start() <= m.start() < u.end() for u in (*URL.finditer(text), *DOMAIN.finditer(text)))
        if not inside_link:
            out.append(f"names a file outside the package: {path!r}")
    return out


def followable(text: str) -> bool:
    if URL.search(text) or DOMAIN.search(text) or ARXIV.search(text) or DOI.search(text) or SECTION.search(text):
        return True
    for m in FILE.finditer(text):  # a repository's file, or one in the package
        path = m.group(1)
        if repo_before(text, m.start()) or ((ROOT / path).is_file() and path.startswith(PACKAGED)):
            return True
    return False


def problems(text: str, *, citation: bool = False, status: str | None = None) -> list[str]:
    """What is wrong with one string a user sees; `citation` strings must also be followable or an explicit exception."""
    out = [f"says {m.group(0)!r}" for m in FORBIDDEN.finditer(text)] + file_problems(text)
    if citation and not followable(text):
        if DERIVED.search(text) and status in (None, "derived"):
            pass
        elif CONVENTION.search(text.strip()):
            pass
        elif NO_SOURCE.search(text) and status in (None, "unverified"):
            pass
        else:
            out.append("nothing a reader can follow (no URL, domain, arXiv id, DOI, repository file or section/table)")
    return out


def prose(obj, path=""):
    """Every string of an entry that is prose (identifiers such as names and slugs are not sources)."""
    if isinstance(obj, Source):
        yield f"{path}.citation", obj.citation + (f" {obj.url}" if obj.url else ""), True, obj.status
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            citation = name == "citation"  # a law's paper, a program's rule
            value = getattr(obj, name)
            if citation and isinstance(value, str):
                yield f"{path}.{name}", value, True, None
            else:
                yield from prose(value, f"{path}.{name}" if path else name)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from prose(value, f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from prose(value, f"{path}.{i}")
    elif isinstance(obj, str) and not re.fullmatch(r"[a-z0-9][a-z0-9._+-]*", obj):
        yield path, obj, False, None


def entries():
    catalog = Catalog()
    return [(kind, entry) for kind in KINDS for entry in catalog.all(kind)]  # every kind, present and future


def test_the_checks_catch_what_the_issue_lists():
    # each of these was in a catalog or an output once; each must fail
    for bad in ("hardware.md §5.3", "scaling-laws.md §11.3", "slurm-and-grants.md §2.3", "formulas.md §3.1",
                "shared/data/chinchilla.csv", "../shared/reference/hardware.md", "from recollection",
                "not in the reference", "IDRIS pages, as recalled", "our notes", "an internal memo",
                "the runs are listed in docs/calibration.md", "Hugging Face config.json of the released model"):
        assert problems(bad, citation=True), bad
    assert problems("NVIDIA A100 datasheet r4 (dense and sparse side by side)", citation=True)  # nothing to follow
    for good in ("Kaplan et al. 2020 (arXiv 2001.08361) §2.1", "docs.nersc.gov/jobs/policy",
                 "stas00/ml-engineering compute/accelerator/README.md, MAMF table", "PaLM App. B",
                 "https://aws.amazon.com/ec2/capacityblocks/pricing/", "doi 10.1145/3579371.3589350",
                 "catalogs/campaigns/published-runs.yaml (each run with its paper)",
                 "the cluster catalog's accounting entry",
                 "common practice in proposals: 10-20% for restarts; not a documented requirement",
                 "no public source found for the Jean Zay A100 QoS limit as of 2026-12; placeholder"):
        assert problems(good, citation=True, status="unverified" if "placeholder" in good else None) == [], good
    # an exception must be honest about its status: a placeholder cannot be `verified`
    assert problems("no public source found; placeholder", citation=True, status="verified")


@pytest.mark.parametrize("kind, entry", entries(), ids=lambda x: getattr(x, "name", x))
def test_every_catalog_string_is_public(kind, entry):
    bad = [f"{kind}/{entry.name}: {path}: {p}: {text[:120]!r}"
           for path, text, citation, status in prose(entry) for p in problems(text, citation=citation, status=status)]
    assert bad == []


def plan_sources(capsys, *args) -> dict:
    code, out, err = run(["plan", *args, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("args", [
    ("--model", "llama-2-7b", "--tokens", "2T", "--cluster", "juwels-booster", "--nodes", "64"),
    ("--flops", "1e22", "--cluster", "lumi-g", "--nodes", "16", "--mfu", "0.3"),
    ("--flops", "1e22", "--cluster", "cloud-8xh100", "--nodes", "8"),
    ("--flops", "1e21", "--cluster", "jean-zay-a100", "--nodes", "8", "--law", "kaplan-2020"),
    ("--model", "openclip-vit-l-14", "--samples", "13B", "--cluster", "juwels-booster", "--nodes", "64"),
    ("--model", "deepseek-v3", "--tokens", "14.8T", "--cluster", "cloud-8xh100", "--nodes", "256"),
])
def test_plan_sources_are_public(capsys, args):
    result = plan_sources(capsys, *args)
    bad = [f"{key}: {p}: {value[:120]!r}" for key, value in result["sources"].items()
           for p in problems(value, citation=True)]
    bad += [f"warning: {p}" for w in result.get("warnings", []) for p in problems(w)]
    assert result["sources"] and bad == []


PROPOSALS = sorted(p for p in (ROOT / "examples" / "grants").glob("*.yaml") if "\nprogram:" in p.read_text())


@pytest.mark.parametrize("proposal", PROPOSALS, ids=lambda p: p.name)
def test_grant_citations_are_public(capsys, proposal):
    code, out, err = run(["grant", str(proposal), "--format", "json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    documents = result.get("systems", [result])  # a proposal on several systems has one document per system
    bad = []
    for document in documents:
        bad += [f"reference: {p}: {r[:120]!r}" for r in document["references"] for p in problems(r, citation=True)]
        bad += [f"method: {p}" for f in document["method"] for p in problems(f["text"])]
        bad += [f"justification: {p}" for p in problems(document["justification"])]
    for fmt in ("markdown", "latex", "html"):
        code, text, err = run(["grant", str(proposal), "--format", fmt], capsys)
        assert code == 0, err
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", text)  # the figures' bytes are no prose
        bad += [f"{fmt}: {p}" for p in problems(text)]
    assert all(d["references"] for d in documents) and bad == []
