"""Prometheus metrics computed from the database when `/metrics` is scraped.

Why from the database: web processes and workers are separate processes (often separate hosts),
so counters kept in one process's memory would show that process's share only, and
prometheus-client's multiprocess mode needs one shared directory, which separate hosts do not
have. Every figure here is instead derived from the rows every process already shares, so any
web process answers for the whole deployment and a restart loses nothing:

- gauges: runs by status and workspace, open gates and the age of the oldest, sweep lag;
- counters: chat card deliveries that failed for good;
- histograms (cumulative, as Prometheus expects, over all rows still stored): gate decision
  latency (gate opened -> settling decision; each opening is its own row), node execution time
  (attempt claimed -> finished, last attempt of each node), run queue delay (run created ->
  started by the engine).

Each family is one aggregate query (a histogram's buckets are conditional counts of one scan).
Deleting runs makes the histograms go down, which Prometheus treats as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from approvals.models import Gate, GateDecision, GateStatus
from automations.models import Run, RunNode
from automations.runs.sweeps import last_sweep_completed_at
from automations.scheduling import SWEEP_RUNS
from channels.models import ApprovalMessage, MessageState

NODE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
QUEUE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
DECISION_BUCKETS_S = (60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400)
WORKSPACE = ("workspace__organization__slug", "workspace__slug")


def _workspace(row: dict, prefix: str = "") -> str:
    return f"{row[prefix + WORKSPACE[0]]}/{row[prefix + WORKSPACE[1]]}"


def _histogram(
    name: str, documentation: str, rows: QuerySet, start: str, end: str, buckets: tuple
) -> HistogramMetricFamily:
    """A histogram of `end - start` over `rows` (rows missing either are not counted)."""
    took = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    counts = {
        f"le_{index}": Count("pk", filter=Q(took__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(buckets)
    }
    totals = (
        rows.filter(**{f"{start}__isnull": False, f"{end}__isnull": False})
        .annotate(took=took)
        .aggregate(count=Count("pk"), total=Sum("took"), **counts)
    )
    cumulative = [(str(float(b)), totals[f"le_{i}"]) for i, b in enumerate(buckets)]
    cumulative.append(("+Inf", totals["count"]))
    total = totals["total"]
    seconds = total.total_seconds() if isinstance(total, timedelta) else float(total or 0) / 1e6
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], cumulative, seconds)
    return family


class FlowgateCollector(Collector):
    """Every Flowgate metric, read from the database at collection time (see the module)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield self._runs()
        yield from self._gates(now)
        yield self._chat_failures()
        yield self._sweep_lag(now)
        yield _histogram(
            "flowgate_gate_decision_latency_seconds",
            "Time from a gate opening to the decision that settled it.",
            GateDecision.objects.filter(settles=True),
            "gate__requested_at",
            "decided_at",
            DECISION_BUCKETS_S,
        )
        yield _histogram(
            "flowgate_node_execution_seconds",
            "Time a node's last attempt took, from its claim by a worker to its result.",
            RunNode.objects.all(),
            "started_at",
            "finished_at",
            NODE_BUCKETS_S,
        )
        yield _histogram(
            "flowgate_run_queue_delay_seconds",
            "Time from a run's start request until the engine started it.",
            Run.objects.all(),
            "created_at",
            "started_at",
            QUEUE_BUCKETS_S,
        )

    def _runs(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "flowgate_runs", "Runs by status and workspace.", labels=["workspace", "status"]
        )
        for row in Run.objects.values(*WORKSPACE, "status").annotate(n=Count("pk")).order_by():
            family.add_metric([_workspace(row), row["status"]], row["n"])
        return family

    def _gates(self, now) -> Iterator[GaugeMetricFamily]:
        count = GaugeMetricFamily(
            "flowgate_gates_open", "Open approval gates by workspace.", labels=["workspace"]
        )
        age = GaugeMetricFamily(
            "flowgate_gate_oldest_open_age_seconds",
            "Age of the oldest open approval gate by workspace.",
            labels=["workspace"],
        )
        rows = (
            Gate.objects.filter(status=GateStatus.OPEN)
            .values(*WORKSPACE)
            .annotate(n=Count("pk"), oldest=Min("requested_at"))
            .order_by()
        )
        for row in rows:
            count.add_metric([_workspace(row)], row["n"])
            age.add_metric([_workspace(row)], (now - row["oldest"]).total_seconds())
        yield count
        yield age

    def _chat_failures(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "flowgate_chat_delivery_failures",
            "Chat cards whose delivery failed for good (retries exhausted or refused).",
            labels=["workspace", "kind"],
        )
        rows = (
            ApprovalMessage.objects.filter(state=MessageState.FAILED)
            .values(*(f"gate__{field}" for field in WORKSPACE), "connection__kind")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            family.add_metric([_workspace(row, "gate__"), row["connection__kind"]], row["n"])
        return family

    def _sweep_lag(self, now) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "flowgate_sweep_lag_seconds",
            "Seconds since beat's stale-run sweep last completed (+Inf: never).",
            labels=["sweep"],
        )
        completed_at = last_sweep_completed_at(SWEEP_RUNS)
        lag = (now - completed_at).total_seconds() if completed_at else float("inf")
        family.add_metric([SWEEP_RUNS], lag)
        return family
