"""Every `$ planner ...` line in the README's console blocks runs and exits 0, so the docs never rot."""

import re
import shlex
from pathlib import Path

import pytest
from cli_helpers import run

ROOT = Path(__file__).resolve().parent.parent


def readme_commands(path: Path = ROOT / "README.md") -> list[str]:
    commands, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```console"
            continue
        if inside and line.startswith("$ "):
            command = line[2:].strip()
            command = re.sub(r"^pip install [^&]*&&\s*", "", command)  # the install part of line 1
            if command.startswith("planner "):
                commands.append(command)
    return commands


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```console") + 1: lines.index("```console") + 3]
    assert block[0].startswith("$ pip install . && planner plan")
    assert block[1] == "$ pip install '.[test]' && pytest"


DOCS = [ROOT / "examples" / "openclip" / "README.md", ROOT / "docs" / "memory.md", *sorted((ROOT / "docs" / "tutorials").glob("*.md"))]


@pytest.mark.parametrize("command", readme_commands() + [c for d in DOCS for c in readme_commands(d)])
def test_readme_command_runs(command, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(shlex.split(command)[1:], capsys)
    assert code == 0, err
    assert out.strip() or "--out" in command
