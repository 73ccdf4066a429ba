import re
import shlex

import pytest

from planner.cli import main


def run(args, capsys=None, env=None, monkeypatch=None):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    if isinstance(args, str):
        args = shlex.split(args)
    if capsys is not None:
        capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return exc.value.code, out, err


# What the CLI writes to stderr besides the error (planner.cli.progress: one line each), command by command.
PROGRESS_LINES = tuple(re.compile(p) for p in (
    r"planning with (model|law) \S.*",                                          # plan
    r"fitting \d+ points from \d+ starts \(Huber δ=\S+, summed\)",              # fit --form chinchilla
    r"fitting \d+ points by variable projection over \d+ exponent pairs \(Huber δ=\S+, summed\)",  # the default solver
    r"bootstrap: \d+ resamples \(seed -?\d+\)",                                 # fit --bootstrap
    r"fitting \S.* and \S.* \((power|saturating|chinchilla|isoflop)\)",         # compare
    r"bootstrap: \d+ resample pairs",                                           # compare
    r"costing \d+ experiment\(s\) for \S.* on \S.*",                            # grant
    r"collected \d+ of \d+ runs from \S.*",                                     # collect
    r"status of \d+ runs of \S.* from (sacct|scontrol|files)",                 # status
    r"resubmitted \d+ run\(s\) of array \S+ from segment \d+ of \d+: job\(s\) \d+(, \d+)*",  # status --resubmit
    r"nothing to resubmit: every run is completed, pending or running",         # status --resubmit
    r"strong scaling on \S+: (\d+|default) node counts(, \d+ measured)?",       # scaling
    r"fitting the campaign estimator \(leave-one-out over every candidate form\)",  # calibrate
    r"simulating \d+ trials of \S.*",                                           # simulate (both modes)
    r"(asking sacct|reading sacct output from \S.*) for account \S.*",        # usage
    r"wrote \S.*",                                                              # --out, --plot, sweep's files
    r"no figures: \S.*",                                                       # grant: why a document has none
    r"limits: (live Slurm \(cluster \S+, scontrol\)|catalog \(\S+ partition \S+): \S.*",  # sweep: its limits' source
    r"node ladder: \d+ of \d+ runs rounded up to \d+ node count\(s\) \(.*\): \d+ arrays instead of \d+; .*",  # sweep
))
# grant and collect print each warning of the result on stderr as progress(f"warning: {w}")
WARNING_LINE = re.compile(r"warning: \S.*")
# planner.cli.main: PlannerError and ClickException -> "planner: error: ", UsageError -> its command path,
# e.g. "planner plan: error: "
ERROR_LINE = re.compile(r"planner(?: [a-z][a-z-]*)*: error: \S.*")


def is_progress(line: str) -> bool:
    return any(p.fullmatch(line) for p in PROGRESS_LINES) or bool(WARNING_LINE.fullmatch(line))


def check_stderr(code: int, err: str) -> str | None:
    """Exit 0 or 2, no traceback; on 2, stderr is progress and warning lines, then exactly one error line.
    Returns the error line (None on success)."""
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert all(ln.strip() for ln in lines), f"blank line on stderr:\n{err}"
    if code == 0:
        stray = [ln for ln in lines if not is_progress(ln)]
        assert not stray, f"success, but stderr has lines that are neither progress nor warnings: {stray}\n{err}"
        return None
    assert lines, "exit 2 with nothing on stderr"
    *before, last = lines
    assert ERROR_LINE.fullmatch(last), f"the last line is not a `planner: error: ...` line:\n{err}"
    stray = [ln for ln in before if not is_progress(ln)]
    assert not stray, f"lines besides the one error line that are neither progress nor warnings: {stray}\n{err}"
    return last
