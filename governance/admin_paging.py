"""Changelists of large tables (runs, lifecycle events, audit events) without a full COUNT(*).

Django's admin counts the filtered queryset on every changelist page; on a table of millions of
rows that count costs more than the page itself. `LookaheadPaginator` only counts as far as the
page being shown plus one row: it knows whether a next page exists, never how many there are.
The admin's own pagination then offers the pages up to the next one, and the changelist says
"more than N" (templates/admin/pagination_lookahead.html) instead of a total.

`LargeTableAdmin` wires it up: no full count (`show_full_result_count`), no "Show all" (it
would load the whole table), no facet counts, and optional `list_defer` columns (big JSON) left
out of the changelist query only.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.utils.functional import cached_property


class LookaheadPaginator(Paginator):
    """Counts at most `page_number * per_page + 1` rows (a bounded `COUNT` over a `LIMIT`)."""

    def __init__(self, object_list, per_page, *, page_number: int = 1, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.page_number = max(page_number, 1)

    @property
    def window(self) -> int:
        return self.page_number * self.per_page

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.window + 1].count()

    @property
    def has_more(self) -> bool:
        """More rows exist after the current page's window than were counted."""
        return self.count > self.window


def page_number(request) -> int:
    try:
        return int(request.GET.get(PAGE_VAR, 1))
    except ValueError:
        return 1


class DeferringChangeList(ChangeList):
    """A changelist whose query leaves out its admin's `list_defer` columns."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer(*self.model_admin.list_defer)


class LargeTableAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_max_show_all = 0  # "Show all" would load every row of the filtered table
    show_facets = admin.ShowFacets.NEVER  # facets count the whole table per filter choice
    list_defer: tuple[str, ...] = ()

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return LookaheadPaginator(
            queryset,
            per_page,
            page_number=page_number(request),
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
        )

    def get_changelist(self, request, **kwargs):
        return DeferringChangeList
