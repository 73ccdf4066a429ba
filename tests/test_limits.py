"""Slurm limits for `planner sweep` (planner.sweep.limits): read from recorded `scontrol`/`sacctmgr` text
(tests/data/scontrol/), never from whatever Slurm happens to run on the test machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run

from planner.errors import PlannerError
from planner.sweep import limits as lim
from planner.sweep.design import design, load_spec
from planner.sweep.slurm import files

RECORDED = Path(__file__).parent / "data" / "scontrol"
CONFIG = (RECORDED / "show-config.txt").read_text()
PARTITIONS = (RECORDED / "show-partition.txt").read_text()
ASSOC = (RECORDED / "sacctmgr-assoc.txt").read_text()
ASSOC_LIMITS = (RECORDED / "sacctmgr-assoc-limits.txt").read_text()


def replay(config: str = CONFIG, partitions: str = PARTITIONS, assoc: str | Exception = ASSOC):
    """A runner that answers as the recorded cluster did."""
    def runner(argv):
        if argv[:3] == ["scontrol", "show", "config"]:
            return config
        if argv[:3] == ["scontrol", "show", "partition"]:
            return partitions
        if argv[0] == "sacctmgr":
            if isinstance(assoc, Exception):
                raise assoc
            return assoc
        raise AssertionError(argv)
    return runner


def test_recorded_text_parses():
    config = lim.parse_config(CONFIG)
    assert config["MaxArraySize"] == "1001" and config["MaxJobCount"] == "10000" and config["ClusterName"] == "localcluster"
    parts = {p.name: p for p in lim.parse_partitions(PARTITIONS)}
    assert parts["booster"] == lim.PartitionLimits("booster", None, 1440, 4, "UP")
    assert parts["develbooster"].max_minutes == 120 and parts["tiny"].max_minutes == 1
    live = lim.read_live(replay()).live
    assert live is not None and live.cluster_name == "localcluster" and live.max_array_size == 1001
    assert live.associations == (lim.Association("root", "", None),)


@pytest.mark.parametrize("text, minutes", [
    ("1-00:00:00", 1440), ("02:00:00", 120), ("30", 30), ("5:30", 6), ("2-12", 3600), ("1-02:30", 1590),
    ("00:01:00", 1), ("UNLIMITED", None), ("infinite", None),
])
def test_slurm_times(text, minutes):
    assert lim.slurm_minutes(text) == minutes


@pytest.mark.parametrize("config, partitions, reason", [
    ("garbage\n", PARTITIONS, "no 'MaxArraySize = N' line"),
    (CONFIG.replace("MaxArraySize            = 1001", "MaxArraySize            = lots"), PARTITIONS, "MaxArraySize=lots"),
    (CONFIG, "", "printed no partition"),
    (CONFIG, PARTITIONS.replace("MaxTime=1-00:00:00", "MaxTime=soon"), "'soon' is not a Slurm time"),
    (CONFIG, PARTITIONS.replace(" TotalNodes=4", "", 1), "partition booster: no TotalNodes="),
    (CONFIG, "Nodes=node[01-04] State=UP\n", "a line without PartitionName="),
])
def test_malformed_text_falls_back_with_a_reason(config, partitions, reason):
    answer = lim.read_live(replay(config, partitions))
    assert answer.live is None and len(answer.why_not) == 1 and reason in answer.why_not[0], answer.why_not


@pytest.mark.parametrize("error, reason", [
    (FileNotFoundError("scontrol is not on PATH"), "Slurm not at hand (scontrol is not on PATH)"),
    (subprocess.TimeoutExpired(["scontrol"], 5), "Slurm did not answer within 5 s"),
    (subprocess.SubprocessError("scontrol show config: slurm_load_ctl_conf error"), "Slurm did not answer (scontrol"),
])
def test_a_silent_slurm_is_a_reason_not_a_traceback(error, reason):
    def runner(argv):
        raise error
    answer = lim.read_live(runner)
    assert answer.live is None and reason in answer.why_not[0]


def test_submit_limits_from_sacctmgr():
    assocs = lim.parse_associations(ASSOC_LIMITS)
    assert lim.submit_limit(assocs, "myproject", "booster")[0] == 200
    assert lim.submit_limit(assocs, "myproject", "develbooster")[0] == 20  # the partition's own association is tighter
    assert lim.submit_limit(assocs, "otherproject", "booster") == (None, "MaxSubmitJobs not set on the association "
                                                                   "(a parent account or a QOS may still limit)")
    assert lim.submit_limit(assocs, None, "develbooster")[0] == 20
    assert "no association of account nobody" in lim.submit_limit(assocs, "nobody", "booster")[1]
    broken = lim.read_live(replay(assoc="root\n")).live  # not Account|Partition|MaxSubmitJobs: the rest still counts
    assert broken is not None and broken.associations is None and "could not read sacctmgr" in broken.submit_note
    silent = lim.read_live(replay(assoc=subprocess.SubprocessError("not running a supported accounting_storage plugin")))
    assert silent.live is not None and "MaxSubmitJobs unknown (sacctmgr: not running" in silent.live.submit_note


SPEC = """\
name: lim
cluster: juwels-booster
account: myproject
partition: booster
nodes: {nodes}
max_concurrent: 4
command: echo {{run_id}}
sweep: {{kind: list, runs: [{runs}]}}
"""


def spec_at(tmp_path: Path, nodes: int | str = 1, runs: int = 3, extra: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(nodes=nodes, runs=", ".join(["{params: 1e8, tokens: 1e9}"] * runs)) + extra)
    return path


def designed(tmp_path, catalog, answer, insisted=True, **kw):
    """The spec designed with what Slurm said; `insisted` as `--limits slurm` (the recorded cluster is not JUWELS)."""
    import dataclasses

    spec, src = load_spec(spec_at(tmp_path, **kw))
    answer = dataclasses.replace(answer, insisted=insisted) if answer is not None else None
    return design(spec, src, catalog, Path("/scratch/lim"), slurm=answer)


def test_a_slurm_that_is_not_the_specs_cluster_is_not_asked_about_it(tmp_path, catalog):
    """By default (`--limits auto`) a laptop's or CI runner's Slurm says nothing about JUWELS: its limits apply only to
    the catalog cluster whose slurm_cluster_name it is."""
    sw = designed(tmp_path, catalog, lim.read_live(replay()), insisted=False)
    assert sw.limits.source == "catalog" and sw.limits.max_nodes == 936
    assert "the Slurm at hand is cluster localcluster, not juwels-booster's (its catalog entry names no " \
           "slurm_cluster_name)" in sw.limits.note
    named = catalog.cluster("juwels-booster").model_copy(update={"slurm_cluster_name": "localcluster"})
    spec, src = load_spec(spec_at(tmp_path))
    limits = lim.resolve(named, named.partition("booster"), spec.max_array_size, lim.read_live(replay()))
    assert limits.source == "slurm" and limits.max_nodes == 4


def test_live_limits_are_checked_against_the_catalog(tmp_path, catalog):
    sw = designed(tmp_path, catalog, lim.read_live(replay(assoc=ASSOC_LIMITS)))
    assert sw.limits is not None and sw.limits.source == "slurm" and sw.limits.max_nodes == 4
    assert sw.limits.max_submit_jobs == 200 and sw.limits.max_array_size == 1000  # the spec's 1000 < MaxArraySize 1001
    assert "limits: live Slurm (cluster localcluster, scontrol): partition booster 4 nodes, 24 h" in sw.limits.note
    assert any("Slurm allows 4 nodes per job, the catalog 936" in w.message for w in sw.warnings)
    catalog_only = designed(tmp_path, catalog, None)
    assert catalog_only.limits.source == "catalog" and catalog_only.limits.max_nodes == 936
    # the files depend only on the inputs and the limits used: here the live limits change nothing
    assert files(sw) == files(catalog_only)


def test_a_run_beyond_the_live_partition_is_an_error_naming_nodes(tmp_path, catalog):
    with pytest.raises(PlannerError) as exc:
        designed(tmp_path, catalog, lim.read_live(replay()), nodes=8)
    assert exc.value.field == ("nodes",)
    assert "8 nodes exceed the 4-node limit of partition booster (from live Slurm cluster localcluster)" in str(exc.value)


def test_arrays_are_split_at_max_array_size(tmp_path, catalog):
    answer = lim.read_live(replay(CONFIG.replace("MaxArraySize            = 1001", "MaxArraySize            = 4")))
    sw = designed(tmp_path, catalog, answer, runs=10)
    assert [len(a.runs) for a in sw.arrays] == [4, 4, 2] and sw.limits.max_array_size == 4
    assert all(max(r.index for r in a.runs) <= 3 for a in sw.arrays)  # task indices stay below MaxArraySize
    assert [len(a.runs) for a in designed(tmp_path, catalog, None, runs=10).arrays] == [10]
    with pytest.raises(PlannerError, match="job arrays disabled"):
        designed(tmp_path, catalog, lim.read_live(replay(CONFIG.replace("= 1001", "= 0"))))


def test_submit_limits_warn(tmp_path, catalog):
    few = ASSOC_LIMITS.replace("myproject||200", "myproject||5")
    sw = designed(tmp_path, catalog, lim.read_live(replay(assoc=few)), runs=6)
    assert any("submits 6 array tasks in 1 array job(s), above MaxSubmitJobs 5" in w.message for w in sw.warnings)
    assert not any("MaxSubmitJobs" in w.message for w in designed(tmp_path, catalog, lim.read_live(replay(assoc=few)),
                                                                    runs=5).warnings)


def test_a_slurm_without_the_partition_falls_back_to_the_catalog(tmp_path, catalog):
    answer = lim.read_live(replay(partitions=PARTITIONS.replace("PartitionName=booster", "PartitionName=batch")))
    sw = designed(tmp_path, catalog, answer)
    assert sw.limits.source == "catalog" and sw.limits.max_nodes == 936
    assert any("has no partition booster: the catalog's limits are used" in w.message for w in sw.warnings)


def test_cli_limits_option(tmp_path, capsys, monkeypatch):
    spec = spec_at(tmp_path)
    monkeypatch.setattr(lim, "run_command", replay())
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "auto"), "--limits", "auto"], capsys)
    assert check_stderr(code, err) is None and "the Slurm at hand is cluster localcluster, not juwels-booster's" in err
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "live"), "--limits", "slurm"], capsys)
    assert check_stderr(code, err) is None and "limits: live Slurm (cluster localcluster, scontrol)" in err
    assert "limits: live Slurm" in out
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "cat")], capsys)  # the suite's default: catalog
    assert check_stderr(code, err) is None and "limits: catalog (juwels-booster partition booster" in err
    for rel in ("manifest.csv", "submit.sh", "arrays/a00.sbatch"):  # same inputs and limits: same files
        assert (tmp_path / "live" / rel).read_text().replace("/live", "/cat") == (tmp_path / "cat" / rel).read_text()

    monkeypatch.setattr(lim, "run_command", replay(partitions=PARTITIONS.replace("PartitionName=booster", "PartitionName=b")))
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o1"), "--limits", "slurm"], capsys)
    assert check_stderr(code, err) == "planner: error: --limits: the Slurm at hand (cluster localcluster) has no partition " \
        "booster"
    assert not (tmp_path / "o1").exists()

    def absent(argv):
        raise FileNotFoundError(f"{argv[0]} is not on PATH")
    monkeypatch.setattr(lim, "run_command", absent)
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o2"), "--limits", "slurm"], capsys)
    assert check_stderr(code, err) == "planner: error: --limits: Slurm not at hand (scontrol is not on PATH)"
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o3"), "--limits", "auto"], capsys)
    assert check_stderr(code, err) is None
    assert "limits: catalog (juwels-booster partition booster: 936 nodes, 24 h; arrays of up to 1000 tasks from " \
           "max_array_size) (Slurm not at hand (scontrol is not on PATH))" in err
