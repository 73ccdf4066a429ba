"""Catalog data: everything loads, every number is sourced, the sparsity trap is avoided, and
bad files are reported as file:line: field: message."""

import json
import re
import textwrap

import pytest
from cli_helpers import run

from planner.catalog import builtin_dir
from planner.errors import PlannerError
from planner.report.catalog_view import check_file

ACCELERATORS = ["a100-sxm-40gb", "a100-sxm-80gb", "a100-sxm-64gb", "a100-pcie-40gb", "a100-pcie-80gb",
                "v100-sxm2-16gb", "h100-sxm", "h100-pcie", "h100-nvl", "gh200-96gb", "h200", "b200",
                "mi250x", "mi250x-gcd", "mi300x", "mi300a"]
CLUSTERS = ["juwels-booster", "jureca-dc-gpu", "jupiter-booster", "lumi-g", "leonardo-booster",
            "marenostrum5-acc", "frontier", "perlmutter-gpu", "alps", "isambard-ai", "jean-zay-a100",
            "summit", "cloud-8xa100-80gb", "cloud-8xh100"]
LAWS = ["chinchilla-approach1", "chinchilla-approach2", "chinchilla-approach3", "chinchilla-approach3-unrounded",
        "epoch-2024", "kaplan-2020", "deepseek-2024", "llama3-2024", "muennighoff-2023"]


def test_required_entries_exist(catalog):
    assert set(ACCELERATORS) <= set(catalog.names("accelerators"))
    assert set(CLUSTERS) <= set(catalog.names("clusters"))
    assert set(LAWS) <= set(catalog.names("laws"))


def test_every_file_validates(capsys):
    code, out, err = run(["catalog", "validate", str(builtin_dir())], capsys)
    assert code == 0, err
    assert out.startswith("ok:")


def test_every_number_has_a_resolvable_source(catalog):
    for kind in ("accelerators", "clusters", "mfu", "laws"):
        for entry in catalog.all(kind):
            numbers = entry.sourced_numbers()
            assert numbers or kind == "mfu", entry.name
            for path, item in numbers:
                assert item.source in entry.sources, (entry.name, path)
                assert entry.status_of(item) in ("verified", "secondary", "unverified", "derived")


@pytest.mark.parametrize("name, bf16", [("h100-sxm", 989.4), ("a100-sxm-40gb", 312), ("h200", 989), ("mi300x", 1307.4),
                                        ("mi250x", 383), ("mi250x-gcd", 191.5), ("b200", 2250), ("v100-sxm2-16gb", 125)])
def test_dense_not_sparse_peaks(catalog, name, bf16):
    """Datasheets print sparse tensor figures (H100 SXM: 1979); the catalog holds dense ones."""
    assert catalog.accelerator(name).peak_tflops["bf16"].value == pytest.approx(bf16, rel=1e-3)


def test_mi250x_gcd_is_half_a_package(catalog):
    oam, gcd = catalog.accelerator("mi250x"), catalog.accelerator("mi250x-gcd")
    assert gcd.peak_tflops["bf16"].value * 2 == pytest.approx(oam.peak_tflops["bf16"].value, rel=1e-3)
    assert gcd.memory_gb.value * 2 == oam.memory_gb.value
    for name in ("lumi-g", "frontier"):
        cluster = catalog.cluster(name)
        assert cluster.accelerator == "mi250x-gcd" and cluster.gpus_per_node_int == 8
    lumi = catalog.cluster("lumi-g")
    assert lumi.accounting.unit == "gpu-h" and lumi.accounting.units_per_node_hour.value == 4


def test_slide_claims(catalog):
    """hardware.md §4: JUWELS Booster 3,744 x 312 = 1.168 EF dense bf16; JUPITER 23,752 GH200."""
    jwb = catalog.cluster("juwels-booster")
    gpus = int(jwb.nodes.value) * jwb.gpus_per_node_int
    assert gpus == 3744
    assert gpus * catalog.accelerator(jwb.accelerator).peak_flops("fp16") == pytest.approx(1.168e18, rel=1e-3)
    jup = catalog.cluster("jupiter-booster")
    assert int(jup.nodes.value) * jup.gpus_per_node_int == 23752
    assert jup.accelerator == "gh200-96gb"


def test_cluster_references_resolve(catalog):
    for cluster in catalog.all("clusters"):
        acc = catalog.accelerator(cluster.accelerator)
        assert cluster.default_partition.max_wall_hours.value > 0
        assert cluster.node_power_kw.value > 0
        if cluster.mfu_profile:
            assert acc.name in catalog.mfu_profile(cluster.mfu_profile).accelerators


def test_unverified_values_are_shown(capsys):
    code, out, _ = run("catalog show juwels-booster", capsys)
    assert code == 0
    assert "unverified" in out
    assert "1.168" in out  # system dense bf16 peak in EFLOP/s


def test_catalog_list_every_kind(capsys):
    from planner.catalog import KINDS

    for kind in KINDS:
        code, out, _ = run(f"catalog list {kind} --format csv", capsys)
        assert code == 0 and len(out.splitlines()) >= 2, kind
    code, out, _ = run("catalog list campaigns --format json", capsys)
    (entry,) = json.loads(out)
    assert entry["name"] == "published-runs" and entry["runs"] >= 30 + 13 and entry["fitted"] >= 30


def write(tmp_path, kind, name, text):
    d = tmp_path / kind
    d.mkdir(exist_ok=True)
    f = d / f"{name}.yaml"
    f.write_text(textwrap.dedent(text))
    return f


GOOD_ACC = """\
    name: test-gpu
    title: Test GPU
    vendor: other
    peak_tflops:
      bf16: {value: 100, source: s}
    memory_gb: {value: 10, source: s}
    tdp_w: {value: 300, source: s}
    sources:
      s: {citation: made up for a test, status: unverified}
"""


@pytest.mark.parametrize("edit, line, field, message", [
    (("memory_gb: {value: 10, source: s}", "memory_gb: {value: ten, source: s}"), 6, "memory_gb.value", "valid number"),
    (("tdp_w: {value: 300, source: s}", "tdp_w: {value: 300, source: nope}"), 7, "tdp_w", "not a key of `sources`"),
    (("vendor: other", "vendor: other\n    speed: 3"), 4, "speed", "unknown field"),
    (("    bf16: {value: 100, source: s}", "    fp16: {value: 100, source: s}"), 4, "peak_tflops", "bf16 peak is required"),
    (("    title: Test GPU\n", ""), 1, "title", "required field missing"),
    (("vendor: other", "vendor: nvidai"), 3, "vendor", "should be"),
    (("memory_gb: {value: 10, source: s}", "memory_gb: {value: .nan, source: s}"), 6, "memory_gb.value", "finite"),
])
def test_errors_name_file_line_and_field(tmp_path, edit, line, field, message):
    f = write(tmp_path, "accelerators", "test-gpu", GOOD_ACC.replace(*edit))
    errors, entry = check_file(f)
    assert entry is None
    assert errors[0].startswith(f"{f}:{line}: {field}: "), errors[0]
    assert message in errors[0]


def test_good_file_passes(tmp_path):
    errors, entry = check_file(write(tmp_path, "accelerators", "test-gpu", GOOD_ACC))
    assert errors == [] and entry.peak_flops("bf16") == 100e12


@pytest.mark.parametrize("text, message", [
    ("a: &x [1, 2]\nb: *x\n", "anchors and aliases"),
    ("a: 1\na: 2\n", "duplicate key"),
    ("a: [1, 2\n", "invalid YAML"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("a:" + " [" * 60 + "]" * 60 + "\n", "nesting"),
])
def test_hostile_yaml_is_refused_with_a_line(tmp_path, text, message):
    f = tmp_path / "accelerators" / "x.yaml"
    f.parent.mkdir()
    f.write_text(text)
    errors, _ = check_file(f)
    assert message in errors[0] and errors[0].startswith(f"{f}:")


def test_name_must_match_file(tmp_path):
    f = write(tmp_path, "accelerators", "other-name", GOOD_ACC)
    errors, _ = check_file(f)
    assert "must equal the file name" in errors[0]


def test_user_catalog_by_option_and_environment(tmp_path, capsys, monkeypatch):
    write(tmp_path, "accelerators", "test-gpu", GOOD_ACC)
    code, out, _ = run(["--catalog", str(tmp_path), "plan", "--flops", "1e21", "--accelerator", "test-gpu",
                        "--mfu", "0.5", "--flops-convention", "6ND", "--format", "json"], capsys)
    assert code == 0
    assert '"accelerator": "test-gpu"' in out
    monkeypatch.setenv("PLANNER_CATALOG_PATH", str(tmp_path))
    code, out, _ = run("plan --flops 1e21 --accelerator test-gpu --mfu 0.5 --flops-convention 6ND --format json", capsys)
    assert code == 0 and '"gpu_hours": 5555.5' in out  # 1e21 / (100e12 * 0.5 * 3600)


def test_validate_reports_bad_cross_reference(tmp_path, capsys):
    src = (builtin_dir() / "clusters" / "juwels-booster.yaml").read_text()
    f = write(tmp_path, "clusters", "juwels-booster", src.replace("accelerator: a100-sxm-40gb", "accelerator: a100-sxm-4gb"))
    code, _, err = run(["catalog", "validate", str(f)], capsys)
    assert code == 2
    assert f"{f}:" in err and "accelerator: unknown accelerator 'a100-sxm-4gb'; did you mean" in err and "a100-sxm-40gb" in err


def test_unknown_name_suggests(catalog):
    with pytest.raises(PlannerError, match="did you mean h100-sxm"):
        catalog.accelerator("h100-sx")


def test_parameter_counts_from_shape_match_published(catalog):
    """Within 1% for every dense model; Llama 2 7B is 6,738,415,616 exactly (formulas.md §1)."""
    dense = [m for m in catalog.all("models") if m.kind == "dense-lm"]
    assert len(dense) >= 15
    for m in dense:
        assert m.shape.params() == pytest.approx(m.published_params.value, rel=0.01), m.name
    assert catalog.model("llama-2-7b").shape.params() == 6_738_415_616
    assert catalog.model("gpt-3-175b").shape.params() == 174_604_259_328  # tied, learned positions


def test_moe_and_clip_models(catalog):
    v3 = catalog.model("deepseek-v3")
    assert v3.params == 671e9 and v3.active_params == 37e9
    assert catalog.model("openclip-vit-l-14").gmacs_per_sample.value == 87.73


def test_provenance_fingerprint_follows_the_catalog_data(tmp_path):
    """Results record what they were computed with: the same catalog data, the same fingerprint."""
    import shutil

    from planner.catalog import Catalog, builtin_dir

    builtin = Catalog((builtin_dir(),))
    assert Catalog((builtin_dir(),)).fingerprint() == builtin.fingerprint()
    user = tmp_path / "mine"
    (user / "accelerators").mkdir(parents=True)
    shutil.copy(builtin_dir() / "accelerators" / "h100-sxm.yaml", user / "accelerators" / "h100-sxm.yaml")
    same_bytes = Catalog((builtin_dir(), user))
    assert same_bytes.fingerprint() == builtin.fingerprint()  # an override with identical bytes changes nothing
    changed = user / "accelerators" / "h100-sxm.yaml"
    changed.write_text(changed.read_text().replace("989.4", "989.5"))
    assert Catalog((builtin_dir(), user)).fingerprint() != builtin.fingerprint()
    assert Catalog((builtin_dir(), user)).provenance()["user_catalog_dirs"] == 1


def test_no_catalog_or_code_cites_our_private_notes():
    """Every source a user sees is public: never the reference notes the project was built from."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    notes = re.compile(r"\.\./shared|shared/(data|reference)|\b(hardware|formulas|scaling-laws|slurm-and-grants)\.md")
    offenders = [str(p.relative_to(root)) for d in ("planner", "catalogs") for p in (root / d).rglob("*")
                 if p.suffix in (".py", ".yaml") and notes.search(p.read_text(errors="replace"))]
    assert offenders == []


def test_a_user_campaign_naming_a_language_model_as_its_clip_model_is_an_error_at_that_line(tmp_path, capsys):
    from cli_helpers import run

    (tmp_path / "campaigns").mkdir()
    spec = tmp_path / "campaigns" / "mine.yaml"
    spec.write_text("""name: mine
title: A user's runs
sources:
  mine: {citation: "our logs", url: "https://example.org/logs", status: verified}
runs:
  - name: clip-wrong-model
    workload: clip
    clip_model: llama-2-7b
    params: {value: 4.3e+8, source: mine}
    samples: {value: 1.0e+9, source: mine}
    accelerator: a100-sxm-40gb
    gpus: {value: 64, source: mine}
    gpu_hours: {value: 1000, source: mine}
    stack: open_clip
""")
    code, _, err = run(["--catalog", str(tmp_path), "plan", "--flops", "1e21", "--cluster", "juwels-booster", "--nodes", "8"],
                       capsys)
    assert code == 2
    assert err.splitlines()[-1] == (f"planner: error: {spec}:8: runs.0.clip_model: 'llama-2-7b' is not a CLIP model "
                                    "(it states no GMACs per sample)")
