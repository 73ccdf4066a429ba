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
