"""The README and the docs stay true.

- Every `$ planner ...` line of their console blocks runs and exits 0, so the docs never rot.
- Every README command prints exactly what tests/golden/readme/ holds (stdout, and the files an
  `--out` writes; only the temporary and the repository's directories are normalised), so a
  refactor that must not change behaviour can show that it did not. After a deliberate change of
  an output, regenerate with PLANNER_REGEN_GOLDEN=1 pytest tests/test_readme.py -k golden, and
  review the diff.

Commands run in-process from the repository root. Paths under /tmp in a command are moved into a
directory of the test's own; a command that reads what another one writes (`plan --law-file` after
`fit --out`) gets a copy of it from that command, run once per session (the fit takes seconds).
"""

import contextlib
import difflib
import hashlib
import io
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from planner.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "readme"
TMP = "<tmp>"  # a test's temporary directory, as the golden files write it
REPO = "<repo>"  # the checkout's directory (a sweep's scripts cd to its spec's), as the golden files write it
TMP_PATH = re.compile(r"/tmp/[\w.-]+")  # a fixed /tmp path in a documented command
SMALL = 64 * 1024  # files an --out writes up to this size are compared by content


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


DOCS = [ROOT / "examples" / "openclip" / "README.md", ROOT / "docs" / "memory.md", *sorted((ROOT / "docs" / "tutorials").glob("*.md"))]
README = list(dict.fromkeys(readme_commands()))  # the first command is shown twice
ALL = readme_commands() + [c for d in DOCS for c in readme_commands(d)]


def out_path(command: str) -> str | None:
    args = shlex.split(command)
    return args[args.index("--out") + 1] if "--out" in args else None


# a fixed /tmp path one documented command writes (--out) -> that command
PRODUCERS = {out_path(c): c for c in ALL if out_path(c) and TMP_PATH.fullmatch(out_path(c))}


# --- running a command ----------------------------------------------------------------------------


@dataclass
class Result:
    command: str  # as documented
    code: int
    out: str  # stdout, normalised (the temporary directory as <tmp>, the repository as <repo>)
    err: str  # stderr, normalised
    directory: Path  # where its /tmp paths went
    files: dict[str, tuple[bool, str | None]] = field(default_factory=dict)  # written under --out: path -> (executable, small text or None)


def invoke(args: list[str]) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, out.getvalue(), err.getvalue()


def normalise(text: str, directory: Path) -> str:
    """What varies between runs and checkouts, and nothing else: the temporary directory and the
    repository's."""
    for path, name in sorted([(str(directory), TMP), (str(ROOT), REPO)], key=lambda p: -len(p[0])):
        text = text.replace(path, name)
    return text


def run_in(command: str, directory: Path, session: "Session") -> Result:
    """Run a documented command from the repository root with its /tmp paths moved into `directory`;
    a /tmp path another documented command writes is first copied there from that command's run."""
    args = shlex.split(command)[1:]
    for path in sorted({m.group() for a in args for m in TMP_PATH.finditer(a)} - {out_path(command)}):
        assert path in PRODUCERS, f"`{command}` reads {path}, which no documented command writes"
        made = session.run(PRODUCERS[path])
        assert made.code == 0, made.err
        source, target = made.directory / Path(path).name, directory / Path(path).name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    before = set(directory.rglob("*"))
    args = [TMP_PATH.sub(lambda m: str(directory / Path(m.group()).name), a) for a in args]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code, out, err = invoke(args)
    finally:
        os.chdir(cwd)
    result = Result(command, code, normalise(out, directory), normalise(err, directory), directory)
    if out_path(command):
        for path in sorted(set(directory.rglob("*")) - before):
            name = path.relative_to(directory).as_posix()
            if path.is_dir():
                result.files[name + "/"] = (False, None)
                continue
            text = None
            if path.stat().st_size <= SMALL:
                with contextlib.suppress(UnicodeDecodeError):
                    text = normalise(path.read_text(encoding="utf-8"), directory)
            result.files[name] = (os.access(path, os.X_OK), text)
    return result


class Session:
    """Commands run once per session, each in a directory of its own: what a later command reads
    (the fit's law file)."""

    def __init__(self, factory: pytest.TempPathFactory):
        self.factory, self.done = factory, {}

    def run(self, command: str) -> Result:
        if command not in self.done:
            self.done[command] = run_in(command, self.factory.mktemp("readme"), self)
        return self.done[command]


@pytest.fixture(scope="session")
def session(tmp_path_factory) -> Session:
    return Session(tmp_path_factory)


def run_documented(command: str, tmp_path: Path, session: Session) -> Result:
    """In the test's own directory, except a command whose output another one reads: once a session."""
    return session.run(command) if command in PRODUCERS.values() else run_in(command, tmp_path, session)


# --- every documented command runs ----------------------------------------------------------------


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```console") + 1: lines.index("```console") + 3]
    assert block[0].startswith("$ pip install . && planner plan")
    assert block[1] == "$ pip install '.[test]' && pytest"


@pytest.mark.parametrize("command", ALL)
def test_readme_command_runs(command, tmp_path, session):
    result = run_documented(command, tmp_path, session)
    assert result.code == 0, result.err
    assert result.out.strip() or "--out" in command


def test_tmp_paths_are_the_tests_own(tmp_path, session):
    """No documented command writes or reads a fixed /tmp path when the tests run it."""
    result = run_in(next(c for c in README if "--law-file" in c), tmp_path, session)
    assert result.code == 0, result.err
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-refit.yaml"]  # the README's fit's, copied here
    assert "/tmp/" not in (result.out + result.err).replace(TMP, "")
    sweep = run_in(next(c for c in README if c.startswith("planner sweep")), tmp_path, session)
    assert sweep.files and "/tmp/" not in (sweep.out + sweep.err).replace(TMP, "")


# --- golden outputs of the README's commands ------------------------------------------------------


def golden_name(command: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", command.removeprefix("planner ").lower()).strip("-")[:60].rstrip("-")
    return f"{slug}-{hashlib.sha256(command.encode()).hexdigest()[:8]}.txt"


def golden_text(result: Result) -> str:
    text = f"$ {result.command}\n{result.out}"
    if result.files:
        text += f"\n=== files written under {TMP} ===\n"
        text += "".join(f"{name}{' (executable)' if x else ''}\n" for name, (x, _) in result.files.items())
        for name, (_, content) in result.files.items():
            if content is not None:
                text += f"\n=== {name} ===\n{content}"
    return text


@pytest.mark.parametrize("command", README)
def test_readme_golden_output(command, tmp_path, session):
    """Byte for byte as tests/golden/readme/<command>.txt: the command, its stdout, and for --out the
    files written and the content of the small text ones (the temporary directory as <tmp>, the
    repository as <repo>)."""
    result = run_documented(command, tmp_path, session)
    assert result.code == 0, result.err
    text, path = golden_text(result), GOLDEN / golden_name(command)
    if os.environ.get("PLANNER_REGEN_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no golden file {path.name}: PLANNER_REGEN_GOLDEN=1 pytest tests/test_readme.py -k golden"
    golden = path.read_text()
    diff = "".join(list(difflib.unified_diff(golden.splitlines(True), text.splitlines(True), path.name, "now", n=1))[:80])
    assert text == golden, f"`{command}` no longer prints tests/golden/readme/{path.name}:\n{diff}"


def test_readme_golden_files_are_the_readmes_commands():
    """One golden file per README command, none left over from a command the README dropped."""
    expected = {golden_name(c) for c in README}
    stale = {p.name for p in GOLDEN.glob("*.txt")} - expected
    if os.environ.get("PLANNER_REGEN_GOLDEN"):
        for name in stale:
            (GOLDEN / name).unlink()
        stale = set()
    assert not stale, f"golden files of no README command: {sorted(stale)}"
    assert len(expected) == len(README)
