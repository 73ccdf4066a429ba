"""`planner collect`: a sweep's manifest joined with what its runs wrote to {result_file}, and the
loop it closes: sweep → results → fit → the law that generated them."""

import csv
import json

import pytest
from cli_helpers import run

# Hoffmann et al.'s Approach-3 law stands in for "the truth" the runs measure
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28

SPEC = """\
name: loop
cluster: juwels-booster
law: chinchilla-approach3
nodes: 1
command: python train.py --params {params} --tokens {tokens} && echo "$LOSS" > "{result_file}"
sweep: {kind: isoflop, budgets: [1e18, 1e19, 1e20, 1e21], points: 7, span: 4}
"""


@pytest.fixture
def swept(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "sweep"
    code, _, err = run(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    return out


def manifest(out):
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_job_script_tells_each_run_its_result_file(swept):
    script = (swept / "arrays" / "a00.sbatch").read_text()
    assert 'PLANNER_RESULT_FILE=$planner_dir/results/$PLANNER_RUN_ID' in script
    assert '> "${PLANNER_RESULT_FILE}"' in script
    assert "./results" in (swept / "submit.sh").read_text()


def test_collect_then_fit_recovers_the_law_the_runs_measured(swept, tmp_path, capsys):
    runs = manifest(swept)
    (swept / "results").mkdir()
    for r in runs[:-2]:  # two runs have not finished
        n, d = float(r["params"]), float(r["tokens"])
        (swept / "results" / r["run_id"]).write_text(f"{E + A / n**ALPHA + B / d**BETA!r}\n")
    table = tmp_path / "runs.csv"
    code, _, err = run(["collect", str(swept), "--format", "csv", "--out", str(table)], capsys)
    assert code == 0, err
    assert f"2 of {len(runs)} runs have no result yet" in err
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == len(runs) - 2 and {"run_id", "params", "tokens", "flops", "flops_6nd", "budget", "loss"} <= set(rows[0])
    assert float(rows[0]["flops_6nd"]) == 6 * float(rows[0]["params"]) * float(rows[0]["tokens"])
    code, out, err = run(["fit", str(table), "--form", "isoflop", "--flops-col", "flops_6nd", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["params"]["a"] == pytest.approx(BETA / (ALPHA + BETA), abs=0.01)


def test_json_results_and_diverged_runs(swept, capsys):
    runs = manifest(swept)
    (swept / "results").mkdir()
    (swept / "results" / runs[0]["run_id"]).write_text('{"loss": 3.1, "eval_loss": 3.3}')
    (swept / "results" / runs[1]["run_id"]).write_text('{"loss": NaN, "eval_loss": 9.9}')
    code, out, err = run(["collect", str(swept), "--format", "json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["collected"] == 2 and result["result_fields"] == ["loss", "eval_loss"]
    assert result["rows"][0]["eval_loss"] == 3.3 and result["rows"][1]["loss"] is None
    assert "non-finite value (diverged?)" in err


@pytest.mark.parametrize("content, message", [
    ("fast", ":1: expected a number (the final loss) or a JSON object of numbers"),
    ('{"loss": "low"}', ":1: loss: 'low' is not a number"),
    ('{"params": 3}', ":1: params: the manifest already gives this field"),
    ("[1, 2]", ":1: expected a JSON object of numbers"),
])
def test_bad_result_files_name_the_file(swept, capsys, content, message):
    runs = manifest(swept)
    (swept / "results").mkdir()
    (swept / "results" / runs[0]["run_id"]).write_text(content)
    code, _, err = run(["collect", str(swept)], capsys)
    assert code == 2 and message in err and runs[0]["run_id"] in err, err


def test_nothing_to_collect(tmp_path, swept, capsys):
    code, _, err = run(["collect", str(swept)], capsys)
    assert code == 2 and "no run has written its result yet" in err
    code, _, err = run(["collect", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no manifest.csv" in err


def test_the_next_sweep_centres_on_the_fitted_law(swept, tmp_path, capsys):
    """fit --out law.yaml, then `law_file:` in the next spec: the loop's second turn."""
    from planner.laws import Law
    from planner.yamlio import load_model

    runs = manifest(swept)
    (swept / "results").mkdir()
    for r in runs:
        n, d = float(r["params"]), float(r["tokens"])
        (swept / "results" / r["run_id"]).write_text(repr(E + A / n**ALPHA + B / d**BETA))
    table, law_path = tmp_path / "runs.csv", tmp_path / "law.yaml"
    assert run(["collect", str(swept), "--format", "csv", "--out", str(table)], capsys)[0] == 0
    code, _, err = run(["fit", str(table), "--form", "isoflop", "--flops-col", "flops", "--out", str(law_path)], capsys)
    assert code == 0, err
    spec = tmp_path / "next.yaml"
    spec.write_text(SPEC.replace("law: chinchilla-approach3", "law_file: law.yaml").replace("name: loop", "name: next")
                    .replace("budgets: [1e18, 1e19, 1e20, 1e21], points: 7", "budgets: [1e22], points: 3")
                    .replace("nodes: 1", "nodes: 64"))
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "next")], capsys)
    assert code == 0, err
    middle = manifest(tmp_path / "next")[1]
    law = load_model(Law, law_path)
    assert float(middle["params"]) == pytest.approx(float(law.optimal_params(1e22)), rel=1e-6)
    both = tmp_path / "both.yaml"
    both.write_text(spec.read_text().replace("law_file: law.yaml", "law: epoch-2024\nlaw_file: law.yaml"))
    code, _, err = run(["sweep", str(both), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "give law (a catalog name) or law_file, not both" in err
    missing = tmp_path / "missing.yaml"
    missing.write_text(spec.read_text().replace("law_file: law.yaml", "law_file: nope.yaml"))
    code, _, err = run(["sweep", str(missing), "--out", str(tmp_path / "y")], capsys)
    assert code == 2 and f"{missing}:3: law_file: law file 'nope.yaml' not found" in err
