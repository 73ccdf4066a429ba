"""Every YAML input (sweep spec, grant proposal, catalog file) answers a misspelt key the same way:
`file:line: key: unknown field; did you mean 'x'? (valid: ...)`, at the misspelt key's own line."""

import shutil
from pathlib import Path

import pytest

from cli_helpers import run

ROOT = Path(__file__).resolve().parent.parent


def misspell(src: Path, dst: Path, old: str, new: str) -> int:
    """Copy `src` to `dst` with the first line starting (after indentation) with `old` changed; its line number."""
    lines = src.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith(old):
            lines[i] = line.replace(old, new, 1)
            dst.write_text("".join(lines))
            return i + 1
    raise AssertionError(f"{old!r} not in {src}")


CASES = [  # (command, source file, key as written, misspelling, the key path the error names, the suggestion)
    ("sweep", "examples/sweeps/isoflop-juwels.yaml", "law:", "laww:", "laww", "law"),
    ("grant", "examples/grants/juwels-booster.yaml", "title:", "titel:", "titel", "title"),
    ("grant", "examples/grants/juwels-booster.yaml", "nodes:", "nodess:", "experiments.1.nodess", "nodes"),  # the first experiment is a sweep
    ("catalog", "catalogs/accelerators/h100-sxm.yaml", "memory_gb:", "memory_gib:", "memory_gib", "memory_gb"),
]


@pytest.mark.parametrize("command, source, old, new, field, meant", CASES, ids=[c[4] for c in CASES])
def test_a_misspelt_key_is_named_at_its_line_with_a_suggestion(tmp_path, capsys, command, source, old, new, field, meant):
    if command == "catalog":
        (tmp_path / "accelerators").mkdir()
        path = tmp_path / "accelerators" / Path(source).name
        args = ["catalog", "validate", str(tmp_path)]
    else:
        path = tmp_path / Path(source).name
        args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "sweep" else [])
        if command == "grant":
            for extra in (ROOT / Path(source).parent).glob("*.csv"):  # files a proposal refers to
                shutil.copy(extra, tmp_path)
    line = misspell(ROOT / source, path, old, new)
    code, _, err = run(args, capsys)
    assert code == 2
    expected = f"{path}:{line}: {field}: unknown field; did you mean '{meant}'? (valid: "
    assert expected in err, err


@pytest.mark.parametrize("key, value, message", [
    ("gpus_per_node", "0", "gpus_per_node: must be a whole number from 1 to 64, got 0"),
    ("nodes", "-132", "nodes: must be a whole number from 1 to 1e+06, got -132"),
    ("node_power_kw", "-4.0", "node_power_kw: must be a number from 0.01 to 100, got -4"),
    ("max_wall_hours", "0", "partitions.0.max_wall_hours: must be a number from 0.01 to 8784, got 0"),
    ("units_per_node_hour", "-48", "accounting.units_per_node_hour: must be a number from 1e-06 to 100000, got -48"),
])
def test_a_cluster_outside_physical_ranges_is_refused_at_its_line(tmp_path, capsys, key, value, message):
    # gpus_per_node 0 used to pass validation and then end a plan in ZeroDivisionError
    import re

    (tmp_path / "clusters").mkdir()
    path = tmp_path / "clusters" / "juwels-booster.yaml"
    lines = (ROOT / "catalogs" / "clusters" / "juwels-booster.yaml").read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if re.match(rf"\s*(- )?{key}:", line))
    lines[i] = re.sub(r"value: *[-0-9.e+]+", f"value: {value}", lines[i], count=1)
    path.write_text("".join(lines))
    code, _, err = run(["catalog", "validate", str(tmp_path)], capsys)
    assert code == 2 and f"{path}:{i + 1}: {message}" in err, err
