"""`jobctl db migrate`: create or upgrade jobctl's tables."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl.commands.common import emit_json, say, store

db_app = typer.Typer(help="Create or upgrade jobctl's tables.", no_args_is_help=True)


@db_app.command("migrate")
def migrate(json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Create or upgrade the schema (versioned, idempotent, safe from two hosts at once)."""
    s = store()
    applied = s.migrate()
    version, _latest = s.schema_version()
    if json_out:
        emit_json({"applied": applied, "version": version})
    elif applied:
        say(f"applied {', '.join(applied)}; {s.url.redacted} is at schema {version}")
    else:
        say(f"{s.url.redacted} is up to date (schema {version})")
