"""`planner sweep` without a cluster: the design of runs, hours equal to `hardware_costs` (and to
`planner plan`), time limits and chains, arrays, golden sbatch files, bash syntax, quoting of hostile
names and paths, the job script run by hand without the planner, submit.sh against a fake sbatch,
no-clobber and byte-identical re-runs, line-numbered spec errors, and the summary in every format.
The same scripts on a real Slurm cluster: tests/test_slurm.py."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import run

from planner.catalog import Catalog, builtin_dir
from planner.costing import cost, mfu
from planner.costing.cost import training_flops
from planner.costing.hardware import hardware_costs, hardware_for
from planner.sweep import slurm
from planner.sweep.design import Source, design, load_spec, parse_spec

HERE = Path(__file__).parent
SPECS = HERE / "data" / "sweeps"
LOCAL = HERE / "data" / "catalog-local"
GOLDEN = HERE / "golden"
GOLDEN_DIR = "/scratch/sweeps/golden"  # the golden files are rendered for this (fixed) sweep directory
BASE = """\
name: t
cluster: juwels-booster
account: acct
max_concurrent: 4
command: echo {run_id} {params} {tokens}
"""


def spec_file(tmp_path: Path, body: str, base: str = BASE) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(base + textwrap.dedent(body))
    return path


def designed(tmp_path: Path, body: str, catalog: Catalog, base: str = BASE, out: str | Path | None = None):
    spec, src = load_spec(spec_file(tmp_path, body, base))
    return design(spec, src, catalog, Path(out or tmp_path / "sweep"))


def generate(capsys, spec: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run(["--catalog", str(LOCAL), "sweep", str(spec), "--out", str(out), *extra], capsys)


def manifest_rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


ISOFLOP = """\
law: chinchilla-approach3
sweep:
  kind: isoflop
  budgets: [1e18, 1e19]
  points: 5
  span: 4
"""


# --- design ---------------------------------------------------------------------------------------


def test_isoflop_places_sizes_log_spaced_around_the_optimum(tmp_path, catalog):
    sw = designed(tmp_path, ISOFLOP, catalog)
    assert len(sw.runs) == 10
    law = catalog.law("chinchilla-approach3")
    for budget, runs in ((1e18, sw.runs[:5]), (1e19, sw.runs[5:])):
        n_opt = float(law.optimal_params(budget))
        params = [r.params for r in runs]
        assert params[2] == round(n_opt)
        assert params[0] == pytest.approx(n_opt / 4, abs=1) and params[-1] == pytest.approx(n_opt * 4, abs=1)
        ratios = [b / a for a, b in zip(params, params[1:])]
        assert ratios == pytest.approx([2.0] * 4, rel=1e-6)  # span 4, 5 points: factor 2 apart
        for r in runs:
            assert r.budget == budget and r.tokens == round(budget / (6 * r.params))
            assert training_flops(r.params, r.tokens) == pytest.approx(budget, rel=1e-6)  # the law's C = 6ND
            assert r.flops == cost.lm_flops(r.params, r.tokens, "6ND+attention", 4096)  # what the hours are costed on
    assert sw.runs[0].run_id == "t-0-C1e18-N" + sw.runs[0].run_id.split("-N")[1]


def test_ladder_list_and_samples(tmp_path, catalog):
    ladder = designed(tmp_path, """\
        sweep: {kind: ladder, params: [100M, 1B], tokens_per_param: 20, multipliers: [1, 4]}
        """, catalog)
    assert [(r.params, r.tokens) for r in ladder.runs] == [(1e8, 2e9), (1e8, 8e9), (1e9, 2e10), (1e9, 8e10)]
    optimal = designed(tmp_path, "law: epoch-2024\nsweep: {kind: ladder, params: [1B]}\n", catalog)
    law = catalog.law("epoch-2024")
    assert optimal.runs[0].tokens == round(float(law.flops_for_params(1e9)) / 6e9)
    listed = designed(tmp_path, """\
        sweep:
          kind: list
          runs: [{params: 1e9, tokens: 2e10, name: one}, {params: 7e9, tokens: 1.4e11, nodes: 8}]
        """, catalog)
    assert [(r.model, r.nodes, r.gpus) for r in listed.runs] == [("one", 1, 4), ("", 8, 32)]
    clip = designed(tmp_path, """\
        sweep:
          kind: samples
          models: [{name: ViT-B-32, params: 151.28M, gmacs_per_sample: 7.40}]
          samples_seen: [1.28e9, 3e9]
        """, catalog)
    assert [r.tokens for r in clip.runs] == [1_280_000_000, 3_000_000_000]
    assert clip.runs[0].flops == pytest.approx(6 * 7.40 * 1e9 * 1.28e9, rel=1e-12)
    assert clip.runs[0].model == "ViT-B-32" and "clip-a100" in clip.mfu_basis


def _hw_and_est(catalog, sw, run, profile=None):
    hw = hardware_for(catalog, cluster=sw.cluster.name, nodes=run.nodes)
    est = mfu.estimate(catalog.mfu_profile(profile), hw.accelerator, run.params) if profile else None
    return hw, est


@pytest.mark.parametrize("body,profile", [
    (ISOFLOP, None),
    ("nodes: 2\nsweep: {kind: ladder, params: [50M, 300M, 2B, 7B], tokens_per_param: 20}\n", None),
    ("nodes: 8\nsweep: {kind: samples, models: [{name: L-14, params: 427.62M, gmacs_per_sample: 87.73}], samples_seen: [1e8, 3e8]}\n",
     "clip-a100"),
])
def test_every_manifest_row_equals_hardware_costs(tmp_path, catalog, capsys, body, profile):
    """The manifest's hours are those of the one costing function, bit for bit, for every run."""
    spec = spec_file(tmp_path, body)
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    spec_, src = load_spec(spec)
    sw = design(spec_, src, catalog, tmp_path / "out")
    for run_, row in zip(sw.runs, manifest_rows(tmp_path / "out")):
        hw, est = _hw_and_est(catalog, sw, run_, profile)
        costs = hardware_costs(float(row["flops"]), float(row["params"]), hw, catalog, est)
        assert float(row["gpu_hours"]) == costs.gpu_hours
        assert float(row["node_hours"]) == costs.node_hours
        assert float(row["est_hours"]) == costs.wall_clock_hours
        assert float(row["mfu"]) == costs.mfu
        assert float(row["charge"]) == costs.charge.amount


def test_manifest_row_agrees_with_planner_plan(tmp_path, capsys):
    spec = spec_file(tmp_path, "nodes: 2\n" + ISOFLOP)
    assert generate(capsys, spec, tmp_path / "out")[0] == 0
    row = manifest_rows(tmp_path / "out")[3]
    code, out, err = run(["plan", "--params", row["params"], "--tokens", row["tokens"], "--cluster", "juwels-booster",
                          "--nodes", "2", "--format", "json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["flops"] == float(row["flops"])
    assert plan["gpu_hours"] == float(row["gpu_hours"])
    assert plan["wall_clock_hours"] == float(row["est_hours"])
    assert plan["node_hours"] == float(row["node_hours"])


def test_time_limits_round_up_cap_and_chain(tmp_path, catalog):
    sw = designed(tmp_path, """\
        mfu: 0.4
        time_margin: 0.2
        flops_convention: 6ND
        sweep:
          kind: list
          runs:
            - {params: 125M, tokens: 2.5B}     # 1.04 h -> 1.25 h -> 1:30 on the ladder
            - {params: 1B, tokens: 5.9B}       # 19.7 h -> 23.6 h: capped at the 24 h limit, one segment
            - {params: 1B, tokens: 9B}         # 30 h -> 36 h: two segments of 24 h
            - {params: 1B, tokens: 60B}        # 200 h -> 240 h: ceil(240 h / (24 h - 300 s)) = 11
        """, catalog)
    for r in sw.runs:
        assert r.est_hours == pytest.approx(r.flops / (312e12 * 0.4 * 3600 * 4))
    assert [(r.time_minutes, r.segments) for r in sw.runs] == [(90, 1), (1440, 1), (1440, 2), (1440, 11)]
    assert sw.runs[3].segments == math.ceil(sw.runs[3].est_hours * 1.2 * 3600 / (86400 - 300))
    assert [slurm.time_text(m) for m in (90, 1440, 2880 + 75)] == ["01:30:00", "1-00:00:00", "2-01:15:00"]
    stepped = designed(tmp_path, "mfu: 0.4\nflops_convention: 6ND\ntime_step_minutes: 20\nsweep: {kind: list, runs: [{params: 125M, tokens: 2.5B}]}\n", catalog)
    assert stepped.runs[0].time_minutes == 80
    assert sw.arrays[0].signal_seconds == 300


def test_short_partitions_get_an_early_signal_and_short_segments(tmp_path):
    catalog = Catalog((builtin_dir(), LOCAL))
    sw = designed(tmp_path, "partition: tiny\nmfu: 0.5\nflops_convention: 6ND\nsweep: {kind: list, runs: [{params: 1e8, tokens: 6.5e7}]}\n",
                  catalog, BASE.replace("juwels-booster", "local-juwels"))
    (a,) = sw.arrays
    assert (a.time_minutes, a.signal_seconds, a.segments) == (1, 30, 3)  # 62.5 s × 1.2 = 75 s in 30 s segments
    assert "#SBATCH --signal=B:USR1@30\n" in slurm.array_script(sw, a)


def test_runs_are_grouped_by_nodes_and_time_and_split_at_max_array_size(tmp_path, catalog):
    runs = "".join(f"    - {{params: 1e8, tokens: 1e9, nodes: {1 + (i % 2)}}}\n" for i in range(25))
    sw = designed(tmp_path, "max_array_size: 10\nsweep:\n  kind: list\n  runs:\n" + runs, catalog)
    shape = [(a.id, a.nodes, len(a.runs), a.throttle) for a in sw.arrays]
    assert shape == [("a00", 1, 10, 4), ("a01", 1, 3, 3), ("a02", 2, 10, 4), ("a03", 2, 2, 2)]
    text = slurm.array_script(sw, sw.arrays[1])
    assert "#SBATCH --array=0-2%3\n" in text and "#SBATCH --nodes=1\n" in text
    assert sorted((r.array, r.index) for r in sw.runs) == sorted({(r.array, r.index) for r in sw.runs})


def test_a_10000_run_sweep_is_split_below_slurms_default_max_array_size(tmp_path, catalog):
    budgets = ", ".join(f"{1e17 * 1.01 ** i:.6g}" for i in range(100))
    sw = designed(tmp_path, f"sweep: {{kind: isoflop, budgets: [{budgets}], points: 100, span: 8}}\n", catalog)
    assert len(sw.runs) == 10_000
    assert all(len(a.runs) <= 1000 for a in sw.arrays)
    assert sum(len(a.runs) for a in sw.arrays) == 10_000


# --- files ----------------------------------------------------------------------------------------


def golden_files(catalog) -> dict[str, str]:
    spec, src = load_spec(SPECS / "golden.yaml")
    texts = slurm.files(design(spec, src, catalog, Path(GOLDEN_DIR)))
    return {f"golden-{Path(rel).stem}{Path(rel).suffix}": text for rel, text in texts.items()}


def test_golden_files(catalog):
    """Byte-for-byte as tests/golden/. After a deliberate change of the rendering, regenerate with
    PLANNER_REGEN_GOLDEN=1 pytest tests/test_sweep.py -k golden, and review the diff."""
    texts = golden_files(catalog)
    assert set(texts) == {"golden-a00.sbatch", "golden-a01.sbatch", "golden-submit.sh", "golden-manifest.csv"}
    if os.environ.get("PLANNER_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for name, text in texts.items():
            (GOLDEN / name).write_text(text)
    for name, text in texts.items():
        assert (GOLDEN / name).read_text() == text, f"{name} differs from tests/golden/{name}"


def test_golden_chain_is_afterany(catalog):
    submit = golden_files(catalog)["golden-submit.sh"]
    assert "submit a01 1 2\nsubmit a01 2 2 \"$job\"\n" in submit
    assert "--dependency=afterany:" in submit and "afterok" not in submit.replace("afterok never", "")


def all_specs() -> list[Path]:
    return sorted(SPECS.glob("*.yaml")) + sorted((HERE.parent / "examples" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("spec", all_specs(), ids=lambda p: p.name)
def test_every_generated_script_passes_bash_n(tmp_path, capsys, spec):
    code, _, err = generate(capsys, spec, tmp_path / "out")
    assert code == 0, err
    scripts = [tmp_path / "out" / "submit.sh", *sorted((tmp_path / "out" / "arrays").glob("*.sbatch"))]
    assert len(scripts) >= 2
    for script in scripts:
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, f"{script.name}: {check.stderr}"
        assert os.access(script, os.X_OK)


HOSTILE = ["it's", "a b", "$(touch {canary})", "`touch {canary}`", "x\ny", 'q"uote', "semi;colon", "tab\tx"]


@pytest.mark.parametrize("field", ["name", "account", "partition", "run name", "model name", "--account"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_and_accounts_are_rejected(tmp_path, capsys, field, value):
    value = value.format(canary=tmp_path / "canary")
    doc = {"name": "t", "cluster": "juwels-booster", "command": "echo {run_id}",
           "sweep": {"kind": "list", "runs": [{"params": 1e8, "tokens": 1e9}]}}
    if field in ("name", "account", "partition"):
        doc[field] = value
    elif field == "run name":
        doc["sweep"]["runs"][0]["name"] = value
    elif field == "model name":
        doc["sweep"] = {"kind": "samples", "models": [{"name": value, "params": 1e8, "gmacs_per_sample": 4}],
                        "samples_seen": [1e9]}
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(doc))  # JSON is YAML, and it quotes every character
    extra = ["--account", value] if field == "--account" else []
    code, out, err = generate(capsys, spec, tmp_path / "out", *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and ("spec.yaml:1:" in err or field == "--account")
    assert not (tmp_path / "out").exists() and not (tmp_path / "canary").exists()


def hostile_dir(tmp_path: Path, tag: str) -> Path:
    """A directory name with every shell metacharacter we can put in one, and payloads that would create
    canary files in $HOME if any shell ever evaluated the name."""
    return tmp_path / f"we ird $(cd;touch planner-canary-{tag}) `cd;touch planner-canary2-{tag}` 'q' \"dq\" #h 50%x &;|<>*?"


def canaries(tag: str) -> list[Path]:
    return [Path.home() / f"planner-canary-{tag}", Path.home() / f"planner-canary2-{tag}"]


def run_task(script: Path, task: int, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """An array task run by hand: a clean environment whose PATH has no `planner`."""
    base = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": str(task), "HOME": str(Path.home())}
    return subprocess.run(["bash", str(script), *args], env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=60)


def test_hostile_paths_and_env_values_cannot_execute_anything(tmp_path, capsys):
    tag = f"{os.getpid()}-{time.time_ns()}"
    out, work = hostile_dir(tmp_path, tag), hostile_dir(tmp_path, tag + "w")
    work.mkdir(parents=True)
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({
        "name": "t", "cluster": "juwels-booster", "mfu": 0.4, "workdir": str(work), "time_step_minutes": 60,
        "flops_convention": "6ND",
        "env": {"PAYLOAD": f"$(cd;touch planner-canary-{tag}) `x` '\" ;"}, "sbatch": {"comment": "a b $(c) `d`"},
        "command": 'mkdir -p "{out_dir}/seen" && printf "%s\\n%s\\n%s\\n" "$PWD" "$PAYLOAD" {params} > "{out_dir}/seen/{run_id}"',
        "sweep": {"kind": "list", "runs": [{"params": 1e8, "tokens": 1e9}, {"params": 2e8, "tokens": 1e9}]},
    }))
    code, _, err = generate(capsys, spec, out)
    assert code == 0, err
    script = out / "arrays" / "a00.sbatch"
    text = script.read_text()
    assert "50%%x &;|<>*?/logs/%x_%A_%a.out" in text  # a literal % is not one of Slurm's patterns
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert shutil.which("planner", path="/usr/bin:/bin") is None
    for task in (0, 1):
        done = run_task(script, task)
        assert done.returncode == 0, done.stderr
    rows = manifest_rows(out)
    for row in rows:
        pwd, payload, params = (out / "seen" / row["run_id"]).read_text().rstrip("\n").split("\n")
        assert pwd == str(work) and payload == f"$(cd;touch planner-canary-{tag}) `x` '\" ;" and params == row["params"]
    assert not any(p.exists() for p in canaries(tag) + canaries(tag + "w"))
    bad = tmp_path / "new\nline"
    code, _, err = generate(capsys, spec, bad)
    assert code == 2 and "control character" in err and not bad.exists()


def test_job_script_finds_its_row_and_skips_finished_runs(tmp_path, capsys):
    spec = spec_file(tmp_path, """\
        time_step_minutes: 60
        command: |
          mkdir -p "{out_dir}/seen"
          echo "{run_id} {index} {params} {tokens} {segment}/{segments} {model} $SRUN_CPUS_PER_TASK" >> "{out_dir}/seen/{run_id}"
          touch "{done_file}"
        sweep: {kind: list, runs: [{params: 1e8, tokens: 1e8, name: a}, {params: 2e8, tokens: 3e8, name: b}]}
        """, BASE.replace("command: echo {run_id} {params} {tokens}\n", ""))
    out = tmp_path / "out"
    assert generate(capsys, spec, out)[0] == 0
    script = out / "arrays" / "a00.sbatch"
    result = run_task(script, 1, "2", env={"SLURM_CPUS_PER_TASK": "12"})
    assert result.returncode == 0, result.stderr
    row = manifest_rows(out)[1]
    seen = (out / "seen" / row["run_id"]).read_text()
    assert seen == f"{row['run_id']} 1 200000000 300000000 2/1 b 12\n"
    again = run_task(script, 1, "3")
    assert again.returncode == 0 and "complete" in again.stdout
    assert (out / "seen" / row["run_id"]).read_text() == seen  # skipped: the command did not run again
    missing = run_task(script, 7)
    assert missing.returncode == 3 and "no row for array a00 task 7" in missing.stderr
    (out / "manifest.csv").write_text("other,columns\n")
    assert run_task(script, 0).returncode == 3


def test_usr1_is_forwarded_to_the_command_and_the_script_waits_for_it(tmp_path, capsys):
    spec = spec_file(tmp_path, """\
        command: |
          trap 'echo usr1 >> "{out_dir}/got"; exit 7' USR1
          echo started > "{out_dir}/started"
          sleep 30 & wait
        sweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}
        """, BASE.replace("command: echo {run_id} {params} {tokens}\n", ""))
    out = tmp_path / "out"
    assert generate(capsys, spec, out)[0] == 0
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "0"}
    proc = subprocess.Popen(["bash", str(out / "arrays" / "a00.sbatch")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        if (out / "started").exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)  # what Slurm's --signal=B:USR1@N does near the time limit
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 7, stderr
    assert (out / "got").read_text() == "usr1\n"
    assert "exit code 7 after USR1" in stdout
    assert not (out / "done" / os.listdir(out / "done")[0] if os.listdir(out / "done") else out / "x").exists()


FAKE_SBATCH = """#!/bin/bash
# records its arguments; prints job ids 101, 102, ... as `sbatch --parsable` does on a multi-cluster site
n=$(( $(cat "$FAKE_STATE" 2>/dev/null || echo 100) + 1 ))
echo "$n" > "$FAKE_STATE"
echo "$*" >> "$FAKE_LOG"
case " $* " in *" --test-only "*) echo "sbatch: Job $n to start at now" >&2; exit 0 ;; esac
echo "$n;cluster"
"""


def test_submit_sh_submits_in_order_chains_with_afterany_and_refuses_twice(tmp_path, capsys, catalog):
    out = tmp_path / "out"
    assert generate(capsys, SPECS / "golden.yaml", out)[0] == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_STATE": str(tmp_path / "state"), "FAKE_LOG": str(tmp_path / "log")}
    test_only = subprocess.run([str(out / "submit.sh"), "--test-only"], env=env, capture_output=True, text=True)
    assert test_only.returncode == 0, test_only.stderr
    assert (tmp_path / "log").read_text().splitlines() == ["--test-only arrays/a00.sbatch 1", "--test-only arrays/a01.sbatch 1"]
    assert not (out / "submitted.tsv").exists()
    (tmp_path / "log").unlink()
    shutil.rmtree(out / "logs")
    done = subprocess.run(["bash", str(out / "submit.sh")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "logs").is_dir()  # recreated: a missing --output directory fails the job
    assert (tmp_path / "log").read_text().splitlines() == [
        "--parsable arrays/a00.sbatch 1", "--parsable arrays/a01.sbatch 1", "--parsable --dependency=afterany:104 arrays/a01.sbatch 2"]
    assert (out / "submitted.tsv").read_text() == "array\tsegment\tjob_id\na00\t1\t103\na01\t1\t104\na01\t2\t105\n"
    again = subprocess.run(["bash", str(out / "submit.sh")], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "submitted already" in again.stderr


def test_rerun_is_byte_identical_and_nothing_is_overwritten_without_force(tmp_path, capsys):
    spec, out = spec_file(tmp_path, ISOFLOP), tmp_path / "out"
    assert generate(capsys, spec, out)[0] == 0
    first = tree(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    code, _, err = generate(capsys, spec, out)
    assert code == 2 and "exists" in err and "--force" in err
    assert tree(out) == first and {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert generate(capsys, spec, out, "--force")[0] == 0
    assert tree(out) == first
    spec.write_text(BASE + "law: chinchilla-approach3\nsweep: {kind: isoflop, budgets: [1e18], points: 2, span: 4}\n")
    assert generate(capsys, spec, out, "--force")[0] == 0
    assert sorted(p.name for p in (out / "arrays").iterdir()) == sorted(
        f"{r['array']}.sbatch" for r in {r["array"]: r for r in manifest_rows(out)}.values())


# --- spec errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body,expected", [
    ("max_concurent: 2\n" + ISOFLOP, "spec.yaml:6: max_concurent: unknown field; did you mean 'max_concurrent'? (valid: name,"),
    ("sweep:\n  kind: isoflop\n  budget: [1e18]\n", "spec.yaml:8: sweep.budget: unknown field; did you mean 'budgets'? (valid: kind, budgets, gpu_hours, decades, n_budgets, points, span)"),
    ("sweep:\n  kind: list\n  runs:\n    - {parms: 1, tokens: 2}\n", "spec.yaml:9: sweep.runs.0.parms: unknown field; did you mean 'params'?"),
    ("sweep:\n  kind: isoflops\n", "spec.yaml:7: sweep.kind: Input tag 'isoflops'"),
    ("sweep: {kind: isoflop, budgets: [1e18, lots]}\n", "spec.yaml:6: sweep.budgets.1: 'lots' is not a number"),
    ("sweep: {kind: isoflop, budgets: [-1e18]}\n", "sweep.budgets.0: must be a positive finite number"),
    ("partition: boster\nsweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}\n", "spec.yaml:6: partition: unknown partition of juwels-booster 'boster'; did you mean booster"),
    ("law: chinchila\n" + ISOFLOP.replace("law: chinchilla-approach3\n", ""), "spec.yaml:6: law: unknown law 'chinchila'"),
    ("sbatch: {time: '10:00'}\nsweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}\n", "spec.yaml:6: sbatch.time: set by the planner"),
    ("sweep: {kind: list, runs: [{params: 1e9, tokens: 1e13}]}\n", "nodes: run t-0-N1B-D10T needs"),
])
def test_spec_errors_name_file_line_and_field(tmp_path, capsys, body, expected):
    code, out, err = generate(capsys, spec_file(tmp_path, body), tmp_path / "out")
    assert code == 2 and out == ""
    assert expected in err, err
    assert not (tmp_path / "out").exists()


def test_cluster_and_placeholder_errors(tmp_path, capsys):
    spec = spec_file(tmp_path, "sweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}\n",
                     BASE.replace("juwels-booster", "juwels-boster").replace("{params}", "{parms}"))
    code, _, err = generate(capsys, spec, tmp_path / "out")
    assert code == 2 and "spec.yaml:2: cluster: unknown cluster 'juwels-boster'; did you mean juwels-booster" in err
    spec = spec_file(tmp_path, "sweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}\n", BASE.replace("{params}", "{parms}"))
    code, _, err = generate(capsys, spec, tmp_path / "out")
    assert code == 2 and "spec.yaml:5: command: unknown placeholder {parms}; did you mean {params}?" in err
    ok = spec_file(tmp_path, "sweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}\n",
                   BASE.replace("echo {run_id}", "awk '{{print}}' ${HOME}/x; echo {run_id}"))
    assert generate(capsys, ok, tmp_path / "ok")[0] == 0
    assert "awk '{print}' ${HOME}/x; echo ${PLANNER_RUN_ID}" in (tmp_path / "ok" / "arrays" / "a00.sbatch").read_text()


def test_lumi_needs_an_mfu_and_says_where(tmp_path, capsys):
    spec = spec_file(tmp_path, ISOFLOP, BASE.replace("juwels-booster", "lumi-g"))
    code, _, err = generate(capsys, spec, tmp_path / "out")
    assert code == 2 and "spec.yaml:1: mfu: no published" in err and err.endswith("give one (e.g. 0.3)\n")


def test_parse_spec_reports_every_problem_count():
    src = Source("s.yaml", {("name",): 1})
    with pytest.raises(Exception) as exc:
        parse_spec({"name": "bad name", "cluster": "c"}, src)
    assert "s.yaml:1: name:" in str(exc.value) and "more)" in str(exc.value)


# --- summary --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "latex"])
def test_summary_in_every_format(tmp_path, capsys, fmt):
    code, out, err = generate(capsys, SPECS / "golden.yaml", tmp_path / "out", "--format", fmt)
    assert code == 0, err
    rows = manifest_rows(tmp_path / "out")
    gpu_hours = sum(float(r["gpu_hours"]) for r in rows)
    if fmt == "json":
        data = json.loads(out)
        assert data["runs"] == 3 and len(data["arrays"]) == 2 and data["total"]["arrays"] == 2
        assert data["total"]["gpu_hours"] == pytest.approx(gpu_hours)
        assert data["total"]["node_hours"] == pytest.approx(gpu_hours / 4)
    elif fmt == "csv":
        table = list(csv.DictReader(out.splitlines()))
        assert [r["array"] for r in table] == ["a00", "a01", "total"]
        assert float(table[-1]["gpu_hours"]) == pytest.approx(gpu_hours)
    else:
        assert "GPU-hours" in out and "node-hours" in out and "total" in out
        assert ("\\toprule" in out) == (fmt == "latex")
    assert "wrote" in err and "3 runs in 2 arrays" in err


def test_samples_sweep_takes_clip_models_from_the_catalog(tmp_path, catalog, capsys):
    """A catalog name costs exactly what `planner plan --model M --samples S` costs."""
    spec = spec_file(tmp_path, "nodes: 8\nsweep: {kind: samples, models: [openclip-vit-l-14, {name: mine, params: 427.62M, "
                               "gmacs_per_sample: 87.73}], samples_seen: [1e9]}\n")
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "out"), "--format", "json"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open()))
    by_model = {r["model"]: r for r in rows}
    code, plan_out, _ = run("plan --model openclip-vit-l-14 --samples 1e9 --cluster juwels-booster --nodes 8 --format json", capsys)
    planned = json.loads(plan_out)
    assert float(by_model["openclip-vit-l-14"]["flops"]) == pytest.approx(planned["flops"], rel=1e-12)
    assert float(by_model["openclip-vit-l-14"]["gpu_hours"]) == pytest.approx(planned["gpu_hours"], rel=1e-9)
    assert float(by_model["mine"]["flops"]) == pytest.approx(6 * 87.73e9 * 1e9, rel=1e-12)


@pytest.mark.parametrize("models, message", [
    ("[openclip-vit-l-41]", "did you mean"),
    ("[llama-2-7b]", "not a CLIP model"),
    ("[{name: x, params: 1e8}]", "give both params and gmacs_per_sample"),
])
def test_samples_sweep_bad_models(tmp_path, capsys, models, message):
    spec = spec_file(tmp_path, f"nodes: 1\nsweep: {{kind: samples, models: {models}, samples_seen: [1e9]}}\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_throttle_sweep_chains_the_arrays_in_submit_sh(tmp_path, capsys):
    body = ("throttle: sweep\nsweep: {kind: list, runs: [{params: 1e6, tokens: 1e8, nodes: 1}, "
            "{params: 1e6, tokens: 1e8, nodes: 2}, {params: 2e6, tokens: 1e8, nodes: 2}]}\n")
    spec = spec_file(tmp_path, body, BASE.replace("max_concurrent: 4", "max_concurrent: 2"))
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    submit_lines = [ln for ln in (tmp_path / "out" / "submit.sh").read_text().splitlines() if ln.startswith("submit ")]
    assert submit_lines == ["submit a00 1 1", 'submit a01 1 1 "$job"']
    assert "arrays run one after another (throttle: sweep), so up to 2 tasks at once" in out
    side = spec_file(tmp_path, body.replace("throttle: sweep\n", ""), BASE.replace("max_concurrent: 4", "max_concurrent: 2"))
    code, out, err = run(["sweep", str(side), "--out", str(tmp_path / "side")], capsys)
    assert [ln for ln in (tmp_path / "side" / "submit.sh").read_text().splitlines() if ln.startswith("submit ")] == \
        ["submit a00 1 1", "submit a01 1 1"]
    assert "so up to 3 tasks at once" in out


def test_isoflop_budgets_from_gpu_hours_cost_what_was_given(tmp_path, catalog):
    sw = designed(tmp_path, """\
        nodes: auto
        target_hours: 20
        sweep: {kind: isoflop, gpu_hours: 20000, decades: 2, n_budgets: 5, points: 5}
        """, catalog)
    total = sum(r.gpu_hours for r in sw.runs)
    assert 0.99 * 20000 < total <= 20000
    budgets = sorted({r.budget for r in sw.runs})
    assert len(budgets) == 5 and math.log10(budgets[-1] / budgets[0]) == pytest.approx(2.0, abs=0.01)
    assert all(6 * r.params * r.tokens == pytest.approx(r.budget, rel=1e-6) for r in sw.runs)
    assert all(r.flops > r.budget for r in sw.runs)  # hardware FLOPs add attention to the law's 6ND
    assert "budgets: 5 log-spaced over 2 decades" in sw.notes[0]
    # nodes: auto with target_hours: every run fits in memory and is estimated within 20 h
    assert all(r.est_hours <= 20 for r in sw.runs) and len({r.nodes for r in sw.runs}) > 1
    assert all(r.segments == 1 for r in sw.runs)


def test_nodes_auto_is_the_fewest_that_hold_the_model(tmp_path, catalog):
    from planner.costing.layout import min_nodes

    body = "nodes: auto\nsweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}, {params: 70e9, tokens: 1e9}]}\n"
    sw = designed(tmp_path, "node_ladder: none\n" + body, catalog)
    cluster = catalog.cluster("juwels-booster")
    acc = catalog.accelerator(cluster.accelerator)
    fewest = [min_nodes(1e8, cluster, acc).units, min_nodes(70e9, cluster, acc).units]
    assert [r.nodes for r in sw.runs] == fewest and fewest[1] == 30
    # the default node ladder rounds them up to powers of two
    assert [r.nodes for r in designed(tmp_path, body, catalog).runs] == [1, 32]


def test_narrow_sweeps_are_warned_about_their_span(tmp_path, catalog):
    sw = designed(tmp_path, "sweep: {kind: isoflop, budgets: [1e18, 3e18], points: 3}\n", catalog)
    assert any(w.topic == "sweep" and "span 0.48 decades" in w.message for w in sw.warnings)


@pytest.mark.parametrize("body, message", [
    ("sweep: {kind: isoflop, budgets: [1e18], gpu_hours: 100}\n", "not both"),
    ("sweep: {kind: isoflop}\n", "give budgets"),
    ("sweep: {kind: isoflop, budgets: [1e18], decades: 3}\n", "decades and n_budgets go with gpu_hours"),
    ("target_hours: 10\nsweep: {kind: isoflop, budgets: [1e18]}\n", "goes with nodes: auto"),
    ("nodes: automatic\nsweep: {kind: isoflop, budgets: [1e18]}\n", "nodes"),
])
def test_bad_budget_specs(tmp_path, capsys, body, message):
    code, _, err = run(["sweep", str(spec_file(tmp_path, body)), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
