"""What a sweep spec may put into the job scripts, checked when the files are generated rather than
when Slurm or bash reads them (at submit time, or when a job starts hours later).

- `sbatch:` keys. sbatch reads `#SBATCH` lines with getopt_long, which takes any unambiguous prefix
  of a long option for the option itself: `arr` is array, `outp` is output. So a key is checked
  the way sbatch will read it, against the long options of the Slurm version the planner is tested
  with; only full option names that the planner does not set itself are accepted.
- `command:` and `setup:` are shell code: an unclosed quote would swallow the rest of the job script.
- An account given besides the spec (the command line's) is a plain name, as the spec's `account` must be.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from planner.errors import PlannerError
from planner.sweep.setup import HPARAM_PLACEHOLDERS, SHAPE_PLACEHOLDERS
from planner.sweep.slurm import CONTROL, PLACEHOLDERS, placeholders_in, unknown_placeholders
from planner.sweep.spec import MANAGED, NAME_RE

if TYPE_CHECKING:
    from planner.sweep.spec import Source, SweepSpec

SLURM_VERSION = "22.05"
# sbatch's long options in Slurm 22.05.8 (Debian 12's slurm-client 22.05.8-4+deb12u3): every option of
# `man sbatch`, plus the four its getopt table has beyond the manual (cluster, context, ntasks-per-tres,
# tasks-per-node), as `sbatch --a=1`, `sbatch --b=1`, ... list them in their "is ambiguous; possibilities" errors.
SBATCH_OPTIONS = frozenset("""
account acctg-freq array batch bb bbf begin chdir cluster cluster-constraint clusters comment constraint container
context contiguous core-spec cores-per-socket cpu-freq cpus-per-gpu cpus-per-task deadline delay-boot dependency
distribution error exclude exclusive export export-file extra-node-info get-user-env gid gpu-bind gpu-freq gpus
gpus-per-node gpus-per-socket gpus-per-task gres gres-flags help hint hold ignore-pbs input job-name
kill-on-invalid-dep licenses mail-type mail-user mcs-label mem mem-bind mem-per-cpu mem-per-gpu mincpus network
nice no-kill no-requeue nodefile nodelist nodes ntasks ntasks-per-core ntasks-per-gpu ntasks-per-node
ntasks-per-socket ntasks-per-tres open-mode output overcommit oversubscribe parsable partition power prefer
priority profile propagate qos quiet reboot requeue reservation signal sockets-per-node spread-job switches
tasks-per-node test-only thread-spec threads-per-core time time-min tmp uid usage use-min-nodes verbose version
wait wait-all-nodes wckey wrap
""".split())
ALIASES = {"tasks-per-node": "ntasks-per-node"}  # another name for an option the planner sets


def managed(option: str) -> bool:
    return ALIASES.get(option, option) in MANAGED


def sbatch_key_problem(key: str) -> str | None:
    """Why `key` cannot be an `sbatch:` entry (as sbatch would read the #SBATCH line the script gets), or None when it can."""
    if key in SBATCH_OPTIONS:
        return "set by the planner (from nodes, partition, account, time_margin, ...); not allowed here" if managed(key) else None
    matches = sorted(o for o in SBATCH_OPTIONS if o.startswith(key))
    if not matches:
        close = difflib.get_close_matches(key, sorted(SBATCH_OPTIONS), n=1)
        return f"not an sbatch option (Slurm {SLURM_VERSION})" + (f"; did you mean '{close[0]}'?" if close else "")
    ours = [o for o in matches if managed(o)]
    if len(matches) == 1 and ours:
        return f"sbatch reads it as '{ours[0]}', which the planner sets; not allowed here"
    if len(matches) == 1:
        return f"sbatch reads it as '{matches[0]}': write the option in full"
    named = [f"'{o}'" + (" (set by the planner)" if managed(o) else "") for o in matches]
    return f"ambiguous: sbatch cannot tell which of {', '.join(named[:-1])} or {named[-1]} it means; write the option in full"


# a here-document: <<WORD or <<-WORD, the word possibly quoted (then the body is not expanded; the word is unquoted)
HEREDOC = re.compile(r"<<(-?)[ \t]*((?:[^\s;&|()<>'\"\\]|\\.|'[^']*'|\"(?:[^\"\\]|\\.)*\")+)")
WORD_BREAKS = " \t\n;&|()<>"  # a # after one of these (or first) starts a comment


def _skip_quoted(code: str, start: int, close: str, escapes: bool) -> int:
    """The index after the quote closing the one opened before `start`, or -1 when none does."""
    i = start
    while i < len(code):
        if code[i] == close:
            return i + 1
        i += 2 if escapes and code[i] == "\\" else 1
    return -1


def _skip_arithmetic(code: str, start: int) -> int:
    """The index after the )) that closes the (( or $(( at `start` (the end of `code` when none does)."""
    depth, i = 0, start
    while i < len(code):
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        i += 1
        if depth == 0 and code[i - 1] == ")":
            return i
    return i


def quoting_problem(code: str) -> str | None:
    """What bash would find unclosed in `code` (a quote, a backquote, a here-document), or None.

    bash's rules: '...' has no escapes, $'...', "..." and `...` end at their first unescaped closing
    character, a backslash outside quotes escapes the next character, # at the start of a word starts a
    comment, and a here-document's body (the lines after <<WORD, to a line WORD) is not shell syntax.
    tests/test_hardening_sweep_fit.py runs `bash -n` on generated scripts to hold this to bash."""
    i, n = 0, len(code)
    heredocs: list[tuple[str, bool]] = []  # (word, leading tabs stripped) of the current line, in order
    while i < n:
        ch = code[i]
        if ch == "\\" or code.startswith("$$", i):
            i += 2
        elif ch in "'\"`" or code.startswith("$'", i):
            quote = "$'" if ch == "$" else ch
            i = _skip_quoted(code, i + len(quote), quote[-1], escapes=quote != "'")
            if i < 0:
                return f"a quote ({quote}) is not closed" if quote != "`" else "a backquote (`) is not closed"
        elif code.startswith(("((", "$(("), i):  # arithmetic: << is a shift there
            i = _skip_arithmetic(code, i)
        elif ch == "#" and (i == 0 or code[i - 1] in WORD_BREAKS):
            end = code.find("\n", i)
            i = n if end < 0 else end
        elif (heredoc := HEREDOC.match(code, i)) and not code.startswith("<<<", i):
            word = re.sub(r"\\(.)|['\"]", lambda m: m.group(1) or "", heredoc.group(2))
            heredocs.append((word, heredoc.group(1) == "-"))
            i = heredoc.end()
        elif ch == "\n" and heredocs:
            i += 1
            for word, strip_tabs in heredocs:
                while True:
                    if i >= n:
                        return f"the here-document <<{word} is not ended by a line '{word}'"
                    end = code.find("\n", i)
                    line, i = (code[i:], n) if end < 0 else (code[i:end], end + 1)
                    if (line.lstrip("\t") if strip_tabs else line) == word:
                        break
            heredocs = []
        else:
            i += 1
    if heredocs:
        return f"the here-document <<{heredocs[0][0]} is not ended by a line '{heredocs[0][0]}'"
    return None


def check_spec(spec: SweepSpec, src: Source, account: str | None) -> None:
    """Everything of the spec (and the account given besides it) that lands in a job script verbatim."""
    if unknown := unknown_placeholders(spec.command):
        close = difflib.get_close_matches(unknown[0], PLACEHOLDERS, n=1)
        raise src.error(("command",), f"unknown placeholder {{{unknown[0]}}}" + (f"; did you mean {{{close[0]}}}?" if close else "")
                        + f" (placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; {{{{ and }}}} are literal braces)")
    used = placeholders_in(spec.command)
    for names, given, key in ((SHAPE_PLACEHOLDERS, spec.shape, "shape"), (HPARAM_PLACEHOLDERS, spec.hyperparameters, "hyperparameters")):
        if given is None and (needs := [p for p in used if p in names]):
            example = "{recipe: llama-2}" if key == "shape" else "{law: deepseek-2024-hparams}"
            raise src.error(("command",), f"{{{needs[0]}}} needs a `{key}:` section in the spec (e.g. {key}: {example})")
    for key, code in (("command", spec.command), ("setup", "\n".join(spec.setup))):
        if problem := quoting_problem(code):
            raise src.error((key,), f"{problem}: the job script would not run")
    if bad := [k for k in spec.env if k.startswith(("PLANNER_", "SLURM_"))]:
        raise src.error(("env", bad[0]), "PLANNER_* and SLURM_* variables are set by the job script and Slurm")
    for key in spec.sbatch:
        if problem := sbatch_key_problem(key):
            raise src.error(("sbatch", key), problem)
    for key, value in list(spec.sbatch.items()) + list(spec.env.items()):
        if CONTROL.search(str(value)):
            raise src.error(("sbatch" if key in spec.sbatch else "env", key), "control characters (newlines) are not allowed")
    # fullmatch: with re.match, NAME_RE's $ also matches before a final newline, which would end the #SBATCH line
    if account is not None and not re.fullmatch(NAME_RE, account):
        raise PlannerError(f"{account!r} must be letters, digits, '.', '_' or '-'", "account")
