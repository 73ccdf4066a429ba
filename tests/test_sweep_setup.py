"""Sweeps with `shape:` and `hyperparameters:` (planner.sweep.setup): the manifest's shape and hyperparameter
columns, the placeholders in a job script that runs, the precedence of given values, and errors at file:line."""

from __future__ import annotations

import csv
import math
import subprocess
import textwrap
from pathlib import Path

import pytest
from cli_helpers import run

from planner.sweep.design import design, load_spec

BASE = """\
name: t
cluster: juwels-booster
account: acct
mfu: 0.4
"""
PLACEHOLDERS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "ffn", "lr", "batch_size", "batch_tokens", "warmup", "steps")
ISOFLOP = """\
law: chinchilla-approach3
shape: {recipe: llama-2}
hyperparameters: {law: deepseek-2024-hparams}
command: echo {run_id}
sweep: {kind: isoflop, budgets: [1e18, 1e20], points: 3}
"""


def spec_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + textwrap.dedent(body))
    return path


def designed(tmp_path: Path, body: str, catalog):
    spec, src = load_spec(spec_file(tmp_path, body))
    return design(spec, src, catalog, tmp_path / "sweep")


def test_every_run_gets_a_shape_within_two_percent_and_the_laws_hyperparameters(tmp_path, catalog):
    sw = designed(tmp_path, ISOFLOP, catalog)
    assert len(sw.runs) == 6
    for r in sw.runs:
        shape, hp = r.setup.shape, r.setup.hyperparameters
        # chinchilla-approach3 counts all parameters, so the shape's total is matched to N
        assert shape.counted == "total" and abs(shape.params / r.params - 1) <= 0.02
        L, h, s = shape.n_layers, shape.d_model, 4096
        c = (6 * shape.non_embedding_params + 12 * L * h * s) * r.tokens  # DeepSeek's C = M·D
        assert hp.lr == pytest.approx(0.3118 * c**-0.125, rel=1e-12)
        assert hp.law_batch_tokens == pytest.approx(0.2920 * c**0.3271, rel=1e-12)
        assert hp.batch_tokens == hp.batch_size * s and hp.batch_size % 8 == 0
        assert hp.steps == math.ceil(r.tokens / hp.batch_tokens)
        assert r.setup.shape_flops == pytest.approx((6 * (shape.non_embedding_params + shape.vocab * h) + 12 * L * h * s) * r.tokens)
    # DeepSeek fitted on 1e17 to 2e19: the three runs at 1e20 are extrapolations, in one warning
    (extrapolated,) = [w for w in sw.warnings if w.topic == "hparams.range"]
    assert extrapolated.message.startswith("3 runs: learning rate and batch extrapolated")


def test_a_shaped_sweep_is_costed_on_its_shapes_flops(tmp_path, catalog):
    """Hours and time limits follow the FLOPs of the shape the runs will train, not the assumed width."""
    shaped = designed(tmp_path, ISOFLOP, catalog)
    plain = designed(tmp_path, ISOFLOP.replace("shape: {recipe: llama-2}\n", ""), catalog)
    for r, q in zip(shaped.runs, plain.runs, strict=True):
        assert r.flops == r.setup.shape_flops and r.flops != q.flops
        assert r.gpu_hours / q.gpu_hours == pytest.approx(r.flops / q.flops, rel=1e-9)  # the same MFU: N is unchanged
    assert "llama-2 shape" in shaped.flops_convention


def test_the_shape_counts_what_the_spec_says(tmp_path, catalog):
    sw = designed(tmp_path, ISOFLOP.replace("{recipe: llama-2}", "{recipe: llama-2, params: non-embedding}"), catalog)
    for r in sw.runs:
        assert abs(r.setup.shape.non_embedding_params / r.params - 1) <= 0.02


def run_task(script: Path, task: int) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": str(task), "HOME": str(Path.home())}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_placeholders_expand_in_the_job_script(tmp_path, capsys):
    command = " ".join("{" + p + "}" for p in PLACEHOLDERS)
    spec = spec_file(tmp_path, f"""\
        flops_convention: 6ND
        shape: {{recipe: pythia}}
        hyperparameters: {{law: deepseek-2024-hparams, warmup: 10}}
        command: mkdir -p "{{out_dir}}/seen" && echo {command} > "{{out_dir}}/seen/{{run_id}}"
        sweep:
          kind: list
          runs:
            - {{params: 1e8, tokens: 2e9}}
            - {{params: 1e9, tokens: 2e10, lr: 1e-4}}
        """)
    out = tmp_path / "out"
    code, _, err = run(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for script in sorted((out / "arrays").glob("*.sbatch")):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        for task in range(sum(r["array"] == script.stem for r in rows)):
            done = run_task(script, task)
            assert done.returncode == 0, done.stderr
    for row in rows:
        seen = (out / "seen" / row["run_id"]).read_text().split()
        assert seen == [row[p] for p in PLACEHOLDERS] and all(seen)
    assert [float(r["lr"]) for r in rows][1] == 1e-4
    assert [r["warmup"] for r in rows] == ["10", "10"]


def test_a_runs_own_value_wins_over_the_specs_which_wins_over_the_law(tmp_path, catalog):
    sw = designed(tmp_path, """\
        shape: {recipe: llama-2}
        hyperparameters: {law: deepseek-2024-hparams, lr: 3e-4, warmup: 50}
        command: echo {lr} {batch_size}
        sweep:
          kind: list
          runs:
            - {params: 1e8, tokens: 2e9}
            - {params: 1e8, tokens: 2e9, lr: 1e-3, batch_size: 16, warmup: 5}
        """, catalog)
    law_run, own = (r.setup.hyperparameters for r in sw.runs)
    assert (law_run.lr, law_run.warmup, law_run.overridden) == (3e-4, 50, ("lr", "warmup"))
    assert law_run.batch_size == pytest.approx(law_run.law_batch_tokens / 4096, abs=8)  # the law's, rounded
    assert (own.lr, own.batch_size, own.batch_tokens, own.warmup) == (1e-3, 16, 16 * 4096, 5)
    assert own.steps == math.ceil(2e9 / (16 * 4096))


def test_without_a_law_the_given_values_are_used(tmp_path, catalog):
    sw = designed(tmp_path, """\
        hyperparameters: {lr: 6e-4, batch_size: 256, warmup: 100}
        command: echo {lr} {steps}
        sweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}
        """, catalog)
    hp = sw.runs[0].setup.hyperparameters
    assert (hp.lr, hp.batch_size, hp.warmup, hp.law) == (6e-4, 256, 100, None)
    assert sw.runs[0].setup.shape is None


def test_without_shape_or_hyperparameters_the_columns_are_empty(tmp_path, capsys):
    spec = spec_file(tmp_path, "command: echo {run_id}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    with open(tmp_path / "out" / "manifest.csv", newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert [row[p] for p in PLACEHOLDERS] == [""] * len(PLACEHOLDERS) and row["shape_flops"] == ""


@pytest.mark.parametrize("body, expected", [
    ("command: echo {n_layers}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n",
     "spec.yaml:5: command: {n_layers} needs a `shape:` section in the spec"),
    ("command: echo {run_id} {lr}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n",
     "spec.yaml:5: command: {lr} needs a `hyperparameters:` section in the spec"),
    ("shape: {recipe: llama-9}\ncommand: echo {d_model}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n",
     "spec.yaml:5: shape: unknown shape recipe 'llama-9'; did you mean llama-3, llama-2?"),
    ("hyperparameters: {law: deepseek}\ncommand: echo {lr}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n",
     "spec.yaml:5: hyperparameters.law: unknown hyperparameter law 'deepseek'; did you mean deepseek-2024-hparams"),
    ("hyperparameters: {lr: 1e-3}\ncommand: echo {lr}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n",
     "spec.yaml:5: hyperparameters: give law (a hyperparameter law), or lr, batch_size and warmup"),
    ("shape: {recipe: llama-2, tolerence: 0.01}\ncommand: echo {d_model}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 2e9}]}\n",
     "spec.yaml:5: shape.tolerence: unknown field; did you mean 'tolerance'?"),
    ("shape: {recipe: llama-3}\ncommand: echo {d_model}\nsweep:\n  kind: list\n  runs:\n    - {params: 2e9, tokens: 2e10}\n"
     "    - {params: 1.2e7, tokens: 2e9}\n",
     "spec.yaml:11: sweep.runs.1.params: no llama-3 shape has 1.2e+07 parameters within 2%"),
    ("shape: {recipe: llama-2}\ncommand: echo {d_model}\nsweep: {kind: samples, models: [openclip-vit-b-32], samples_seen: [1e9]}\n",
     "spec.yaml:5: shape: for language-model sweeps"),
])
def test_errors_name_the_spec_file_line_and_key(tmp_path, capsys, body, expected):
    code, out, err = run(["sweep", str(spec_file(tmp_path, body)), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and out == ""
    assert err.startswith("planner: error: " + expected) or expected in err, err
    assert err.count("\n") == 1
