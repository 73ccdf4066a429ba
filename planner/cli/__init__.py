"""The `planner` command: parses options, calls the library, formats. No arithmetic lives here."""

from __future__ import annotations

import errno
import functools
import math
import re
import sys
import warnings
from pathlib import Path

import click

from planner import __version__
from planner.errors import PlannerError
from planner.numbers import parse_quantity
from planner.report.output import FORMATS


def _flag(param) -> str:
    """The option as the user typed it (`--nodes`), not its Python name (`node_counts`)."""
    if param is None:
        return "value"
    return param.opts[0] if getattr(param, "opts", None) else f"--{param.name.replace('_', '-')}"


def parse_number(text: str, what: str) -> float:
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None
    if not math.isfinite(value):
        raise click.BadParameter(f"'{text}' is not finite", param_hint=what)
    if value <= 0:
        raise click.BadParameter(f"must be positive, got {text}", param_hint=what)
    return value


class Number(click.ParamType):
    """A positive finite number; accepts 1e21 and suffixes K, M, B (or G), T, P."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            value = repr(value)
        return parse_number(value, _flag(param))


class NumberList(click.ParamType):
    name = "numbers"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        hint = _flag(param)
        parts = [p for p in value.split(",")]
        if not parts or any(not p.strip() for p in parts):
            raise click.BadParameter(f"'{value}' is not a comma-separated list of numbers", param_hint=hint)
        return [parse_number(p, hint) for p in parts]


class NodeCount(click.ParamType):
    name = "nodes|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        if not re.fullmatch(r"\s*\d+\s*", value) or int(value) <= 0:
            raise click.BadParameter(f"'{value}' is not a positive whole number or 'all'", param_hint="--nodes")
        return int(value)


def mfu_basis_options(func):
    """--mfu-basis and --stack: where a run's MFU comes from (shared by plan, scaling and calibrate)."""
    func = click.option("--stack", help="Training stack (e.g. megatron, gpt-neox, llm-foundry, open_clip: the "
                                        "stacks with a term are listed by `planner calibrate`); default: the "
                                        "average published campaign of the workload.")(func)
    return click.option("--mfu-basis", type=click.Choice(["campaign", "benchmark"]), default="campaign", show_default=True,
                        help="campaign: MFU realised by published end-to-end training runs (with restarts, evaluation "
                             "and failures); benchmark: tuned steady-state throughput, the optimistic bound.")(func)


def output_options(func):
    """The shared --format / --out / --force options of every command with tabular output."""

    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (atomically) instead of stdout.")
    @click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
    @functools.wraps(func)
    def wrapper(*args, fmt, out, force, **kwargs):
        if out is not None:  # refuse before the work, not after it (the write checks again, atomically)
            from planner.files import check_writable

            check_writable(out, force)
        text = func(*args, fmt=fmt, **kwargs)
        emit(text, out, force)

    return wrapper


def emit(text: str, out: Path | None, force: bool) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    from planner.files import write_atomic

    write_atomic(out, text, force)
    progress(f"wrote {out}")


def progress(message: str) -> None:
    click.echo(one_line(message), err=True)


def complete_names(kind: str):
    """Shell completion of catalog names (click calls it when _PLANNER_COMPLETE is set)."""

    def complete(ctx, param, incomplete):
        from planner.catalog import Catalog

        try:
            names = Catalog().names(kind)
        except PlannerError:
            return []
        return [n for n in names if n.startswith(incomplete)]

    return complete


def catalog_from(ctx: click.Context):
    from planner.catalog import Catalog, search_path

    root = ctx.find_root()
    return Catalog(search_path(root.params.get("catalog") or ()))


# command -> the module that defines it; a module is imported only when one of its commands runs,
# so `planner plan` does not pay for the sweep, grant and fit machinery
LAZY_COMMANDS = {"plan": "plan", "scaling": "scaling", "sweep": "sweep", "collect": "sweep", "fit": "fit",
                 "compare": "fit", "grant": "grant", "memory": "memory", "calibrate": "calibrate", "catalog": "catalog",
                 "simulate": "simulate", "status": "status", "usage": "usage"}


def spelling(command: click.Command | None):
    """How `command` spells a domain field: the option whose name (`node_counts`) or flag (`--nodes`)
    is the field's name, an argument by its metavar; a field the command has no option for keeps its name.
    So the domain's PlannerError("99999 exceeds the 936 nodes of juwels-booster", "nodes") reads
    `planner: error: --nodes: 99999 exceeds the 936 nodes of juwels-booster` (planner.errors has the format)."""
    names: dict[str, str] = {}
    for param in command.params if command is not None else ():
        if isinstance(param, click.Option) and param.opts:
            flag = param.opts[0]
            names.setdefault(flag.lstrip("-").replace("-", "_"), flag)
            names.setdefault(param.name or "", flag)
        elif isinstance(param, click.Argument) and param.name:
            names.setdefault(param.name, param.name.upper())
    return lambda name: names.get(name, name)


class InputError(click.ClickException):
    """A PlannerError as the command that ran spells it: one line, exit 2."""

    exit_code = 2


class PlannerCommand(click.Command):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PlannerError as exc:
            raise InputError(exc.text(spelling(self))) from exc  # --debug shows where the PlannerError came from
        except KeyboardInterrupt:  # Ctrl-C: one line from main(); click would write a blank line first
            raise click.exceptions.Abort() from None


class CommandGroup(click.Group):
    """A group of commands (`planner catalog ...`) whose errors name their options."""

    command_class = PlannerCommand


class PlannerGroup(click.Group):
    command_class = PlannerCommand
    group_class = CommandGroup

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name not in self.commands and name in LAZY_COMMANDS:
            import importlib

            importlib.import_module(f"planner.cli.{LAZY_COMMANDS[name]}")  # registers it on `cli`
        return super().get_command(ctx, name)

    def resolve_command(self, ctx, args):
        # click's own message is good; make unknown commands list the valid ones
        name = args[0] if args else None
        if name and name not in self.list_commands(ctx) and not name.startswith("-"):
            known = ", ".join(self.list_commands(ctx))
            raise click.UsageError(f"no such command '{name}' (commands: {known})")
        return super().resolve_command(ctx, args)


@click.group(cls=PlannerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="planner")
@click.option("--catalog", multiple=True, type=click.Path(file_okay=False), envvar=None,
              help="Extra catalog directory (accelerators/, clusters/, mfu/, laws/, models/, programs/, campaigns/, "
                   "shapes/, hparams/ inside); "
                   "repeatable. "
                   "Also read from $PLANNER_CATALOG_PATH (':'-separated). Later directories override earlier ones.")
@click.option("--debug", is_flag=True, help="On an error, print the traceback too (for bug reports).")
def cli(catalog, debug):
    """Plan compute for foundation-model research: scaling laws × hardware catalogs → FLOPs, GPU-hours,
    node-hours, wall-clock and energy.

    \b
    Examples:
      planner plan --flops 5.76e23 --cluster juwels-booster --nodes 64
      planner plan --params 400M,1B,10B,67B --law chinchilla-approach1
      planner catalog list clusters
    """


LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # everything str.splitlines() splits on
LONG_NUMBER = re.compile(r"\d{25,}")  # more digits than any count or size: a pasted or generated value


def one_line(message: str) -> str:
    """Errors are one line even when they quote user input that holds line breaks; a number of 300
    digits is shown by its first digits and its length."""
    message = LONG_NUMBER.sub(lambda m: f"{m[0][:6]}…({len(m[0])} digits)", message)
    return "".join(ch.encode("unicode_escape").decode() if ch in LINE_BREAKS else ch for ch in message)


def click_message(exc: click.ClickException) -> str:
    """click's message on one line: it lists a missing option's choices as ':\n\tchinchilla,\n\tisoflop'."""
    return re.sub(r"([:,])\n\t", r"\1 ", exc.format_message())


def wants_debug(argv: list[str]) -> bool:
    """Whether `--debug` is among the options before the command (where click accepts it)."""
    args = iter(argv)
    for arg in args:
        if arg == "--debug":
            return True
        if arg == "--catalog":
            next(args, None)  # its value
        elif not arg.startswith("-"):
            return False  # the command: its own options follow
    return False


def tolerant_output() -> None:
    """Tables and notes hold ×, –, ≥ and the like: a terminal whose encoding lacks them (PYTHONIOENCODING=latin-1,
    LANG=C) gets escapes such as \\u2014 instead of a UnicodeEncodeError in the middle of the output."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured writes as it can
                pass


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: exit 0 on success; 2 with one line on stderr for bad input; 1 with one line for a bug
    (`--debug` adds the traceback)."""
    argv = sys.argv[1:] if argv is None else argv
    tolerant_output()
    debug = wants_debug(argv)
    try:
        with warnings.catch_warnings():
            if not debug:  # stderr is progress, warnings of the result and one error line: numpy's RuntimeWarnings
                warnings.simplefilter("ignore")  # about inf are not among them (results are checked for range)
            code = cli.main(args=argv, prog_name="planner", standalone_mode=False)
        if isinstance(code, int) and code:  # ctx.exit(n) returns n when not in standalone mode
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("planner: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "planner"
        fail(f"{cmd}: error: {click_message(exc)}", 2, debug)
    except click.ClickException as exc:
        fail(f"planner: error: {click_message(exc)}", exc.exit_code if exc.exit_code else 2, debug)
    except PlannerError as exc:  # raised outside a command: fields keep their domain names
        fail(f"planner: error: {exc.text()}", 2, debug)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:  # stdout or stderr refused the output (a full disk behind `> file`, a closed terminal)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            fail(f"planner: error: cannot write the output: {exc.strerror}", 2, debug)
        fail(f"planner: internal error: {type(exc).__name__}: {exc} (a bug in the planner: please report it with the "
             "traceback from `planner --debug ...`)", 1, debug)
    except MemoryError:  # the planner's own data is small: only an input that asks for too much exhausts memory
        fail("planner: error: out of memory: the input asks for more than this machine holds (fewer runs, points "
             "or node counts?)", 2, debug)
    except Exception as exc:  # anything else is a bug in the planner, not in the input
        fail(f"planner: internal error: {type(exc).__name__}: {exc} (a bug in the planner: please report it with the "
             "traceback from `planner --debug ...`)", 1, debug)
    sys.exit(0)


def fail(line: str, code: int, debug: bool) -> None:
    """Exit with `code` after one line on stderr; with --debug the traceback of the error comes first."""
    if debug:
        import traceback

        traceback.print_exc()
    click.echo(one_line(line), err=True)
    sys.exit(code)
