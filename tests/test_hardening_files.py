"""How the planner reads and writes files (issue 12, Hardening II): inputs are read only when they are regular
files of a sane size, whatever kind of file a path names; `--out` writes through FIFOs, devices and
/dev/stdout and replaces only regular files; a sweep directory is replaced as a whole, under a lock, and a
kill at any point leaves the old directory or the new one; files follow the umask; CSV cells cannot be formulas.

Commands that might hang or grow run in a subprocess with a timeout and a 1 GiB address-space limit.
"Unreadable" needs a process that permission bits stop: as root, the subprocess drops CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH from its capability bounding set (so root is held to mode 000 like anyone), and those
cases skip only where even that is not possible."""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from planner import files
from planner.catalog import builtin_dir
from planner.report.output import to_csv
from planner.sweep.slurm import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1 << 30
HANG = 60  # seconds: far beyond any of these commands, short enough to report a hang
HUGE = 5 << 30  # a sparse file: no disk blocks, 5 GB as far as stat() is concerned
PLAN = ["plan", "--params", "1B", "--tokens", "20B", "--cluster", "juwels-booster", "--nodes", "4"]
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def _drop_file_privileges() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _child_setup(unprivileged: bool, umask: int | None) -> Callable[[], None]:
    def setup() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if unprivileged and os.geteuid() == 0:
            _drop_file_privileges()
        if umask is not None:
            os.umask(umask)
    return setup


def child_env() -> dict[str, str]:
    # PYTHONPATH: the code of this checkout, not whatever `planner` is installed; one BLAS thread keeps the
    # address space of numpy small under the limit
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def planner(args, *, unprivileged: bool = False, umask: int | None = None, stdout=subprocess.PIPE,
            cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the CLI in a subprocess: (exit code, stdout, stderr); a hang fails the test."""
    argv = [sys.executable, "-m", "planner", *map(str, args)]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, text=True,
                              timeout=HANG, env=child_env(), cwd=cwd, preexec_fn=_child_setup(unprivileged, umask))
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {HANG} s: planner {' '.join(map(str, args))}")
    assert "MemoryError" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout or "", proc.stderr


@functools.cache
def can_make_unreadable() -> bool:
    """Whether a subprocess of this one is stopped by mode 000 (not root, or root that can drop its file capabilities)."""
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"planner-unreadable-probe-{os.getpid()}"
    probe.write_text("x")
    probe.chmod(0)
    try:
        proc = subprocess.run(["cat", str(probe)], capture_output=True, preexec_fn=_child_setup(True, None))
        return proc.returncode != 0
    except OSError:
        return False
    finally:
        probe.unlink()


def need_unreadable() -> None:
    if not can_make_unreadable():
        pytest.skip("running as root without CAP_SETPCAP: a mode-000 file stays readable, so 'unreadable' cannot be made")


def error_line(code: int, err: str) -> str:
    assert code == 2, err
    line = check_stderr(code, err)
    assert line is not None
    return line


# --- inputs: every path a command reads, as every kind of file -----------------------------------------

SPEC = """\
name: small
cluster: juwels-booster
command: echo {run_id}
sweep: {kind: list, runs: [{params: 1e8, tokens: 1e9}]}
"""
LAW = (builtin_dir() / "laws" / "chinchilla-approach3.yaml").read_bytes()
MODEL = (builtin_dir() / "models" / "llama-2-13b.yaml").read_text().replace("name: llama-2-13b", "name: x", 1)
RUNS_CSV = "compute,loss\n" + "".join(f"{c:g},{2 + 10 * c ** -0.1:.6g}\n" for c in (10.0 ** k for k in range(15, 23)))
MEASURED = "nodes,tokens_per_s\n1,100000\n2,190000\n"
PROPOSAL = """\
title: t
program: gcs
cluster: juwels-booster
start: 2027-04
months: 12
experiments:
  - {name: eval, nodes: 1, wall_hours: 2, runs: 3}
"""
MANIFEST_ROW = {"run_id": "r0", "array": "a00", "index": "0", "model": "", "params": "100000000", "tokens": "1000000000",
                "flops": "6e+17", "budget": "", "nodes": "1", "gpus": "4", "mfu": "0.4", "gpu_hours": "1.0",
                "node_hours": "0.25", "charge": "12.0", "est_hours": "0.25", "time_limit": "00:30:00", "segments": "1",
                "partition": "booster"}
MANIFEST = ",".join(COLUMNS) + "\n" + ",".join(MANIFEST_ROW.get(c, "") for c in COLUMNS) + "\n"


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def catalog_dir(path: Path) -> None:
    write(path / "models" / "x.yaml", MODEL)


def sweep_dir(path: Path) -> None:
    write(path / "manifest.csv", MANIFEST)
    write(path / "results" / "r0", "2.5\n")


@dataclass(frozen=True)
class Input:
    """One path a command reads: `setup` writes everything else the command needs in a directory and returns
    the arguments, the path under test and how to make a good one there."""

    setup: Callable[[Path], tuple[list, Path, Callable[[Path], None]]]
    directory: bool = False  # a directory is the good kind (a regular file there is the bad one)
    unused: bool = False  # the command does not need it: every kind must leave the command working
    report: bool = False  # `catalog validate`: a problem per file and a count on stderr, not one error line


def _spec(tmp: Path):
    return ["sweep", tmp / "spec.yaml", "--out", tmp / "out"], tmp / "spec.yaml", lambda p: write(p, SPEC)


def _spec_law_file(tmp: Path):
    # an IsoFLOP sweep places its runs with the law (a list of runs would not read it)
    write(tmp / "spec.yaml", SPEC.replace("{kind: list, runs: [{params: 1e8, tokens: 1e9}]}",
                                          "{kind: isoflop, budgets: [1e18], points: 2, span: 2}") + "law_file: law.yaml\n")
    return ["sweep", tmp / "spec.yaml", "--out", tmp / "out"], tmp / "law.yaml", lambda p: write(p, LAW)


def _law_file(tmp: Path):
    args = ["plan", "--law-file", tmp / "law.yaml", "--flops", "1e21", "--cluster", "juwels-booster", "--nodes", "4"]
    return args, tmp / "law.yaml", lambda p: write(p, LAW)


def _fit_csv(tmp: Path):
    return ["fit", tmp / "runs.csv", "--form", "power", "--x-col", "compute"], tmp / "runs.csv", lambda p: write(p, RUNS_CSV)


def _compare_csv(first: bool):
    def setup(tmp: Path):
        write(tmp / "other.csv", RUNS_CSV)
        pair = [tmp / "runs.csv", tmp / "other.csv"][:: 1 if first else -1]
        return ["compare", *pair, "--form", "power", "--x-col", "compute"], tmp / "runs.csv", lambda p: write(p, RUNS_CSV)
    return setup


def _measured(tmp: Path):
    args = ["scaling", "--params", "1B", "--tokens", "20B", "--cluster", "juwels-booster", "--nodes", "1,2",
            "--measured", tmp / "bench.csv"]
    return args, tmp / "bench.csv", lambda p: write(p, MEASURED)


def _proposal(tmp: Path):
    return ["grant", tmp / "proposal.yaml"], tmp / "proposal.yaml", lambda p: write(p, PROPOSAL)


def _proposal_sweep(tmp: Path):
    write(tmp / "proposal.yaml", PROPOSAL + "  - {name: sw, sweep: spec.yaml}\n")
    return ["grant", tmp / "proposal.yaml"], tmp / "spec.yaml", lambda p: write(p, SPEC)


def _collect_dir(tmp: Path):
    return ["collect", tmp / "sweep"], tmp / "sweep", sweep_dir


def _collect_manifest(tmp: Path):
    write(tmp / "sweep" / "results" / "r0", "2.5\n")
    return ["collect", tmp / "sweep"], tmp / "sweep" / "manifest.csv", lambda p: write(p, MANIFEST)


def _collect_result(tmp: Path):
    write(tmp / "sweep" / "manifest.csv", MANIFEST)
    (tmp / "sweep" / "results").mkdir()
    return ["collect", tmp / "sweep"], tmp / "sweep" / "results" / "r0", lambda p: write(p, "2.5\n")


def _catalog_entry_unused(tmp: Path):
    (tmp / "cat" / "models").mkdir(parents=True)
    return ["--catalog", tmp / "cat", *PLAN], tmp / "cat" / "models" / "x.yaml", lambda p: write(p, MODEL)


def _catalog_entry_used(tmp: Path):
    (tmp / "cat" / "models").mkdir(parents=True)
    args = ["--catalog", tmp / "cat", "plan", "--model", "x", "--tokens", "20B", "--cluster", "juwels-booster", "--nodes", "4"]
    return args, tmp / "cat" / "models" / "x.yaml", lambda p: write(p, MODEL)


def _validate(tmp: Path):
    return ["catalog", "validate", tmp / "cat" / "models" / "x.yaml"], tmp / "cat" / "models" / "x.yaml", lambda p: write(p, MODEL)


def _catalog_dir(tmp: Path):
    return ["--catalog", tmp / "cat", *PLAN], tmp / "cat", catalog_dir


INPUTS = {
    "sweep SPEC": Input(_spec),
    "sweep spec's law_file": Input(_spec_law_file),
    "plan --law-file": Input(_law_file),
    "fit DATA": Input(_fit_csv),
    "compare DATA_A": Input(_compare_csv(True)),
    "compare DATA_B": Input(_compare_csv(False)),
    "scaling --measured": Input(_measured),
    "grant PROPOSAL": Input(_proposal),
    "grant proposal's sweep": Input(_proposal_sweep),
    "collect SWEEP_DIR": Input(_collect_dir, directory=True),
    "collect manifest.csv": Input(_collect_manifest),
    "collect results/RUN_ID": Input(_collect_result),
    "--catalog entry, unused": Input(_catalog_entry_unused, unused=True),
    "--catalog entry, used": Input(_catalog_entry_used),
    "--catalog DIR": Input(_catalog_dir, directory=True),
    "catalog validate PATH": Input(_validate, report=True),
}
KINDS = ("regular", "empty", "fifo", "device", "directory", "dangling", "loop", "unreadable", "huge")
DEVICES = ("/dev/zero", "/dev/urandom", "/dev/null", "/dev/full")


def make(path: Path, kind: str, good: Callable[[Path], None], directory_input: bool, device: str) -> None:
    """A file of `kind` at `path`; for an input that is a directory, the good kind is a directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "regular":
        write(path, "not a directory\n") if directory_input else good(path)
    elif kind == "empty":
        write(path, b"")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to(device)
    elif kind == "directory":
        good(path) if directory_input else path.mkdir()
    elif kind == "dangling":
        path.symlink_to(path.parent / "no-such-file")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "unreadable":
        good(path)
        path.chmod(0)
    elif kind == "huge":
        with open(path, "wb") as handle:
            handle.truncate(HUGE)
    else:
        raise AssertionError(kind)


def is_good(spot: Input, kind: str) -> bool:
    return kind == ("directory" if spot.directory else "regular")


@pytest.mark.slow
@pytest.mark.parametrize("name", INPUTS)
# three drawn examples (which device a link names varies) besides the explicit ones, one per kind
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), device=st.sampled_from(DEVICES))
@example(kind="regular", device="/dev/zero")
@example(kind="empty", device="/dev/zero")
@example(kind="fifo", device="/dev/zero")
@example(kind="device", device="/dev/zero")
@example(kind="directory", device="/dev/zero")
@example(kind="dangling", device="/dev/zero")
@example(kind="loop", device="/dev/zero")
@example(kind="unreadable", device="/dev/zero")
@example(kind="huge", device="/dev/zero")
def test_every_input_as_every_kind_of_file(tmp_path_factory, name, kind, device):
    """No traceback, no hang, under 1 GiB: the good kind works, any other is one line naming the path (or, for
    a catalog entry the command does not use, changes nothing)."""
    if kind == "unreadable" and not can_make_unreadable():
        return  # the other kinds still run; need_unreadable() reports the skip in the regression tests below
    spot = INPUTS[name]
    tmp = tmp_path_factory.mktemp("input")
    args, path, good = spot.setup(tmp)
    make(path, kind, good, spot.directory, device)
    code, _, err = planner(args, unprivileged=kind == "unreadable")
    if spot.report:
        assert code == (0 if is_good(spot, kind) else 2) and "Traceback" not in err, err
        assert is_good(spot, kind) or str(path) in err
    elif spot.unused or is_good(spot, kind):
        assert code == 0 and check_stderr(code, err) is None, err
    elif name == "collect results/RUN_ID" and kind not in ("unreadable", "huge", "empty"):
        # not a regular file: the run has not written its result yet (the only run here)
        assert error_line(code, err) == (f"planner: error: {tmp / 'sweep'}: no run has written its result yet "
                                         "(results/RUN_ID, from {result_file})")
    else:
        assert str(path) in error_line(code, err) or name == "grant proposal's sweep" and "spec.yaml" in err


# --- inputs: the cases of the issue, one line each -------------------------------------------------------


@pytest.mark.parametrize("command, kind, message", [
    ("sweep", "/dev/zero", "{path}: is a character device, expected a YAML file"),
    ("fit", "/dev/zero", "{path}: is a character device, expected a CSV file"),
    ("law-file", "/dev/zero", "{path}: is a character device, expected a YAML file"),
    ("sweep", "fifo", "{path}: is a FIFO (named pipe), expected a YAML file"),
    ("fit", "fifo", "{path}: is a FIFO (named pipe), expected a CSV file"),
    ("law-file", "fifo", "{path}: is a FIFO (named pipe), expected a YAML file"),
    ("catalog", "fifo", "{path}: is a FIFO (named pipe), expected a YAML file"),
    ("sweep", "huge", "{path}: file larger than 2,000,000 bytes, the most a YAML file may have"),
    ("fit", "huge", "{path}: file larger than 67,108,864 bytes, the most a CSV file may have"),
    ("law-file", "huge", "{path}: file larger than 2,000,000 bytes, the most a YAML file may have"),
    ("catalog", "/dev/zero", "{path}: is a character device, expected a YAML file"),
    ("catalog", "dangling", "{path}: symbolic link to a missing file"),
    ("catalog", "loop", "{path}: symbolic link loop"),
    ("catalog", "directory", "{path}: is a directory, expected a YAML file"),
    ("catalog", "huge", "{path}: file larger than 2,000,000 bytes, the most a YAML file may have"),
    ("catalog", "unreadable", "{path}: cannot open: Permission denied"),
    ("fit", "unreadable", "Invalid value for 'DATA': File '{path}' is not readable."),  # click's check comes first
])
def test_inputs_that_are_not_regular_files_are_one_line_errors(tmp_path, command, kind, message):
    if kind == "unreadable":
        need_unreadable()
    path = tmp_path / {"sweep": "spec.yaml", "fit": "runs.csv", "law-file": "law.yaml", "catalog": "cat/models/x.yaml"}[command]
    good = {"sweep": SPEC, "fit": RUNS_CSV, "law-file": LAW, "catalog": MODEL}[command]
    if kind.startswith("/dev/"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(kind)
    else:
        make(path, kind, lambda p: write(p, good), False, "/dev/zero")
    args = {
        "sweep": ["sweep", path, "--out", tmp_path / "out"],
        "fit": ["fit", path, "--form", "power", "--x-col", "compute"],
        "law-file": ["plan", "--law-file", path, "--flops", "1e21", "--cluster", "juwels-booster", "--nodes", "4"],
        "catalog": ["--catalog", tmp_path / "cat", "plan", "--model", "x", "--tokens", "20B", "--cluster", "juwels-booster",
                    "--nodes", "4"],
    }[command]
    code, _, err = planner(args, unprivileged=kind == "unreadable")
    prefix = "planner fit: error: " if message.startswith("Invalid value") else "planner: error: "
    assert error_line(code, err) == prefix + message.format(path=path)
    if command == "catalog":  # the same entry does not take down a command that does not use it
        code, _, err = planner(["--catalog", tmp_path / "cat", *PLAN], unprivileged=kind == "unreadable")
        assert code == 0 and check_stderr(code, err) is None, err


def test_a_file_that_grows_past_the_cap_while_read_is_refused(tmp_path, monkeypatch):
    """st_size is a promise a file need not keep (procfs says 0): the cap counts the bytes actually read."""
    path = tmp_path / "grows.yaml"
    path.write_bytes(b"x" * 10)
    real_fstat = os.fstat

    def shrunk(fd):
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *info[1:6], 0, *info[7:]))
    monkeypatch.setattr(files.os, "fstat", shrunk)
    with pytest.raises(files.PlannerError, match="file larger than 5 bytes"):
        files.read_input(path, "YAML", 5)
    assert files.read_input(path, "YAML", 10) == b"x" * 10


# --- --out: streams are written through, only regular files replaced --------------------------------------


def test_out_dev_stdout_writes_to_stdout_and_leaves_it_alone(tmp_path):
    code, out, err = planner([*PLAN, "--format", "csv", "--out", "/dev/stdout"])
    assert code == 0 and check_stderr(code, err) is None, err
    assert out.startswith("params,tokens,")
    assert os.readlink("/dev/stdout") == "/proc/self/fd/1"


def test_out_dev_stdout_into_a_file_appends_as_the_shell_would(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("earlier line\n")
    with open(log, "a") as handle:
        code, _, err = planner([*PLAN, "--format", "csv", "--out", "/dev/stdout"], stdout=handle)
    assert code == 0, err
    text = log.read_text()
    assert text.startswith("earlier line\nparams,tokens,") and text.count("params,tokens,") == 1


def test_out_link_to_proc_self_fd_1_stays_a_link(tmp_path):
    link = tmp_path / "me"
    link.symlink_to("/proc/self/fd/1")
    code, out, err = planner([*PLAN, "--format", "csv", "--out", link, "--force"])
    assert code == 0 and out.startswith("params,tokens,"), err
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_out_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    time.sleep(0.2)  # the reader is blocked in open() before the planner opens the other end
    code, _, err = planner([*PLAN, "--format", "csv", "--out", fifo])
    if reader.is_alive() and code != 0:  # the planner never opened the FIFO: let the reader go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(HANG)
    assert code == 0, err
    assert got and got[0].startswith(b"params,tokens,")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_out_fifo_without_a_reader_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = planner([*PLAN, "--out", fifo])
    assert error_line(code, err) == f"planner: error: {fifo}: a FIFO that no process is reading"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_out_dev_null_stays_a_device(tmp_path):
    """As root a regression would replace the device with a file: root gets a device node of its own (the
    null device, made with mknod), so a failing test breaks that and not the machine's /dev/null."""
    null = Path("/dev/null")
    if os.geteuid() == 0:
        null = tmp_path / "null"
        try:
            os.mknod(null, stat.S_IFCHR | 0o666, os.lstat("/dev/null").st_rdev)
        except OSError as exc:
            pytest.skip(f"root, and cannot make a device node to write to instead of /dev/null: {exc.strerror}")
    before = os.lstat(null)
    code, _, err = planner([*PLAN, "--out", null, "--force"])
    assert code == 0, err
    after = os.lstat(null)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_out_symlink_to_a_file_replaces_the_file_and_keeps_the_link(tmp_path):
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "out.csv"
    link.symlink_to("data/real.csv")
    code, _, err = planner([*PLAN, "--format", "csv", "--out", link])
    assert error_line(code, err) == f"planner: error: {link} exists; pass --force to overwrite it"
    assert real.read_text() == "old\n"
    code, _, err = planner([*PLAN, "--format", "csv", "--out", link, "--force"])
    assert code == 0, err
    assert link.is_symlink() and real.read_text().startswith("params,tokens,")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["real.csv"]  # no temporary file left


@pytest.mark.parametrize("setup, message", [
    (lambda p: p.symlink_to(p.parent / "missing"), "{path}: symbolic link to a missing file"),
    (lambda p: p.mkdir(), None),  # click's own check: "File '...' is a directory."
    (lambda p: p.symlink_to(p.name), "{path}: symbolic link loop"),
    (lambda p: None, "{missing} does not exist (create the directory first)"),
])
def test_out_that_cannot_be_a_file(tmp_path, capsys, setup, message):
    path = tmp_path / "out.csv"
    if message and "{missing}" in message:
        path = tmp_path / "no-dir" / "out.csv"
    setup(path)
    code, _, err = run([*PLAN, "--out", str(path), "--force"], capsys)
    if message is None:
        assert error_line(code, err) == f"planner plan: error: Invalid value for '--out': File '{path}' is a directory."
    else:
        assert error_line(code, err) == "planner: error: " + message.format(path=path, missing=path.parent)


def test_out_into_a_read_only_directory(tmp_path):
    need_unreadable()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code, _, err = planner([*PLAN, "--out", ro / "x.csv"], unprivileged=True)
    assert error_line(code, err) == f"planner: error: {ro / 'x.csv'}: cannot create a file in {ro}: Permission denied"
    code, _, err = planner(["sweep", write_spec(tmp_path), "--out", ro / "sweep"], unprivileged=True)
    assert error_line(code, err) == f"planner: error: {ro / 'sweep'}: cannot write in {ro}: Permission denied"
    assert list(ro.iterdir()) == []


def test_out_where_no_file_can_be_created(tmp_path, capsys):
    code, _, err = run([*PLAN, "--out", "/proc/x.csv"], capsys)
    assert error_line(code, err) == "planner: error: /proc/x.csv: cannot create a file in /proc: No such file or directory"


def test_two_writers_of_the_same_new_file_one_wins(tmp_path, monkeypatch):
    """Without force the file is put in place with link(), which fails if the name exists: a writer that
    checked before another one finished is told the file exists, and the other's file is kept."""
    target = tmp_path / "x.csv"
    real_target = files.write_target

    def other_writer_wins(path, force):
        found = real_target(path, force)
        target.write_text("the other writer's\n")
        return found
    monkeypatch.setattr(files, "write_target", other_writer_wins)
    with pytest.raises(files.PlannerError, match="exists; pass"):
        files.write_atomic(target, "mine\n")
    assert target.read_text() == "the other writer's\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    """The handler turns SIGTERM into SystemExit while a file is written, so the temporary file is removed."""
    script = f"""
import os, signal
from pathlib import Path
from planner import files
real = os.fsync
def fsync_then_term(fd):
    real(fd)
    os.kill(os.getpid(), signal.SIGTERM)
files.os.fsync = fsync_then_term
files.write_atomic(Path({str(tmp_path / 'x.csv')!r}), "text\\n")
"""
    proc = subprocess.run([sys.executable, "-c", script], env=child_env(), capture_output=True, text=True, timeout=HANG)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert list(tmp_path.iterdir()) == []


# --- modes follow the umask --------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_files_and_directories_follow_the_umask(tmp_path, capsys, mask):
    spec = write_spec(tmp_path)
    previous = os.umask(mask)
    try:
        assert run([*PLAN, "--out", str(tmp_path / "plan.txt")], capsys)[0] == 0
        assert run(["sweep", str(spec), "--out", str(tmp_path / "sweep")], capsys)[0] == 0
    finally:
        os.umask(previous)
    file_mode, exec_mode = 0o666 & ~mask, 0o777 & ~mask
    sweep = tmp_path / "sweep"
    assert stat.S_IMODE((tmp_path / "plan.txt").stat().st_mode) == file_mode
    assert stat.S_IMODE((sweep / "manifest.csv").stat().st_mode) == file_mode
    assert stat.S_IMODE((sweep / "spec.yaml").stat().st_mode) == file_mode
    assert stat.S_IMODE((sweep / "submit.sh").stat().st_mode) == exec_mode
    assert stat.S_IMODE((sweep / "arrays" / "a00.sbatch").stat().st_mode) == exec_mode
    for d in (sweep, sweep / "arrays", sweep / "logs", sweep / "done"):
        assert stat.S_IMODE(d.stat().st_mode) == exec_mode, d


def test_a_regenerated_sweep_directory_keeps_its_mode(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "sweep"
    assert run(["sweep", str(spec), "--out", str(out)], capsys)[0] == 0
    out.chmod(0o2770)  # a group-shared directory
    assert run(["sweep", str(spec), "--out", str(out), "--force"], capsys)[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o2770


# --- CSV cells are never formulas ---------------------------------------------------------------------------


@pytest.mark.parametrize("cell, written", [
    ('=HYPERLINK("http://x","y")', "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"),
    ("plain", "plain"),
    ("a=b", "a=b"),
    (-1.5, "-1.5"),
    (-3, "-3"),
    (2e-05, "2e-05"),
])
def test_csv_text_cells_cannot_start_a_formula(cell, written):
    assert to_csv([{"value": cell}]) == f"value\n{written}\n"


def test_csv_cell_with_a_carriage_return_is_quoted_and_defused():
    # a bare CR ends a row for spreadsheets: the table is written with every text cell quoted
    assert to_csv([{"value": "\rcmd"}]) == "\"value\"\n\"'\rcmd\"\n"


def test_csv_header_cannot_start_a_formula():
    assert to_csv([{"=cmd": 1}]).splitlines()[0] == "'=cmd"


def test_grant_csv_of_a_hostile_experiment_name(tmp_path, capsys):
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL.replace("name: eval", "name: '=HYPERLINK(\"http://evil\",\"click\")'"))
    code, out, err = run(["grant", str(proposal), "--format", "csv"], capsys)
    assert code == 0, err
    row = out.splitlines()[1]
    assert row.startswith("resources,\"'=HYPERLINK(") and ",=HYPERLINK" not in out and ",\"=HYPERLINK" not in out


# --- the sweep directory: whole, locked, and what an interrupted run leaves --------------------------------


def write_spec(tmp: Path, name: str = "small", runs: int = 1, tokens: float = 1e9, file: str | None = None) -> Path:
    """A list sweep of `runs` runs, each an array of its own (max_array_size: 1)."""
    body = "".join(f"    - {{params: 1.0e8, tokens: {tokens + i * 1e7:.6g}}}\n" for i in range(runs))
    path = tmp / (file or f"{name}.yaml")
    path.write_text(f"name: {name}\ncluster: juwels-booster\naccount: acct\nmax_concurrent: 4\nmax_array_size: 1\n"
                    f"command: echo {{run_id}}\nsweep:\n  kind: list\n  runs:\n{body}")
    return path


OWNED = ("manifest.csv", "submit.sh", "spec.yaml")


def generated(out: Path) -> dict[str, bytes]:
    """The files the planner writes in a sweep directory: manifest, submit.sh, spec.yaml, arrays/*."""
    found = {rel: (out / rel).read_bytes() for rel in OWNED if (out / rel).exists()}
    if (out / "arrays").is_dir():
        found.update({f"arrays/{p.name}": p.read_bytes() for p in (out / "arrays").iterdir()})
    return found


STATE = {"done/r1": "", "results/r1": "2.5\n", "notes.txt": "mine\n", "logs/a00_1_0.out": "log\n"}


def add_state(out: Path) -> None:
    """What a sweep directory holds once it has run: none of it may be lost when the sweep is regenerated."""
    for rel, text in STATE.items():
        write(out / rel, text)


def state_of(out: Path) -> dict[str, str]:
    return {rel: (out / rel).read_text() for rel in STATE if (out / rel).is_file()}


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.planner-"))


def sweep_cmd(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "planner", "sweep", str(spec), "--out", str(out), "--format", "json", *extra]


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=child_env(), preexec_fn=_child_setup(False, None))


def kill_at(proc: subprocess.Popen, out: Path, sig: int, delay: float) -> tuple[int, str]:
    """Send `sig` `delay` seconds after the process began building its staging directory."""
    deadline = time.monotonic() + HANG
    while not any(n.startswith(f".{out.name}.planner-new.") for n in os.listdir(out.parent)):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.0005)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"did not end after signal {sig}")
    return proc.returncode, err


BIG = 1000  # arrays in the sweeps killed below
# The moment the staging directory appears, and a moment (seeded) within the ~0.3 s its 1,000 files take.
# A kill before the build cannot touch the directory; one after the swap finds the new directory in place.
KILLS = [(sig, delay) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
         for delay in (0.0, round(random.Random(int(sig)).uniform(0.005, 0.3), 3))]


@pytest.fixture(scope="module")
def big_sweeps(tmp_path_factory):
    """Two 1,000-array sweeps written to the same directory, and their files there."""
    tmp = tmp_path_factory.mktemp("big")
    old_spec, new_spec = write_spec(tmp, "old", BIG), write_spec(tmp, "new", BIG - 10, tokens=2e9)
    out = tmp / "sweep"
    trees = {}
    for name, spec in (("new", new_spec), ("old", old_spec)):
        proc = subprocess.run(sweep_cmd(spec, out, "--force"), env=child_env(), capture_output=True, text=True, timeout=HANG)
        assert proc.returncode == 0, proc.stderr
        trees[name] = generated(out)
    assert len(trees["old"]) == BIG + 3 and len(trees["new"]) == BIG - 10 + 3
    return tmp, old_spec, new_spec, out, trees


@pytest.mark.slow
@pytest.mark.parametrize("sig, delay", KILLS)
def test_killed_regeneration_leaves_the_old_directory_or_the_new(big_sweeps, sig, delay):
    tmp, old_spec, new_spec, out, trees = big_sweeps
    if generated(out) != trees["old"]:
        assert subprocess.run(sweep_cmd(old_spec, out, "--force"), env=child_env(), timeout=HANG).returncode == 0
    add_state(out)
    code, err = kill_at(start(sweep_cmd(new_spec, out, "--force")), out, sig, delay)
    assert "Traceback" not in err, err
    now = generated(out)
    assert now in (trees["old"], trees["new"]), "a mix of two sweeps"
    if code == 0:
        assert now == trees["new"]
    if delay == 0:  # interrupted as the build began: the test did interrupt something
        assert code != 0 and now == trees["old"], err
    if sig != signal.SIGKILL:  # cleaned up on the way out
        assert code in (0, 128 + sig, 130), err
        assert state_of(out) == STATE and leftovers(out) == []
        assert not [p for p in out.rglob("*.tmp")]
    # the next run (here: back to the old sweep) cleans up whatever a SIGKILL left, and loses nothing
    assert subprocess.run(sweep_cmd(old_spec, out, "--force"), env=child_env(), timeout=HANG).returncode == 0
    assert generated(out) == trees["old"] and state_of(out) == STATE and leftovers(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig, delay", KILLS)
def test_killed_first_run_leaves_no_directory_or_a_whole_one(big_sweeps, sig, delay):
    tmp, _, new_spec, _, trees = big_sweeps
    out = tmp / "sweep"  # the trees were written for this path
    saved = tmp / "saved"
    out.rename(saved)
    try:
        code, err = kill_at(start(sweep_cmd(new_spec, out)), out, sig, delay)
        assert "Traceback" not in err, err
        assert not out.exists() or generated(out) == trees["new"], "a partial sweep directory"
        if delay == 0:
            assert code != 0 and not out.exists(), err
        if sig != signal.SIGKILL:
            assert leftovers(out) == []
        if not out.exists():  # the next run writes it, and removes what a SIGKILL left behind
            assert subprocess.run(sweep_cmd(new_spec, out), env=child_env(), timeout=HANG).returncode == 0
            assert generated(out) == trees["new"]
        assert leftovers(out) == []
    finally:
        shutil.rmtree(out, ignore_errors=True)
        saved.rename(out)


@pytest.mark.slow
@pytest.mark.parametrize("force", [False, True])
def test_two_concurrent_writers_of_one_sweep_directory(big_sweeps, force):
    """Without --force exactly one of two writers racing for a new directory succeeds; with it, either may,
    and the directory is always the whole of one of them."""
    tmp, old_spec, new_spec, _, trees = big_sweeps
    out = tmp / "sweep"
    saved = tmp / "saved"
    out.rename(saved)
    try:
        if force:
            assert subprocess.run(sweep_cmd(old_spec, out), env=child_env(), timeout=HANG).returncode == 0
        extra = ("--force",) if force else ()
        procs = {name: start(sweep_cmd(spec, out, *extra)) for name, spec in (("old", old_spec), ("new", new_spec))}
        results = {}
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=HANG)
            results[name] = (proc.returncode, err)
        busy = f"planner: error: {out}: another planner is writing this directory now; run again when it has finished"
        winners = [name for name, (code, _) in results.items() if code == 0]
        for code, err in results.values():
            if code != 0:
                assert error_line(code, err) in (busy, f"planner: error: {out / 'arrays'} exists (and 3 more entries "
                                                       "of an earlier sweep); pass --force to overwrite")
        if force:
            assert winners and generated(out) in (trees["old"], trees["new"])
        else:
            assert len(winners) == 1 and generated(out) == trees[winners[0]]
        assert leftovers(out) == []
    finally:
        shutil.rmtree(out, ignore_errors=True)
        saved.rename(out)


def test_a_writer_holding_the_lock_keeps_the_next_one_out(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "sweep"
    lock = os.open(tmp_path / ".sweep.planner-lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        code, _, err = run(["sweep", str(spec), "--out", str(out)], capsys)
    finally:
        os.close(lock)
    assert error_line(code, err) == (f"planner: error: {out}: another planner is writing this directory now; "
                                     "run again when it has finished")
    assert not out.exists()
    assert run(["sweep", str(spec), "--out", str(out)], capsys)[0] == 0
    assert leftovers(out) == []  # the lock file goes with the writer that held it


def test_regeneration_keeps_the_runs_state_and_drops_the_old_design(tmp_path, capsys):
    big, small = write_spec(tmp_path, "a", 3), write_spec(tmp_path, "b", 1, file="b.yaml")
    out = tmp_path / "sweep"
    assert run(["sweep", str(big), "--out", str(out)], capsys)[0] == 0
    add_state(out)
    (out / "arrays" / "a02.sbatch").write_text("# edited by hand\n")
    assert run(["sweep", str(small), "--out", str(out), "--force"], capsys)[0] == 0
    assert sorted(p.name for p in (out / "arrays").iterdir()) == ["a00.sbatch"]
    assert state_of(out) == STATE and "name: b" in (out / "spec.yaml").read_text()


@pytest.mark.parametrize("case", ["arrays is a file", "arrays is a file, --force", "out is a file", "/proc/self",
                                  "link to a missing directory"])
def test_sweep_out_that_cannot_be_a_sweep_directory(tmp_path, capsys, case):
    spec = write_spec(tmp_path)
    out = tmp_path / "sweep"
    extra: list[str] = []
    if case.startswith("arrays is a file"):
        write(out / "arrays", "a file\n")
        extra = ["--force"] if case.endswith("--force") else []
        expected = None if extra else f"{out / 'arrays'} exists; pass --force to overwrite"
    elif case == "out is a file":
        write(out, "a file\n")
        expected = None  # click's own check, below
    elif case == "/proc/self":
        out = Path("/proc/self")
        expected = "/proc/self: cannot write in /proc: No such file or directory"
    else:
        out.symlink_to(tmp_path / "missing")
        expected = f"{out}: symbolic link to a missing directory"
    code, _, err = run(["sweep", str(spec), "--out", str(out), *extra], capsys)
    if case == "out is a file":
        assert error_line(code, err) == f"planner sweep: error: Invalid value for '--out': Directory '{out}' is a file."
    elif expected is None:
        assert code == 0 and (out / "arrays").is_dir() and (out / "arrays" / "a00.sbatch").is_file(), err
    else:
        assert error_line(code, err) == f"planner: error: {expected}"


def test_sweep_out_through_a_symlink_keeps_the_link(tmp_path, capsys):
    spec = write_spec(tmp_path)
    (tmp_path / "scratch").mkdir()
    link = tmp_path / "current"
    link.symlink_to("scratch")
    assert run(["sweep", str(spec), "--out", str(link)], capsys)[0] == 0
    assert run(["sweep", str(spec), "--out", str(link), "--force"], capsys)[0] == 0
    assert link.is_symlink() and (tmp_path / "scratch" / "manifest.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "scratch", "small.yaml"]


def test_a_directory_that_appears_meanwhile_is_not_replaced(tmp_path, capsys, monkeypatch):
    """Someone else (not a planner: it would have waited for the lock) creates the target while the sweep is
    being built: the rename refuses to replace it, and the staging directory goes."""
    import planner.directory as directory

    spec, out = write_spec(tmp_path), tmp_path / "sweep"
    real_build = directory._build

    def someone_else_writes(*args):
        staging = real_build(*args)
        write(out / "theirs.txt", "theirs\n")
        return staging
    monkeypatch.setattr(directory, "_build", someone_else_writes)
    code, _, err = run(["sweep", str(spec), "--out", str(out)], capsys)
    assert error_line(code, err) == f"planner: error: {out}: created by another process while this one wrote it; not replaced"
    assert [p.name for p in out.iterdir()] == ["theirs.txt"] and leftovers(out) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_regeneration_with_and_without_an_atomic_exchange(tmp_path, capsys, monkeypatch, exchange):
    """Where the file system has no RENAME_EXCHANGE (NFS) the swap is two renames: the same result."""
    import planner.directory as directory

    if not exchange:
        monkeypatch.setattr(directory, "_exchange", lambda a, b: False)
    a, b = write_spec(tmp_path, "a", 3), write_spec(tmp_path, "b", 2)
    out = tmp_path / "sweep"
    assert run(["sweep", str(a), "--out", str(out)], capsys)[0] == 0
    add_state(out)
    assert run(["sweep", str(b), "--out", str(out), "--force"], capsys)[0] == 0
    assert "name: b" in (out / "spec.yaml").read_text() and len(list((out / "arrays").iterdir())) == 2
    assert state_of(out) == STATE and leftovers(out) == [] and not (out / directory.MARKER).exists()


@pytest.mark.parametrize("killed", ["while building", "between the two renames", "while moving the runs' files"])
def test_the_next_run_finishes_what_a_killed_one_left(tmp_path, capsys, killed):
    """What SIGKILL can leave beside a sweep directory, made by hand, and the next run of the same target:
    a staging directory never swapped in is removed; an old directory swapped out is put back (nothing took
    its place) or has its runs' files moved into the directory that did."""
    from planner.directory import MARKER

    a, b = write_spec(tmp_path, "a", 3), write_spec(tmp_path, "b", 2)
    out = tmp_path / "sweep"
    assert run(["sweep", str(a), "--out", str(out)], capsys)[0] == 0
    add_state(out)
    if killed == "while building":
        left = tmp_path / ".sweep.planner-new.x1"
        write(left / MARKER, "")
        write(left / "arrays" / "a00.sbatch", "half\n")
    elif killed == "between the two renames":
        out.rename(tmp_path / ".sweep.planner-old.123")
    else:  # the new directory is in place (still marked), the old one holds the runs' files
        assert run(["sweep", str(b), "--out", str(tmp_path / "new")], capsys)[0] == 0
        out.rename(tmp_path / ".sweep.planner-new.x2")
        (tmp_path / "new").rename(out)
        write(out / MARKER, "")
    assert run(["sweep", str(b), "--out", str(out), "--force"], capsys)[0] == 0
    assert "name: b" in (out / "spec.yaml").read_text() and sorted(p.name for p in (out / "arrays").iterdir()) == [
        "a00.sbatch", "a01.sbatch"]
    assert state_of(out) == STATE and leftovers(out) == [] and not (out / MARKER).exists()
