"""The programs users apply to: each call's sizes and rules as its public page states them, and a proposal
checked against them."""

import json

import pytest
from cli_helpers import run


def grant_json(tmp_path, capsys, program: str, params: str, tokens: str, nodes: int) -> dict:
    proposal = tmp_path / "p.yaml"
    proposal.write_text(f"title: t\nprogram: {program}\ncluster: juwels-booster\nstart: 2027-05\nmonths: 6\n"
                        f"experiments:\n  - name: run\n    params: {params}\n    tokens: {tokens}\n    nodes: {nodes}\n")
    code, out, err = run(["grant", str(proposal), "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("program, params, tokens, nodes, verdicts", [
    ("nhr-test", "1B", "20B", 4, {"max": "meets"}),                          # a few hundred GPU-hours
    ("nhr-test", "7B", "140B", 16, {"max": "above"}),                        # about 20,000
    ("nhr-normal", "1B", "20B", 4, {"min": "below", "max": "meets"}),
    ("nhr-normal", "13B", "260B", 32, {"min": "meets", "max": "meets"}),  # about 63,000 GPU-hours
])
def test_nhr_calls_are_sized_as_nhr_kit_publishes_them(tmp_path, capsys, program, params, tokens, nodes, verdicts):
    document = grant_json(tmp_path, capsys, program, params, tokens, nodes)
    got = {t["kind"]: ("meets" if t["met"] else "below" if t["kind"] == "min" else "above") for t in document["thresholds"]}
    assert got == verdicts, document["thresholds"]
    limits = {t["kind"]: t["limit"] for t in document["thresholds"]}
    assert limits == ({"max": 5000} if program == "nhr-test" else {"min": 30000, "max": 199999})


def test_olcf_and_alcc_pull_back_rules_name_every_tier(catalog):
    incite = " ".join(r.text for r in catalog.get("programs", "incite").forfeiture)
    for tier in ("1 May, < 10% used → up to 30%", "< 15% → up to 15%", "1 September, < 10% → up to 75%",
                 "< 33% → up to 50%", "< 50% → up to 33%"):
        assert tier in incite
    alcc = " ".join(r.text for r in catalog.get("programs", "alcc").forfeiture)
    assert "1 November" in alcc and "1 March" in alcc and "OLCF" not in alcc  # INCITE's policy is not ALCC's


def test_the_nairr_pilot_asks_for_its_reports(catalog):
    expects = " ".join(r.text for r in catalog.get("programs", "nairr-pilot").expects)
    assert "one, three and nine months" in expects and "at most three pages" in expects
