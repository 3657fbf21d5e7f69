"""The `./flowgate run` demo in a test: `seed_demo` as the launcher runs it, and the demo run
taken to its approval gate in-process, as the worker would."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from automations import engine
from automations.models import Run, RunStatus

DEMO_USERS = ("owner", "reviewer", "operator", "agent")


def seed_demo() -> dict[str, str]:
    """Seed the demo (`--force`: test settings have DEBUG off); the printed token per user."""
    out = StringIO()
    call_command("seed_demo", "--force", stdout=out)
    tokens = {}
    for line in out.getvalue().splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in DEMO_USERS and words[1].startswith("fg_"):
            tokens[words[0]] = words[1]
    return tokens


def demo_run_at_gate() -> Run:
    """The demo run, advanced in this process (its draft executed inline) until it waits at
    its approval gate."""
    run = Run.objects.get(automation__automation_id="demo-weekly-report")
    for _ in range(5):
        run.refresh_from_db()
        if run.status == RunStatus.AWAITING_APPROVAL:
            return run
        engine.run_advance_and_execute(run.run_id)
    raise AssertionError(f"the demo run did not reach its gate: {run.status} {run.detail}")
