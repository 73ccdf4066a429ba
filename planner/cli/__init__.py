"""The `planner` command: parses options, calls the library, formats. No arithmetic lives here."""

from __future__ import annotations

import functools
import math
import re
import sys
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
                 "simulate": "simulate"}


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
            raise InputError(exc.text(spelling(self))) from None


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
              help="Extra catalog directory (accelerators/, clusters/, mfu/, laws/, models/, programs/, campaigns/ inside); "
                   "repeatable. "
                   "Also read from $PLANNER_CATALOG_PATH (':'-separated). Later directories override earlier ones.")
def cli(catalog):
    """Plan compute for foundation-model research: scaling laws × hardware catalogs → FLOPs, GPU-hours,
    node-hours, wall-clock and energy.

    \b
    Examples:
      planner plan --flops 5.76e23 --cluster juwels-booster --nodes 64
      planner plan --params 400M,1B,10B,67B --law chinchilla-approach1
      planner catalog list clusters
    """


LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # everything str.splitlines() splits on


def one_line(message: str) -> str:
    """Errors are one line even when they quote user input that holds line breaks."""
    return "".join(ch.encode("unicode_escape").decode() if ch in LINE_BREAKS else ch for ch in message)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: exit 0 on success, 2 with one line on stderr for bad input."""
    argv = sys.argv[1:] if argv is None else argv
    try:
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
        click.echo(f"{cmd}: error: {one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"planner: error: {one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code if exc.exit_code else 2)
    except PlannerError as exc:  # raised outside a command: fields keep their domain names
        click.echo(f"planner: error: {one_line(exc.text())}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


