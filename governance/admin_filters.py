"""Changelist filters that take typed text: for columns with too many values to list.

Django's list filters offer a link per value, read from the table (a DISTINCT over millions of
audit events) or fixed. An event type, a run id or an actor is typed instead: `InputFilter`
renders a small GET form in the filter sidebar (templates/admin/flowgate/input_filter.html)
that keeps the changelist's other parameters, and filters with `filter_queryset(value)`.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR

MAX_INPUT = 200  # longer values match nothing anyway; never a 500 on a huge query string


class InputFilter(admin.SimpleListFilter):
    """A text box in the filter sidebar; subclasses set title, parameter_name and the lookup."""

    template = "admin/flowgate/input_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):
        return ()

    def has_output(self) -> bool:
        return True

    def value(self) -> str:
        return (super().value() or "").strip()[:MAX_INPUT]

    def choices(self, changelist):
        yield {
            "selected": not self.value(),
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
            "kept": [
                (name, value)
                for name, value in changelist.params.items()
                if name not in (self.parameter_name, PAGE_VAR)
            ],
            "value": self.value(),
            "placeholder": self.placeholder,
        }

    def queryset(self, request, queryset):
        value = self.value()
        return self.filter_queryset(queryset, value) if value else queryset

    def filter_queryset(self, queryset, value: str):
        raise NotImplementedError
