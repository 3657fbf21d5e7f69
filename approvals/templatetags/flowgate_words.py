"""`{{ value|words }}`: an enum value in human words, `external_send` -> "External send".

The pages show people words, not identifiers; the raw value stays in the API and in the
element's `title` where a template wants it.
"""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def words(value) -> str:
    """Underscores and dashes become spaces and the first letter is capitalised; empty stays
    empty."""
    text = str(value or "").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]
