"""The run list of the operator's console: rows link to `/admin/automations/run/<run_id>/`,
each row says where the run is (the node(s) running, or the gate it waits on) and how long it
has taken, and the search box takes any prefix of a run id.

Where a page of runs is, is read for the whole page in two queries (running nodes, open gates)
after the page is cut, so the list's query count does not grow with its length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.admin.utils import quote
from django.db.models import Q
from django.urls import reverse

from automations.ids import is_run_id
from automations.models import NodeState, Run, RunNode
from automations.run_gates import gate_reader
from governance.admin_paging import DeferringChangeList

RUN_ID_PREFIX = "run-"


def run_change_url(run: Run) -> str:
    """The run page, by run id (the integer URLs of older links redirect here)."""
    return reverse("admin:automations_run_change", args=[quote(run.run_id)])


def current_steps(runs: Iterable[Run]) -> dict[int, str]:
    """What each run is doing now: the gate it waits on, else the nodes running (two queries).

    A run doing neither (queued between nodes, paused, finished) has no entry.
    """
    pks = [run.pk for run in runs]
    if not pks:
        return {}
    running: dict[int, list[str]] = defaultdict(list)
    for run_pk, node_id in (
        RunNode.objects.filter(run_id__in=pks, state=NodeState.RUNNING)
        .order_by("node_id")
        .values_list("run_id", "node_id")
    ):
        running[run_pk].append(node_id)
    steps = {pk: ", ".join(nodes) for pk, nodes in running.items()}
    for gate in gate_reader().open_gates(pks):
        steps[gate.run_id] = f"gate {gate.node_id}"
    return steps


def run_id_search(queryset, term: str):
    """Runs whose id starts with `term`, with or without the `run-` prefix.

    `LIKE 'prefix%'` (wildcards in `term` escaped) is an index range scan on PostgreSQL: Django
    gives the unique `run_id` column a `varchar_pattern_ops` index too. Text no run id could
    have finds nothing without a query.
    """
    term = term.strip()
    if not term or not is_run_id(term):
        return queryset.none() if term else queryset
    condition = Q(run_id__startswith=term)
    if not term.startswith(RUN_ID_PREFIX):
        condition |= Q(run_id__startswith=f"{RUN_ID_PREFIX}{term}")
    return queryset.filter(condition)


class RunChangeList(DeferringChangeList):
    """Rows link by run id; each run of the page carries `console_step` (see `current_steps`)."""

    def url_for_result(self, result) -> str:
        return run_change_url(result)

    def get_results(self, request):
        super().get_results(request)
        steps = current_steps(self.result_list)
        for run in self.result_list:
            run.console_step = steps.get(run.pk, "")
