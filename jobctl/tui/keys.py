"""The monitor's keys: each binding with how help and the footer show it, and the panel each action needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.binding import Binding, BindingType

from jobctl.tui.panels import PANELS


@dataclass(frozen=True)
class Key:
    """One key of the monitor: its binding, and how help and the footer show it."""

    binding: str
    """Textual key name(s), comma-separated."""
    action: str
    """The screen action it runs."""
    shown: str
    """The key as help shows it."""
    help: str
    """Its help line."""
    footer: str = ""
    """Its footer label (empty: not in the footer)."""


VIEW_KEYS = (
    *(Key(p.key, f"panel('{p.id}')", p.key, f"{p.title} panel") for p in PANELS),
    Key("slash", "filter", "/", "filter this panel: queue:NAME class:NAME error:TEXT or free text "
        "(enter keeps it, escape clears it; each panel keeps its own)", "filter"),
    Key("space", "freeze", "space", "freeze or resume refreshing", "freeze"),
    Key("question_mark", "help", "?", "this help (escape closes it and any dialog)", "help"),
    Key("q", "quit", "q", "quit", "quit"),
)
"""Keys of the read-only monitor."""

ACTION_KEYS = (
    Key("r", "retry", "r", "retry the selected failure (Failures)", "retry"),
    Key("d", "discard", "d", "discard the selected failure (Failures)", "discard"),
    Key("R,shift+r", "retry_matching", "R", "retry every failure matching the filter (Failures)", "retry all"),
    Key("D,shift+d", "discard_matching", "D", "discard every failure matching the filter (Failures)", "discard all"),
    Key("p", "toggle_pause", "p", "pause or resume the selected queue (Queues)", "pause/resume"),
    Key("n", "run_now", "n", "run the selected recurring task now (Recurring)", "run now"),
)
"""Keys that change the database; `--read-only` has none of them."""

MOVE_HELP = (
    ("↑ ↓ PgUp PgDn", "move in the table (home, end: first, last row)"),
    ("enter", "open the job under the cursor: arguments, attempts, tracebacks (Claimed, Failures)"),
    ("escape", "close help, a dialog or a job; clear this panel's filter"),
)

ACTION_PANEL = {"retry": "failures", "discard": "failures", "retry_matching": "failures",
                "discard_matching": "failures", "toggle_pause": "queues", "run_now": "recurring"}
"""The panel each action works on: its key is active (and in the footer) only there."""


def bindings(keys: Sequence[Key]) -> list[BindingType]:
    """Textual bindings for keys."""
    return [Binding(k.binding, k.action, k.footer, show=bool(k.footer), key_display=k.shown) for k in keys]


def help_lines(keys: Sequence[Key]) -> list[tuple[str, str]]:
    """Help lines: the keys bound, then moving around."""
    return [(k.shown, k.help) for k in keys] + list(MOVE_HELP)
