"""The monitor's `/` filter: `queue:mail class:Invoice error:Timeout` or free text (pure)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

FIELDS = ("queue", "class", "error")
"""Terms written `FIELD:VALUE`; any other word is free text."""


@dataclass(frozen=True)
class Filter:
    """Terms that every shown row must match: case-insensitive substrings, all of them (AND)."""

    text: str = ""
    """The filter as typed."""
    terms: tuple[tuple[str, str], ...] = ()
    """(field, lowercased value) pairs; field is one of FIELDS, or `""` for free text."""

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Split on spaces (quotes group words: `error:"timed out"`); `FIELD:` with no value is ignored."""
        try:
            words = shlex.split(text)
        except ValueError:  # an unbalanced quote while typing: take the words as they are
            words = text.split()
        terms: list[tuple[str, str]] = []
        for word in words:
            field, sep, value = word.partition(":")
            if sep and field.lower() in FIELDS:
                if value:
                    terms.append((field.lower(), value.lower()))
            else:
                terms.append(("", word.lower()))
        return cls(text.strip(), tuple(terms))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, fields: Mapping[str, str | None], cells: tuple[str, ...]) -> bool:
        """Whether a row passes. `fields` holds what the row has of FIELDS: a term on a field the row
        lacks is ignored (so `class:X` does not empty the Queues panel); free text must appear in a cell
        or in one of the fields."""
        haystack = " ".join((*cells, *(v for v in fields.values() if v))).lower()
        for field, value in self.terms:
            if not field:
                if value not in haystack:
                    return False
            elif field in fields and value not in (fields[field] or "").lower():
                return False
        return True
