"""The `jobctl` command: a typer app whose every error is one line on stderr."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer
import typer._click
import typer.core

from jobctl import __version__
from jobctl.commands import batches as batches_cmd
from jobctl.commands import change, inspect, top
from jobctl.commands import db as db_cmd
from jobctl.commands import enqueue as enqueue_cmd
from jobctl.commands import generate as generate_cmd
from jobctl.commands import metrics as metrics_cmd
from jobctl.commands import start as start_cmd
from jobctl.commands.common import GLOBALS
from jobctl.errors import JobctlError
from jobctl.formatting import printable


def _flags_show_no_value() -> None:
    """typer's rich help prints `<bool>` beside every flag (`--json <bool>`), as if it took a value; its
    plain help does not. Show a flag (and a counter) bare there too; options with values are unchanged."""
    option = typer.core.TyperOption
    shows_value = option.display_type_rich
    if getattr(shows_value, "jobctl_flags_bare", False):
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: typer._click.Context) -> str | None:
        return None if self.is_flag or self.count else shows_value(self, ctx)

    display_type_rich.jobctl_flags_bare = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_value()

app = typer.Typer(
    name="jobctl",
    help="Database-backed background jobs: run workers, inspect and steer queues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db_cmd.db_app, name="db")
app.command("start")(start_cmd.start)
app.command("stats")(inspect.stats)
app.command("jobs")(inspect.jobs)
app.command("show")(inspect.show)
app.command("batches")(batches_cmd.batches)
app.command("batch")(batches_cmd.batch)
app.command("retry")(change.retry)
app.command("discard")(change.discard)
app.command("clear")(change.clear)
app.command("pause")(change.pause)
app.command("resume")(change.resume)
app.command("enqueue")(enqueue_cmd.enqueue)
app.command("recurring")(inspect.recurring)
app.command("processes")(inspect.processes)
app.command("metrics")(metrics_cmd.metrics)
app.command("top")(top.top)
app.add_typer(generate_cmd.generate_app, name="generate")

GLOBAL_VALUE_OPTIONS = ("--database", "--config")
GLOBAL_FLAGS = ("--debug",)


def _version(value: bool) -> None:
    if value:
        print(f"jobctl {__version__}")
        raise typer.Exit()


@app.callback()
def _globals(
    database: Annotated[
        str | None, typer.Option(metavar="URL", help="Database URL (else JOBCTL_DATABASE_URL, config, DATABASE_URL).")
    ] = None,
    config: Annotated[
        str | None, typer.Option(metavar="PATH", help="Queue config (else JOBCTL_CONFIG, config/queue.yml).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options, accepted before or after the verb."""
    GLOBALS.database = database
    GLOBALS.config = config
    GLOBALS.debug = debug


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options found anywhere (before `--`) to the front, so they work after the verb too."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE_OPTIONS:
            if "=" in arg:
                front.append(arg)
            else:
                front.extend(argv[i : i + 2])
                i += 1
        elif arg in GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map every error to one line and an exit code."""
    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    for index, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 reach Python as lone surrogates
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            print(f"jobctl: argument {index} ({shown}) is not valid UTF-8", file=sys.stderr)
            return 2
    debug = "--debug" in args
    # Job classes and commands are the application's: import them from where jobctl runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        result = app(args=args, prog_name="jobctl", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except typer.TyperException as exc:  # usage errors: one line, no usage block, no panel
        if debug:
            traceback.print_exc()
        print(f"jobctl: {printable(exc.format_message())}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        print("jobctl: aborted", file=sys.stderr)
        return 1
    except JobctlError as exc:
        if debug:
            traceback.print_exc()
        print(f"jobctl: {_first_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _first_line(exc: JobctlError) -> str:
    """An error's first line, control characters made visible (messages may quote data from a row)."""
    text = str(exc)
    return printable(text.splitlines()[0]) if text.strip() else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
