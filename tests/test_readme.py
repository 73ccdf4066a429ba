"""The README and the docs stay true.

- Every `$ planner ...` line of their console blocks runs and exits 0, so the docs never rot.
- Every README command prints exactly what tests/golden/readme/ holds (stdout, and the files an
  `--out` writes; only the temporary and the repository's directories are normalised), so a
  refactor that must not change behaviour can show that it did not. After a deliberate change of
  an output, regenerate with PLANNER_REGEN_GOLDEN=1 pytest tests/test_readme.py -k golden, and
  review the diff.
- Every figure the README's prose states is what the command it belongs to prints (FIGURES), and
  the README still states it in those words.

Commands run in-process from the repository root. Paths under /tmp in a command are moved into a
directory of the test's own; a command that reads what another one writes (`plan --law-file` after
`fit --out`) gets a copy of it from that command, run once per session (the fit takes seconds).
"""

import contextlib
import csv
import difflib
import hashlib
import io
import math
import os
import re
import shlex
import shutil
from collections.abc import Callable
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


DOCS = [ROOT / "examples" / "openclip" / "README.md", ROOT / "docs" / "memory.md", ROOT / "docs" / "usage.md", *sorted((ROOT / "docs" / "tutorials").glob("*.md"))]
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

    def table(self, first: str | None = None) -> list[dict[str, str]]:
        return table(self.out, first)

    def row(self, key: str, column: int = 1) -> str:
        """The value in `column` of the row of the first table whose first cell is `key`."""
        rows = self.table()
        names = list(rows[0])
        for row in rows:
            if row[names[0]] == key:
                return row[names[column]]
        raise AssertionError(f"no row {key!r} in the output of `{self.command}`")

    def grep(self, pattern: str, stream: str = "out") -> re.Match:
        match = re.search(pattern, getattr(self, stream), re.MULTILINE)
        assert match, f"`{self.command}` prints no line matching {pattern!r} on std{stream}"
        return match


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
    (the fit's law file), and the commands FIGURES checks several figures of."""

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


# --- the README's figures -------------------------------------------------------------------------


def table(out: str, first: str | None = None) -> list[dict[str, str]]:
    """The rows of the first plain-text table in `out` (the first whose header starts with `first`),
    as header -> cell; columns are where the dashes under the header are."""
    def cut(text: str, spans: list[tuple[int, int]]) -> list[str]:
        return [text[a: b if k + 1 < len(spans) else None].strip() for k, (a, b) in enumerate(spans)]

    lines = out.splitlines()
    for i, line in enumerate(lines):
        if i and re.fullmatch(r"-+( +-+)*", line):
            spans = [m.span() for m in re.finditer(r"-+", line)]
            header = cut(lines[i - 1], spans)
            if first is None or header[0] == first:
                rows = []
                for text in lines[i + 1:]:
                    if not text.strip():
                        break
                    rows.append(dict(zip(header, cut(text, spans))))
                return rows
    raise AssertionError(f"no table{f' starting with {first!r}' if first else ''} in:\n{out[:2000]}")


SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
NUMBER = r"(\d[\d,]*(?:\.\d+)?)(e[+-]?\d+)?([KMBT])?"


def numbers(text: str) -> list[float]:
    return [float(m[1].replace(",", "") + (m[2] or "")) * SCALE.get(m[3], 1) for m in re.finditer(NUMBER, text)]


def rounds_to(printed: str, *stated: str | None) -> None:
    """The numbers in `printed` are, in order, the README's `stated` ones at the precision the README
    states them (None: not stated): 226,991 is 227K, 3.66e24 is 3.7e24, 7.02 is 7.0, 35.7% is 36%."""
    got = numbers(printed)
    assert len(got) >= len(stated), f"{printed!r} has fewer numbers than {stated}"
    for value, figure in zip(got, stated):
        if figure is None:
            continue
        m = re.fullmatch(NUMBER + "%?", figure)
        assert m, figure
        decimals = len(m[1].partition(".")[2])
        unit = 10.0 ** -decimals * float("1" + (m[2] or "")) * SCALE.get(m[3], 1)
        assert abs(value - numbers(figure)[0]) <= unit / 2 * (1 + 1e-9), f"printed {printed!r}: {value:g} is not the README's {figure}"


def percent_of_factor(match: re.Match, group: int = 1) -> str:
    """'a factor 1.16' is 'within 16%'."""
    return f"{(float(match[group]) - 1) * 100:.2f}%"


def table3_within_3_percent(r: Result) -> None:
    with open(ROOT / "tests" / "data" / "chinchilla_table3.csv") as handle:
        paper = list(csv.DictReader(handle))
    rows = r.table("parameters")
    assert len(rows) == len(paper) == 9
    for row, ref in zip(rows, paper):
        params, flops, tokens = float(ref["params"]), float(ref["a1_flops"]), float(ref["a1_tokens"])
        if "rounded from C/(6N)" in ref["note"]:
            tokens = flops / (6 * params)
        assert numbers(row["parameters"])[0] == pytest.approx(params, rel=1e-9)
        assert numbers(row["FLOPs"])[0] == pytest.approx(flops, rel=0.03), row
        assert numbers(row["tokens"])[0] == pytest.approx(tokens, rel=0.03), row


def runs_fitted(r: Result) -> list[dict[str, str]]:
    return [row for row in r.table("run") if row["estimated GPU-h (LOO)"] != "–"]


def fitted_set(r: Result) -> None:
    rows = runs_fitted(r)
    r.grep(r"^48 runs fitted \(")
    assert len(rows) == 48
    sizes = [numbers(row["parameters"])[0] for row in rows]
    rounds_to(f"{min(sizes):g}", "70M")
    assert math.floor(max(sizes) / 1e9) == 405  # Llama 3.1 405B (405.9B)
    assert {row["accelerator"].split("-")[0] for row in rows} == {"v100", "a100", "h100"}
    assert {row["workload"] for row in rows} == {"dense-lm", "moe", "clip"}


def mfu_falls(scaling: Result, whole: Result) -> None:
    at_128 = next(row for row in scaling.table() if row["GPUs"] == "128")["MFU"]
    assert whole.row("GPUs") == "3,744"
    fall = 1 - numbers(whole.row("MFU"))[0] / numbers(at_128)[0]
    rounds_to(f"{fall * 100:.2f}%", "5%")


def sbatch_arrays(r: Result) -> None:
    scripts = {name: text for name, (_, text) in r.files.items() if name.endswith(".sbatch")}
    arrays = [row for row in r.table("array") if row["array"] != "total"]
    assert len(scripts) == len(arrays) > 1
    for row in arrays:
        assert f"#SBATCH --array=0-{int(row['runs']) - 1}%{row['max running']}\n" in scripts[f"planner-readme-sweep/arrays/{row['array']}.sbatch"]


JUPITER = "planner plan --gpu-hours 4e6 --cluster jupiter-booster --nodes all"
JUWELS = "planner catalog show juwels-booster"
JUWELS_DAY = "planner plan --days 1 --nodes all --cluster juwels-booster"
OVERTRAIN = "planner plan --flops 1e23 --tokens-per-param 200"
LLAMA = "planner plan --model llama-2-7b --tokens 2T --accelerator a100-sxm-80gb"
CALIBRATE = "planner calibrate"
TABLE3 = "planner plan --params 400M,1B,10B,67B,175B,280B,520B,1T,10T --law chinchilla-approach1 --accelerator h100-sxm"
EPOCH_FIT = 'planner fit tests/data/chinchilla_epoch_svg.csv --form chinchilla --params-col "Model Size" --flops-col "Training FLOP" --drop-highest 5'
FIT = EPOCH_FIT + " --bootstrap 4000 --seed 42 --out /tmp/epoch-refit.yaml --force"
COMPARE = ("planner compare examples/openclip/laion.csv examples/openclip/clip-wit.csv --form power --x-col gmacs_total"
           " --y-col acc1 --one-minus --bins 5 --bins-b 0 --target-flops 1e13 --chance 0.999")
MEMORY = "planner memory --model gpt-3-175b --cluster juwels-booster"
SWEEP = "planner sweep examples/sweeps/isoflop-juwels.yaml --out /tmp/planner-readme-sweep --force"
SCALING = "planner scaling --model llama-2-7b --tokens 2T --cluster juwels-booster --global-batch 4M"
CALIBRATE_MD = "planner calibrate --format markdown"
SIMULATE = "planner simulate examples/sweeps/isoflop-juwels.yaml --target-flops 1e23"
SIM_COMPARE = ("planner simulate --compare examples/openclip/laion.csv examples/openclip/clip-wit.csv --x-col gmacs_total "
               "--y-col acc1 --one-minus --bins 5 --bins-b 0 --target-flops 1e12")
SIM_WIT, SIM_WIDE = SIM_COMPARE + " --decades 1.07 --points 3", SIM_COMPARE + " --decades 3 --points 10"

# Commands that are not in a console block, with the README prose that names them.
VARIANTS = {
    JUWELS_DAY + " --mfu-basis benchmark": "`--mfu-basis benchmark` gives the tuned steady-state figure instead",
    LLAMA + " --stack other-meta-internal": "(`--stack other-meta-internal`: 190K, 145K-251K)",
    "planner plan --flops 5.76e23 --law chinchilla-approach3": "`--law chinchilla-approach3` (the paper's rounded Approach-3 values give ~93 tokens per parameter at the Gopher budget)",
    "planner plan --flops 5.76e23 --law epoch-2024": "`--law epoch-2024` (the refit, ~18)",
    EPOCH_FIT + " --huber-delta 1e-6": "`--huber-delta 1e-6` reproduces it",
    MEMORY + " --grad-dtype bf16": "56 with `--grad-dtype bf16`",
    "planner plan --model llama-2-7b --tokens 2T --cluster juwels-booster --nodes all": "The prediction is `planner plan --nodes K` per row",
    "planner catalog show h100-sxm": "the catalog holds 989.4",
    "planner catalog show lumi-g": "so its `standard-g` node-hour is 4 GPU-hours",
    "planner catalog show jean-zay-a100": "Jean Zay's 57 gCO2/kWh from the BLOOM carbon study",
}

# (README phrase, the command(s) it belongs to, a check on their results that raises when the
# output does not show the figure). A phrase is matched in the README with its line breaks as spaces.
FIGURES: list[tuple[str, tuple[str, ...], Callable[..., object]]] = [
    # How long do 4M GPU-hours take on the whole of JUPITER?
    ("23,752 GH200 GPUs (5,938 nodes)", (JUPITER,), lambda r: (
        rounds_to(r.row("GPUs"), "23,752"), rounds_to(r.row("nodes"), "5,938"), r.grep(r"^accelerator +gh200-96gb$"))),
    ("spend 4,000,000 GPU-hours in 168 hours (7.0 days)", (JUPITER,), lambda r: (
        rounds_to(r.row("GPU-hours"), "4,000,000"), rounds_to(r.row("wall-clock hours"), "168"),
        rounds_to(r.row("wall-clock days"), "7.0"))),
    ("(25.7%, restarts and evaluation included", (JUPITER,), lambda r: (
        rounds_to(r.row("MFU"), "25.7%"), r.grep(r"^MFU basis +campaign$"))),
    ("no campaign ran on GH200, so Hopper's are assumed to carry over and the output says so", (JUPITER,), lambda r:
        r.grep(r"^warning: no published campaign ran on gh200-96gb: campaigns on h100-sxm \(hopper\) are assumed to carry over$")),
    ("3.7e24 FLOPs, attention included", (JUPITER,), lambda r: (
        rounds_to(r.row("training FLOPs (hardware)"), "3.7e24"), r.grep(r"^FLOPs convention +6ND\+attention$"))),
    ("under the Epoch AI refit of Chinchilla a 181B-parameter model on 3.2T tokens, predicted loss 1.93", (JUPITER,), lambda r: (
        r.grep(r"^law +epoch-2024$"), rounds_to(r.row("parameters"), "181B"), rounds_to(r.row("tokens"), "3.2T"),
        rounds_to(r.row("predicted loss (nats/token)"), "1.93"))),
    ("the 80% range moves into what they buy: 152-216B parameters", (JUPITER,), lambda r:
        rounds_to(r.row("parameters"), None, "152B", "216B")),
    ("warns that JSC's core-h per JUPITER node-hour is unverified", (JUPITER,), lambda r:
        r.grep(r"^warning: jupiter-booster accounting\.units_per_node_hour = 288 is unverified")),
    ("the compute is far beyond what the law was fitted on", (JUPITER,), lambda r:
        r.grep(r"^warning: \S+ FLOPs is \d+x beyond the largest compute law 'epoch-2024' was fitted on")),
    # Over-training at a chosen multiplier
    ("1e23 FLOPs at M = 200 give a 9.1B model at loss 2.051 where the compute-optimal 29.4B model (M = 19) reaches 2.032",
     (OVERTRAIN,), lambda r: (
        rounds_to(r.row("parameters"), "9.1B"), rounds_to(r.row("predicted loss (nats/token)"), "2.051"),
        rounds_to(r.row("compute-optimal parameters (same compute)"), "29.4B"),
        rounds_to(r.row("compute-optimal tokens per parameter"), "19"),
        rounds_to(r.row("compute-optimal loss (same compute)"), "2.032"))),
    ("reaches 2.051 with 38% less compute (the over-trained run spends 60% more)", (OVERTRAIN,), lambda r: (
        rounds_to(r.row("extra compute vs compute-optimal (same loss)"), "60%"),
        rounds_to(f"{100 * (1 - 1 / (1 + float(r.row('extra compute vs compute-optimal (same loss)').rstrip('%')) / 100)):.0f}%",
                  "38%"))),
    # What does "1.2 EF of fp16" on JUWELS Booster mean?
    ("936 nodes × 4 A100 × 312 TFLOP/s dense BF16/FP16 = 1.168 EF", (JUWELS,), lambda r: (
        rounds_to(r.row("nodes"), "936"), rounds_to(r.row("gpus_per_node"), "4"),
        rounds_to(r.row("system dense bf16 peak, EFLOP/s"), "1.168"), rounds_to(r.row("system dense fp16 peak, EFLOP/s"), "1.168"),
        r.grep(r"^system dense bf16 peak, EFLOP/s .* 3744 × 312 TFLOP/s \(a100-sxm-40gb\)$"))),
    ("(the 2.34 EF figure is the sparse one)", (JUWELS,), lambda r:
        rounds_to(f"{2 * float(r.row('system dense bf16 peak, EFLOP/s'))}", "2.34")),
    ("(36%, for the 16B model a day buys on all 3,744 GPUs)", (JUWELS_DAY,), lambda r: (
        rounds_to(r.row("MFU"), "36%"), r.grep(r"^MFU basis +campaign$"), rounds_to(r.row("parameters"), "16B"),
        rounds_to(r.row("GPUs"), "3,744"))),
    ("one day of the whole machine delivers 3.6e22 model FLOPs", (JUWELS_DAY,), lambda r: (
        rounds_to(r.row("training FLOPs (hardware)"), "3.6e22"), rounds_to(r.row("wall-clock hours"), "24"))),
    ("(44%, 4.5e22 FLOPs: the optimistic bound", (JUWELS_DAY + " --mfu-basis benchmark",), lambda r: (
        rounds_to(r.row("MFU"), "44%"), r.grep(r"^MFU basis +benchmark$"), rounds_to(r.row("training FLOPs (hardware)"), "4.5e22"))),
    # How far to trust a GPU-hour figure
    ("48 runs from 70M to 405B parameters on V100, A100 and H100, dense, MoE and CLIP", (CALIBRATE,), fitted_set),
    ("half the runs lie within 16% of the estimate made without them and 77% within a factor 1.3", (CALIBRATE,), lambda r: (
        m := r.grep(r"^48 runs fitted .* each run with its training stack stated \(--stack\): "
                    r"median \|ln\(reported/estimate\)\| \S+ \(a factor (\S+)\), (\d+)% within 1\.3x"),
        rounds_to(percent_of_factor(m), "16%"), rounds_to(m[2] + "%", "77%"))),
    ("with no stack the estimate is the average published campaign, half within 22%, and the range is wider to match", (CALIBRATE,), lambda r: (
        m := r.grep(r"^with no stack stated \(a plan's default\): median \|ln\| \S+ \(a factor (\S+)\),.* 80% range (\S+)-(\S+) x"),
        s := r.grep(r"each run with its training stack stated .* 80% range (\S+)-(\S+) x"),
        rounds_to(percent_of_factor(m), "22%"),
        assert_(float(m[3]) / float(m[2]) > float(s[2]) / float(s[1]), "the no-stack range is not wider"))),
    ("Llama 2 7B on 2T tokens comes out at 227K A100-hours (161K-319K)", (LLAMA,), lambda r: (
        r.grep(r"^accelerator +a100-sxm-80gb$"), rounds_to(r.row("GPU-hours"), "227K", "161K", "319K"))),
    ("Meta reported 184,320", (CALIBRATE,), lambda r:
        rounds_to(next(row for row in r.table("run") if row["run"] == "llama-2-7b")["reported GPU-h"], "184,320")),
    ("(`--stack other-meta-internal`: 190K, 145K-251K)", (LLAMA + " --stack other-meta-internal",), lambda r:
        rounds_to(r.row("GPU-hours"), "190K", "145K", "251K")),
    # Chinchilla's Table 3
    ("it reproduces all nine rows within 3%", (TABLE3,), table3_within_3_percent),
    ("the 67B row's \"1.5T\" tokens is rounded from the row's own 5.76e23 / (6 × 67e9) = 1.43T", (), lambda: (
        rounds_to(f"{5.76e23 / (6 * 67e9):g}", "1.43e12"),
        assert_("6.7e10,5.76e23,1,1.5e12," in (ROOT / "tests" / "data" / "chinchilla_table3.csv").read_text(), "Table 3's 67B row"))),
    ("give ~93 tokens per parameter at the Gopher budget", ("planner plan --flops 5.76e23 --law chinchilla-approach3",), lambda r: (
        rounds_to(r.row("law compute in Gopher units (5.76e23)"), "1"), rounds_to(r.row("tokens per parameter"), "93"))),
    ("`--law epoch-2024` (the refit, ~18)", ("planner plan --flops 5.76e23 --law epoch-2024",), lambda r:
        rounds_to(r.row("tokens per parameter"), "18")),
    # Fit a law to your own runs
    ("summed Huber loss with δ = 1e-3 on log loss) by variable projection: for fixed exponents the loss is linear in "
     "E, A and B, so 2,304 exponent pairs are profiled", (FIT,), lambda r:
        r.grep(r"^fitting 240 points by variable projection over 2304 exponent pairs \(Huber δ=0\.001, summed\)$", "err")),
    ("Epoch's own grid run (E 1.817, A 477.8, B 2143, α 0.347, β 0.367)", (FIT,), lambda r: (
        rounds_to(r.row("E"), "1.817"), rounds_to(r.row("A"), "477.8"), rounds_to(r.row("B"), "2143"),
        rounds_to(r.row("alpha"), "0.347"), rounds_to(r.row("beta"), "0.367"))),
    ("with their 95% bootstrap intervals", (FIT,), lambda r: (
        r.grep(r"^bootstrap: 4000 resamples", "err"),
        assert_(list(r.table()[0])[2:] == ["95% CI low", "95% CI high"] and numbers(r.row("A", 2)), "no 95% interval"))),
    # Epoch's published A is 482.01; the δ = 1e-6 fit prints 481.9, the same to 0.02%: checked at 0.1%.
    ("Epoch's *published* point estimate (A 482.0, B 2085)", (EPOCH_FIT + " --huber-delta 1e-6",), lambda r: (
        assert_(numbers(r.row("A"))[0] == pytest.approx(482.0, rel=1e-3), f"A {r.row('A')} is not 482.0"),
        rounds_to(r.row("B"), "2085"))),
    # Compare two learning procedures
    ("OpenAI's WIT has 3 models over 1.1 decades", (COMPARE,), lambda r: (
        rounds_to(r.grep(r"^warning: B spans (\S+) decades")[1], "1.1"), r.grep(r"^warning: B has 3 points"))),
    # Will it fit?
    ("175B on JUWELS Booster's 40 GB A100s: 68 nodes with fp32 gradients, the default", (MEMORY,), lambda r: (
        rounds_to(r.row("parameters"), "175B"), r.grep(r"^accelerator +a100-sxm-40gb$"), r.grep(r"^gradient dtype +fp32$"),
        rounds_to(r.row("minimum to fit"), "68"))),
    ("56 with `--grad-dtype bf16`", (MEMORY + " --grad-dtype bf16",), lambda r: (
        r.grep(r"^gradient dtype +bf16$"), rounds_to(r.row("minimum to fit"), "56"))),
    # A sweep as Slurm job arrays
    ("Writes `manifest.csv`, one sbatch array per (nodes, time limit) group with `--array=0-K%M`", (SWEEP,), lambda r: (
        assert_("planner-readme-sweep/manifest.csv" in r.files, "no manifest.csv"), sbatch_arrays(r))),
    ("`--signal=B:USR1@300` for a checkpoint before the limit", (SWEEP,), lambda r: assert_(all(
        "#SBATCH --signal=B:USR1@300\n" in text for name, (_, text) in r.files.items() if name.endswith(".sbatch")), "no --signal")),
    ("`submit.sh`, which chains runs longer than the partition limit with `afterany`", (SWEEP,), lambda r: (
        assert_(r.files["planner-readme-sweep/submit.sh"][0], "submit.sh is not executable"),
        assert_("--dependency=afterany:" in r.files["planner-readme-sweep/submit.sh"][1], "no afterany"),
        assert_(any(int(row["segments"]) > 1 for row in r.table("array") if row["array"] != "total"), "no chained run"))),
    # Scaling evidence
    ("MFU falls about 5% from 128 GPUs to all of JUWELS Booster", (SCALING, "planner plan --model llama-2-7b --tokens 2T --cluster juwels-booster --nodes all"), mfu_falls),
    # How close are the estimates?
    ("campaigns cost 1.33x their estimate at the median", (CALIBRATE_MD,), lambda r:
        rounds_to(r.grep(r"^- tuned benchmarks .*: reported GPU-hours are (\S+)x the benchmark estimate at the median$")[1], "1.33")),
    # Know before spending
    ("draws the IsoFLOP sweep's 15 final losses from a known law (the spec's, Chinchilla Approach 3", (SIMULATE,), lambda r: (
        r.grep(r"^true law: chinchilla-approach3; noise 0.01 "), r.grep(r"^sweep: 15 runs over 2.00 decades"))),
    ("this 1,780-GPU-hour sweep pins the allocation exponent a to 0.40-0.50 in 80% of trials", (SIMULATE,), lambda r: (
        rounds_to(r.grep(r"one sweep costs (\S+) ")[1], "1,780"), rounds_to(r.row("a (N_opt ∝ C^a)", 5), "0.40", "0.50"))),
    ("N_opt at 1e23 FLOPs only to a factor of about 1.7 either way", (SIMULATE,), lambda r: (
        rounds_to(f"{float(r.row('N_opt at target', 1)) / float(r.row('N_opt at target', 5).split('–')[0]):.2f}", "1.7"),
        rounds_to(f"{float(r.row('N_opt at target', 5).split('–')[1]) / float(r.row('N_opt at target', 1)):.2f}", "1.7"))),
    ("names the better procedure at 1e12 GMACs in 92.4% of trials (and finds the crossover in 85%)", (SIM_WIT,), lambda r: (
        rounds_to(r.row("trials that name the true winner"), "92.4%"), rounds_to(r.row("trials whose fitted curves cross (sweep start to 1,000x target)"), "85%"))),
    ("10 models over 3 decades, in 98.3%", (SIM_WIDE,), lambda r: rounds_to(r.row("trials that name the true winner"), "98.3%")),
    # Conventions
    ("H100 SXM BF16 1,979 TFLOP/s is the sparse figure; the catalog holds 989.4", ("planner catalog show h100-sxm",), lambda r: (
        rounds_to(r.row("peak_tflops.bf16"), "989.4"), r.grep(r"^peak_tflops\.bf16 .* dense; the datasheet's 1,979 is with sparsity$"))),
    ("LUMI bills one MI250X (2 GCDs) as one GPU-hour, so its `standard-g` node-hour is 4 GPU-hours", ("planner catalog show lumi-g",), lambda r: (
        rounds_to(r.row("accounting.units_per_node_hour"), "4"), r.grep(r"^gpus_per_node +8 .* = 4 MI250X$"))),
    ("Jean Zay's 57 gCO2/kWh from the BLOOM carbon study", ("planner catalog show jean-zay-a100",), lambda r:
        rounds_to(r.row("grid_gco2_per_kwh"), "57")),
]


def assert_(condition: object, message: str) -> None:
    assert condition, message


def readme_prose() -> str:
    return " ".join((ROOT / "README.md").read_text().split())


@pytest.mark.parametrize("phrase, commands, check", FIGURES, ids=[f[0][:50] for f in FIGURES])
def test_readme_figure(phrase, commands, check, session):
    """The README states the phrase; the command(s) of its paragraph print its figure(s)."""
    prose = readme_prose()
    assert phrase in prose, f"the README no longer says {phrase!r}: update FIGURES with it"
    for command in commands:
        documented = command in README or (command in VARIANTS and VARIANTS[command] in prose)
        assert documented, f"`{command}` is neither a README command nor one of VARIANTS the README names"
    results = [session.run(c) for c in commands]
    for result in results:
        assert result.code == 0, result.err
    try:
        check(*results)
    except AssertionError as error:
        raise AssertionError(f"README: {phrase!r}\nbut {' / '.join(f'`{c}`' for c in commands)}: {error}") from None
