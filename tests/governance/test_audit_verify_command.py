"""`manage.py audit_verify` and the periodic `audit_verify_all` task: the deployment-wide checks."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError

from governance.models import AuditChainHead, AuditEvent
from governance.tasks import audit_verify_all
from tests.factories import append_events
from tests.support.audit import tampering


def run(*args: str) -> str:
    out = StringIO()
    call_command("audit_verify", *args, stdout=out, no_color=True)
    return out.getvalue()


@pytest.fixture
def chains(workspace, other_workspace):
    append_events(workspace, 4)
    append_events(other_workspace, 2)
    return workspace, other_workspace


def break_event_three(workspace) -> int:
    target = AuditEvent.objects.get(workspace=workspace, seq=3)
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(event_type="automation.deleted")
    return target.pk


# --- The command -----------------------------------------------------------------------------


def test_clean_chains_exit_0_and_print_each_workspace(chains):
    output = run()
    assert output.splitlines() == [
        "acme/ops: ok events=4 head_seq=4",
        "globex/ops: ok events=2 head_seq=2",
        "2 audit chain(s) verified, none broken",
    ]


def test_one_workspace(chains):
    assert run("--workspace", "globex/ops").splitlines() == [
        "globex/ops: ok events=2 head_seq=2",
        "1 audit chain(s) verified, none broken",
    ]


def test_a_workspace_without_events_is_ok(workspace):
    assert run("--workspace", "acme/ops").splitlines()[0] == "acme/ops: ok events=0 head_seq=0"


def test_broken_chain_exits_1_and_describes_the_break(chains):
    workspace, _ = chains
    event_id = break_event_three(workspace)
    out = StringIO()
    with pytest.raises(CommandError, match=r"broken in 1 workspace\(s\): acme/ops") as info:
        call_command("audit_verify", stdout=out, no_color=True)
    assert info.value.returncode == 1
    assert out.getvalue().splitlines() == [
        f"acme/ops: BROKEN events=3 head_seq=4 first_break seq=3 event_id={event_id}: "
        "hash does not match the event's contents (edited)",
        "globex/ops: ok events=2 head_seq=2",
    ]


def test_a_truncated_tail_is_reported(chains):
    workspace, _ = chains
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=4).delete()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", "--workspace", "acme/ops", stdout=out, no_color=True)
    assert out.getvalue().splitlines() == [
        "acme/ops: BROKEN events=3 head_seq=4 first_break seq=4 event_id=None: chain head is "
        "at seq 4 and the last event is seq 3 (events missing from the tail)",
    ]


def test_only_the_named_workspace_is_checked(chains):
    workspace, _ = chains
    break_event_three(workspace)
    assert "globex/ops: ok" in run("--workspace", "globex/ops")


def test_exit_status_from_the_command_line(chains):
    """Run as `manage.py audit_verify`, a broken chain exits with status 1."""
    workspace, _ = chains
    break_event_three(workspace)
    with pytest.raises(SystemExit) as info:
        ManagementUtility(["manage.py", "audit_verify", "--no-color"]).execute()
    assert info.value.code == 1


@pytest.mark.parametrize(
    ("path", "message"),
    [("acme/nope", "does not exist"), ("not-a-path", "<org>/<workspace>")],
)
def test_unknown_or_malformed_workspace_is_an_error(chains, path, message):
    with pytest.raises(CommandError, match=message):
        run("--workspace", path)


# --- The periodic task -----------------------------------------------------------------------


def test_task_logs_every_chain_head(chains, caplog):
    workspace, other = chains
    caplog.set_level(logging.INFO, logger="governance.tasks")
    assert audit_verify_all() == {"workspaces": 2, "broken": []}

    heads = {h.workspace_id: h for h in AuditChainHead.objects.all()}
    messages = [r.getMessage() for r in caplog.records if r.name == "governance.tasks"]
    assert messages == [
        f"audit head workspace=acme/ops seq=4 hash={heads[workspace.pk].hash}",
        f"audit head workspace=globex/ops seq=2 hash={heads[other.pk].hash}",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "governance.tasks")


def test_task_logs_an_error_for_a_broken_chain(chains, caplog):
    workspace, _ = chains
    event_id = break_event_three(workspace)
    caplog.set_level(logging.INFO, logger="governance.tasks")
    assert audit_verify_all.apply().get() == {"workspaces": 2, "broken": ["acme/ops"]}

    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"audit chain broken workspace=acme/ops seq=3 event_id={event_id} "
        "reason=hash does not match the event's contents (edited)"
    ]
    # The stored head is still written out, so a later truncation shows against it.
    stored = AuditChainHead.objects.get(workspace=workspace)
    assert f"audit head workspace=acme/ops seq=4 hash={stored.hash}" in caplog.messages
