"""The man pages: generated from the CLI by tools/genman.py, in step with `--help`, clean for groff."""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
GENMAN = ROOT / "tools" / "genman.py"

sys.path.insert(0, str(GENMAN.parent))
import genman  # noqa: E402

from jobctl.cli import hoist_globals  # noqa: E402

TREE = genman.load_root()
VERBS = TREE.children()
PAGES = sorted(MAN.glob("*.1"))


def verb_id(verb: genman.Node) -> str:
    return " ".join(verb.path)


def sections(page: Path) -> dict[str, str]:
    """A page's sections by name, as plain text: font escapes dropped, `\\-` back to `-`."""
    text = re.sub(r"\\f[BIRP]", "", page.read_text(encoding="utf-8")).replace("\\-", "-").replace("\\ ", " ")
    found: dict[str, str] = {}
    for chunk in re.split(r"^\.SH ", text, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        found[name.strip('"')] = body
    return found


def mentions(text: str, word: str) -> bool:
    """`word` appears as a whole token (so `--key` is not found inside `--keys`)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def option_names(node: genman.Node) -> list[str]:
    return [name for opt in node.options() for name in [*opt.opts, *opt.secondary_opts]]


def help_output(*args: str) -> str:
    """What `jobctl ARGS --help` prints, wide enough that rich wraps nothing."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "jobctl.cli", *args, "--help"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- (1) the committed pages are what the generator writes -------------------------------


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(GENMAN), "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.1")}
    committed = {p.name: p.read_bytes() for p in PAGES}
    assert sorted(fresh) == sorted(committed), "run `python tools/genman.py`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale man pages {stale}: run `python tools/genman.py`"


def test_check_exits_1_naming_a_stale_page(tmp_path: Path) -> None:
    for page in PAGES:
        shutil.copy(page, tmp_path)
    check = [sys.executable, str(GENMAN), "--check", "--out", str(tmp_path)]
    assert subprocess.run(check, capture_output=True, text=True, check=False).returncode == 0
    victim = tmp_path / "jobctl-enqueue.1"
    victim.write_text(victim.read_text(encoding="utf-8").replace("JSON", "YAML"), encoding="utf-8")
    (tmp_path / "jobctl.1").unlink()
    done = subprocess.run(check, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "jobctl-enqueue.1" in done.stderr and "jobctl.1" in done.stderr
    assert "jobctl-db.1" not in done.stderr


def test_every_prose_source_belongs_to_a_verb() -> None:
    pages = {f"{genman.page_name(v.path)}.1": "" for v in VERBS}
    assert genman.orphans(MAN / "src", pages) == []


# --- (2) every verb has a page showing every option --help shows --------------------------


@pytest.mark.parametrize("verb", VERBS, ids=verb_id)
def test_every_click_param_is_in_the_verb_page(verb: genman.Node) -> None:
    page = MAN / f"{genman.page_name(verb.path)}.1"
    assert page.exists(), f"no man page for `jobctl {verb_id(verb)}`: run `python tools/genman.py`"
    found = sections(page)
    assert found["NAME"].startswith(f"{genman.page_name(verb.path)} - ")
    options_text = found.get("OPTIONS", "") + found.get("COMMANDS", "")
    for leaf in verb.leaves():
        assert mentions(found["SYNOPSIS"], " ".join(("jobctl", *leaf.path)))
        for option in leaf.options():
            for name in [*option.opts, *option.secondary_opts]:
                assert mentions(options_text, name), f"{name} of `{verb_id(leaf)}` missing from OPTIONS"
            if not option.is_eager:
                assert mentions(found["SYNOPSIS"], option.opts[0]), f"{option.opts[0]} missing from SYNOPSIS"
            if option.help:
                assert " ".join(option.help.split()) in options_text
        for argument in leaf.arguments():
            assert mentions(found["SYNOPSIS"], genman.metavar(argument))
            assert mentions(found.get("ARGUMENTS", "") + options_text, genman.metavar(argument))


@pytest.mark.parametrize("verb", VERBS, ids=verb_id)
def test_every_option_of_the_real_help_is_in_the_verb_page(verb: genman.Node) -> None:
    page = MAN / f"{genman.page_name(verb.path)}.1"
    text = "".join(sections(page).values())
    for leaf in verb.leaves():
        shown = set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", help_output(*leaf.path)))
        assert "--help" in shown
        missing = sorted(name for name in shown if not mentions(text, name))
        assert not missing, f"`jobctl {verb_id(leaf)} --help` shows {missing}, {page.name} does not"


def test_the_overview_shows_every_global_option() -> None:
    found = sections(MAN / "jobctl.1")
    shown = set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", help_output()))
    assert {"--database", "--config", "--debug"} <= shown
    assert not sorted(name for name in shown if not mentions(found["GLOBAL OPTIONS"], name))


def test_global_options_work_after_the_verb_as_the_pages_say() -> None:
    for option in TREE.options():
        if not option.is_eager:
            moved = hoist_globals(["enqueue", "x", option.opts[0], *([] if option.is_flag else ["v"])])
            assert moved[0] == option.opts[0], f"{option.opts[0]} is documented as accepted after the verb"


# --- (3) groff reads every page without a warning ----------------------------------------


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_groff_reports_nothing(page: Path) -> None:
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True, check=False
    )
    # groff exits 0 even on bad macros: its stderr is the only signal.
    assert done.stderr == "", done.stderr
    assert done.returncode == 0


# --- (4) the overview names every verb ---------------------------------------------------


def test_the_overview_lists_every_verb_and_page() -> None:
    found = sections(MAN / "jobctl.1")
    for verb in VERBS:
        assert mentions(found["SEE ALSO"], genman.page_name(verb.path))
        for leaf in verb.leaves():
            assert mentions(found["COMMANDS"], " ".join(leaf.path)), f"`{verb_id(leaf)}` missing from jobctl.1"
    for section in ("DESCRIPTION", "GLOBAL OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES"):
        assert found.get(section, "").strip(), f"jobctl.1 has no {section}"
    for code in ("0", "1", "2", "3", "69"):
        assert re.search(rf"^\.B {code}$", found["EXIT STATUS"], flags=re.M)


# --- the generator on verbs still to come ------------------------------------------------


class State(enum.Enum):
    READY = "ready"
    FAILED = "failed"


def future_app() -> typer.Typer:
    """Verbs shaped like those the spec still promises, with help text that needs escaping."""
    app = typer.Typer(name="jobctl", add_completion=False)

    @app.callback()
    def _globals(debug: Annotated[bool, typer.Option("--debug", help="Tracebacks.")] = False) -> None:
        """Database-backed background jobs."""

    @app.command("jobs")
    def jobs(
        state: Annotated[State | None, typer.Option(help="Only jobs in this state.")] = None,
        limit: Annotated[int, typer.Option(metavar="N", help="At most N jobs.")] = 50,
        queue: Annotated[list[str] | None, typer.Option("--queue", "-q", help="Only these queues.")] = None,
        yes: Annotated[bool, typer.Option("--yes/--no", help="Skip the question.")] = False,
    ) -> None:
        """.List jobs, newest first: a \\ backslash and 'quotes'.

        'A second paragraph that starts with a quote.
        """

    @app.command("retry")
    def retry(ids: Annotated[list[int], typer.Argument(metavar="ID", help="Jobs to retry.")]) -> None:
        """Failed jobs back to ready."""

    return app


def test_a_verb_without_prose_gets_a_page_from_its_docstring(tmp_path: Path) -> None:
    pages = genman.render(tmp_path, genman.load_root(future_app()))
    assert sorted(pages) == ["jobctl-jobs.1", "jobctl-retry.1", "jobctl.1"]
    jobs = pages["jobctl-jobs.1"]
    assert "\\&.List jobs, newest first: a \\e backslash" in jobs
    assert "\\&'A second paragraph" in jobs
    assert "\\fB\\-q\\fR, \\fB\\-\\-queue\\fR \\fIQUEUE\\fR" in jobs
    assert "\\fB\\-\\-limit\\fR \\fIN\\fR" in jobs and "Default: \\fB50\\fR." in jobs
    assert "One of: \\fBready\\fR, \\fBfailed\\fR." in jobs
    assert "\\fB\\-\\-yes\\fR, \\fB\\-\\-no\\fR" in jobs and "Default: \\fB\\-\\-no\\fR." in jobs
    assert "[\\fB\\-\\-yes\\fR|\\fB\\-\\-no\\fR]" in jobs
    assert "The global option \\fB\\-\\-debug\\fR is accepted too" in jobs
    assert "[\\fIID\\fR\\ .\\|.\\|.]" not in pages["jobctl-retry.1"]  # required: no brackets
    assert "\\fIID\\fR\\ .\\|.\\|." in pages["jobctl-retry.1"]
    if shutil.which("groff"):
        for name, text in pages.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
            done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(tmp_path / name)],
                                  capture_output=True, text=True, check=False)
            assert done.stderr == "", f"{name}: {done.stderr}"


def test_prose_replaces_description_and_adds_sections(tmp_path: Path) -> None:
    (tmp_path / "jobs.roff").write_text(
        '.\\" a comment\n.SH EXAMPLES\n.EX\n$ jobctl jobs\n.EE\n.SH DESCRIPTION\nHand-written.\n'
        '.SH "JSON OUTPUT"\nA list.\n.SH OPTIONS\nFilters combine.\n',
        encoding="utf-8",
    )
    page = genman.render(tmp_path, genman.load_root(future_app()))["jobctl-jobs.1"]
    heads = re.findall(r"^\.SH (.*)$", page, flags=re.M)
    assert heads == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", '"JSON OUTPUT"', '"EXIT STATUS"', "EXAMPLES",
                     '"SEE ALSO"']
    assert "Hand-written." in page and "second paragraph" not in page
    assert page.index("Filters combine.") < page.index("\\fB\\-\\-limit\\fR \\fIN\\fR")
    (tmp_path / "jobs.roff").write_text(".SH SYNOPSIS\nmine\n", encoding="utf-8")
    with pytest.raises(genman.SourceError, match="SYNOPSIS is generated"):
        genman.render(tmp_path, genman.load_root(future_app()))


def test_stats_says_how_its_recent_counts_are_estimated() -> None:
    """The last minute and hour are read from per-minute counters, the oldest minute prorated: the help and
    the page say so, and the page documents the JSON keys that carry them."""
    shown = " ".join(help_output("stats").split())
    assert "per-minute counters" in shown and "estimates" in shown
    found = sections(MAN / "jobctl-stats.1")
    description = " ".join(found["DESCRIPTION"].split())
    assert "prorated" in description and "estimates" in description and "\\(~~3/min" in description
    keys = " ".join(found["JSON OUTPUT"].split())
    for key in ("finished_last_minute", "failed_last_minute", "finished_last_hour", "failed_last_hour"):
        assert key in keys
    assert "estimated from the per-minute counters" in keys
