"""Run-control API: the transition table over every status, error order, tenancy, permissions
and audit (one event per mutation and per denial; reads write nothing)."""

from __future__ import annotations

import pytest

from automations.models import LifecycleEvent, NodeState, Run, RunStatus
from automations.services import grant_add
from governance.models import AuditEvent
from tests.factories import actor_for, make_run, output

pytestmark = pytest.mark.django_db

URL = "/api/automations/v2/runs"
ALL = frozenset(RunStatus.values)
MUTABLE = ALL - {"queued", "running", "pausing"}
# action → (path suffix, body, allowed source statuses, 409 code, target status)
ACTIONS = {
    "pause": ("pause", {}, {"queued", "running"}, "AUTOMATION_V2_RUN_NOT_PAUSABLE", "paused"),
    "resume": ("resume", {}, {"paused"}, "AUTOMATION_V2_RUN_NOT_PAUSED", "queued"),
    "cancel": ("cancel", {}, ALL, None, "cancelled"),
    "recover": (
        "recover",
        {},
        {"failed", "paused", "blocked", "completed"},
        "AUTOMATION_V2_RUN_NOT_RECOVERABLE",
        "queued",
    ),
    "repair": (
        "repair",
        {"node_id": "review", "prompt": "Review again"},
        MUTABLE,
        "AUTOMATION_V2_RUN_NOT_REPAIRABLE",
        "queued",
    ),
    "retry": ("tasks/review/retry", {}, MUTABLE, "AUTOMATION_V2_RUN_TASK_NOT_MUTABLE", "queued"),
    "requeue": (
        "tasks/review/requeue",
        {},
        MUTABLE,
        "AUTOMATION_V2_RUN_TASK_NOT_MUTABLE",
        "queued",
    ),
    "continue": (
        "tasks/review/continue",
        {},
        MUTABLE,
        "AUTOMATION_V2_RUN_TASK_NOT_CONTINUEABLE",
        "queued",
    ),
}
AUDIT = {
    "pause": "automation.run.paused",
    "resume": "automation.run.resumed",
    "cancel": "automation.run.cancelled",
    "recover": "automation.run.recovered",
    "repair": "automation.run.repaired",
    "retry": "automation.run.task_retried",
    "requeue": "automation.run.task_requeued",
    "continue": "automation.run.task_continued",
}
CANCEL_TERMINAL = {"completed", "failed", "cancelled"}
MUTATION_PATHS = [spec[0] for spec in ACTIONS.values()]
READ_PATHS = ["", "/tasks/review/reset_preview"]


def a_run(operator, status="paused", **fields):
    """A basic run with `draft` completed and `review` blocked (so recover and continue have
    their context in every status)."""
    return make_run(
        actor_for(operator),
        status=status,
        last_failure={"node_id": "review", "reason": "blocked"},
        nodes={
            "draft": (NodeState.COMPLETED, 1, output()),
            "review": (NodeState.BLOCKED, 1, output("blocked")),
        },
        **fields,
    )


def audit_count(workspace) -> int:
    return AuditEvent.objects.filter(workspace=workspace).count()


def post(member, run_id, suffix, body=None):
    return member.client().post(f"{URL}/{run_id}/{suffix}", body or {}, format="json")


@pytest.mark.parametrize("status", sorted(ALL))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_from_every_status(operator, action, status):
    suffix, body, allowed, code, target = ACTIONS[action]
    run = a_run(operator, status=status)
    audits, events = audit_count(run.workspace), LifecycleEvent.objects.filter(run=run).count()
    response = post(operator, run.run_id, suffix, body)
    stored = Run.objects.get(pk=run.pk)
    new_audits = list(
        AuditEvent.objects.filter(workspace=run.workspace)
        .order_by("seq")
        .values_list("event_type", flat=True)[audits:]
    )
    if status not in allowed:
        assert response.status_code == 409, response.json()
        assert response.json() == {
            "error": response.json()["error"],
            "code": code,
            "runID": run.run_id,
        }
        assert (stored.status, stored.version) == (status, run.version)
        assert new_audits == []
        assert LifecycleEvent.objects.filter(run=run).count() == events
        return
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["ok"] is True and data["run"]["run_id"] == run.run_id
    if action == "cancel" and status in CANCEL_TERMINAL:
        assert data["alreadyTerminal"] is True
        assert stored.status == status and stored.version == run.version
        assert new_audits == []
        return
    assert "alreadyTerminal" not in data
    assert stored.status == data["run"]["status"] == target
    assert stored.version == run.version + 1
    assert new_audits == [AUDIT[action]]


def test_409_messages_are_the_originals(operator):
    run = a_run(operator, status="running")
    expected = {
        "resume": "Run is not paused",
        "recover": "Run is not recoverable",
        "repair": "Run must be paused, failed, awaiting approval, or cancelled before repair",
        "retry": "Run must be paused, blocked, failed, awaiting approval, completed, or "
        "cancelled before task reset",
    }
    for action, message in expected.items():
        suffix, body, *_ = ACTIONS[action]
        assert post(operator, run.run_id, suffix, body).json()["error"] == message
    completed = a_run(operator, status="completed")
    assert post(operator, completed.run_id, "pause").json()["error"] == "Run is not pausable"


class TestResponses:
    def test_pause_body_and_default_reason(self, operator):
        run = a_run(operator, status="running")
        data = post(operator, run.run_id, "pause").json()
        assert data["run"]["status"] == "paused"
        assert data["run"]["pause_reason"] == "paused by operator"
        events = [e["event"] for e in data["run"]["checkpoint"]["lifecycle_history"]]
        assert events[-2:] == ["run_pause_requested", "run_paused"]

    def test_cancel_with_reason(self, operator):
        run = a_run(operator, status="awaiting_approval")
        data = post(operator, run.run_id, "cancel", {"reason": "kill switch"}).json()
        assert data["run"]["status"] == "cancelled"
        assert data["run"]["stop_kind"] == "operator_stopped"
        assert data["run"]["stop_reason"] == data["run"]["detail"] == "kill switch"

    def test_repair_adds_the_automation(self, operator):
        run = a_run(operator, status="failed")
        body = {"node_id": "draft", "prompt": "Write v2", "template_id": "template-b"}
        data = post(operator, run.run_id, "repair", body).json()
        assert data["automation"]["version"] == 2
        assert data["automation"]["agents"][0]["template_id"] == "template-b"
        assert data["run"]["automation_version"] == 2
        assert data["run"]["checkpoint"]["pending_nodes"] == ["draft", "review", "approval"]

    def test_retry_and_requeue_add_the_reset(self, operator):
        for verb in ("retry", "requeue"):
            run = a_run(operator, status="blocked")
            data = post(operator, run.run_id, f"tasks/draft/{verb}").json()
            assert data["node_id"] == "draft"
            assert data["reset_nodes"] == ["approval", "draft", "review"]
            assert data["cleared_outputs"] == ["draft", "review"]
            assert data["run"]["checkpoint"]["node_attempts"] == {"draft": 1, "review": 1}

    def test_continue_adds_the_node(self, operator):
        run = a_run(operator, status="blocked")
        data = post(operator, run.run_id, "tasks/review/continue").json()
        assert (data["node_id"], data["reset_nodes"]) == ("review", ["review"])
        assert "cleared_outputs" not in data

    def test_reset_preview_is_a_read(self, operator, viewer):
        run = a_run(operator, status="blocked")
        audits, events = audit_count(run.workspace), LifecycleEvent.objects.count()
        for member in (operator, viewer):
            response = member.client().get(f"{URL}/{run.run_id}/tasks/draft/reset_preview")
            assert response.status_code == 200, response.json()
            assert response.json() == {
                "ok": True,
                "preview": {
                    "run_id": run.run_id,
                    "node_id": "draft",
                    "reset_nodes": ["approval", "draft", "review"],
                    "cleared_outputs": ["draft", "review"],
                    "preserves_upstream_outputs": True,
                },
            }
        assert (audit_count(run.workspace), LifecycleEvent.objects.count()) == (audits, events)
        assert Run.objects.get(pk=run.pk).version == run.version


class TestErrorOrder:
    @pytest.mark.parametrize("suffix", MUTATION_PATHS)
    def test_unknown_run_is_404(self, operator, suffix):
        body = {"node_id": "draft"} if suffix == "repair" else {}
        response = post(operator, "run-nope", suffix, body)
        assert response.status_code == 404
        assert response.json() == {
            "error": "Run not found",
            "code": "AUTOMATION_V2_RUN_NOT_FOUND",
            "runID": "run-nope",
        }

    def test_repair_node_required_before_the_run_is_read(self, operator):
        for body in ({}, {"node_id": "  "}, {"node_id": "", "prompt": "x"}):
            response = post(operator, "run-nope", "repair", body)
            assert response.status_code == 400
            assert response.json() == {
                "error": "node_id is required",
                "code": "AUTOMATION_V2_REPAIR_NODE_REQUIRED",
            }

    @pytest.mark.parametrize("verb", ["retry", "requeue", "continue"])
    def test_task_node_required_before_the_run_is_read(self, operator, verb):
        response = post(operator, "run-nope", f"tasks/%20/{verb}")
        assert response.status_code == 400
        assert response.json()["code"] == "AUTOMATION_V2_TASK_NODE_REQUIRED"
        preview = operator.client().get(f"{URL}/run-nope/tasks/%20/reset_preview")
        assert preview.json()["code"] == "AUTOMATION_V2_TASK_NODE_REQUIRED"

    def test_409_before_the_node_is_looked_up(self, operator):
        run = a_run(operator, status="queued")
        response = post(operator, run.run_id, "repair", {"node_id": "nope"})
        assert response.json()["code"] == "AUTOMATION_V2_RUN_NOT_REPAIRABLE"
        response = post(operator, run.run_id, "tasks/nope/retry")
        assert response.json()["code"] == "AUTOMATION_V2_RUN_TASK_NOT_MUTABLE"

    def test_node_and_agent_404s(self, operator):
        run = a_run(operator, status="paused")
        response = post(operator, run.run_id, "repair", {"node_id": "nope", "prompt": "x"})
        assert (response.status_code, response.json()["code"], response.json()["nodeID"]) == (
            404,
            "AUTOMATION_V2_REPAIR_NODE_NOT_FOUND",
            "nope",
        )
        response = post(operator, run.run_id, "repair", {"node_id": "approval", "template_id": "t"})
        assert response.status_code == 404
        assert response.json()["code"] == "AUTOMATION_V2_REPAIR_AGENT_NOT_FOUND"
        for verb in ("retry", "requeue"):
            response = post(operator, run.run_id, f"tasks/nope/{verb}")
            assert response.status_code == 404
            assert response.json() == {
                "error": "Node not found",
                "code": "AUTOMATION_V2_TASK_NODE_NOT_FOUND",
                "nodeID": "nope",
            }
        response = post(operator, run.run_id, "tasks/draft/continue")
        assert (response.status_code, response.json()["code"]) == (
            409,
            "AUTOMATION_V2_TASK_NOT_BLOCKED",
        )
        preview = operator.client().get(f"{URL}/{run.run_id}/tasks/nope/reset_preview")
        assert (preview.status_code, preview.json()["code"]) == (
            404,
            "AUTOMATION_V2_TASK_NODE_NOT_FOUND",
        )

    @pytest.mark.parametrize(
        "suffix,body,field",
        [
            ("pause", {"reason": 5}, "reason"),
            ("cancel", {"reason": ["x"]}, "reason"),
            ("resume", {"reason": "x", "force": True}, "force"),
            ("repair", {"node_id": 7}, "node_id"),
            ("repair", {"node_id": "draft", "model_policy": "gpt"}, "model_policy"),
            ("repair", {"node_id": "draft", "prompt": {"text": "x"}}, "prompt"),
            ("tasks/draft/retry", {"why": "x"}, "why"),
        ],
    )
    def test_strict_bodies(self, operator, suffix, body, field):
        run = a_run(operator, status="paused")
        response = post(operator, run.run_id, suffix, body)
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"
        assert field in response.json()["fields"]
        assert Run.objects.get(pk=run.pk).version == run.version

    def test_malformed_json_and_empty_body(self, operator):
        run = a_run(operator, status="paused")
        bad = operator.client().post(
            f"{URL}/{run.run_id}/resume", "{", content_type="application/json"
        )
        assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_REQUEST")
        for body in ("[]", "0", "null", '"x"', "false"):
            wrong = operator.client().post(
                f"{URL}/{run.run_id}/resume", body, content_type="application/json"
            )
            assert (wrong.status_code, wrong.json()["code"]) == (400, "INVALID_REQUEST"), body
        empty = operator.client().post(f"{URL}/{run.run_id}/resume")
        assert empty.status_code == 200 and empty.json()["run"]["status"] == "queued"
        null_reason = post(operator, run.run_id, "pause", {"reason": None})
        assert null_reason.status_code == 200
        assert null_reason.json()["run"]["pause_reason"] == "paused by operator"


class TestTenancyAndPermissions:
    @pytest.mark.parametrize("suffix", MUTATION_PATHS)
    def test_other_workspace_run_is_404_on_every_mutation(self, operator, outsider, suffix):
        run = a_run(operator, status="paused")
        body = {"node_id": "review"} if suffix == "repair" else {}
        before = AuditEvent.objects.count()
        theirs = post(outsider, run.run_id, suffix, body)
        assert theirs.status_code == 404
        assert theirs.json() == {
            "error": "Run not found",
            "code": "AUTOMATION_V2_RUN_NOT_FOUND",
            "runID": run.run_id,
        }
        assert Run.objects.get(pk=run.pk).version == run.version
        assert AuditEvent.objects.count() == before

    @pytest.mark.parametrize("path", READ_PATHS)
    def test_other_workspace_run_is_404_on_reads(self, operator, outsider, path):
        run = a_run(operator, status="paused")
        response = outsider.client().get(f"{URL}/{run.run_id}{path}")
        assert response.status_code == 404
        assert response.json()["code"] == "AUTOMATION_V2_RUN_NOT_FOUND"

    @pytest.mark.parametrize("suffix", MUTATION_PATHS)
    def test_viewer_is_forbidden_to_mutate_and_each_denial_is_audited(
        self, operator, viewer, suffix
    ):
        run = a_run(operator, status="completed")  # 403 comes before any 409
        body = {"node_id": "review"} if suffix == "repair" else {}
        before = audit_count(run.workspace)
        response = post(viewer, run.run_id, suffix, body)
        assert response.status_code == 403
        assert response.json() == {
            "error": "Automation access denied",
            "code": "AUTOMATION_V2_ACCESS_DENIED",
        }
        denials = AuditEvent.objects.filter(workspace=run.workspace).order_by("seq")[before:]
        assert [(e.event_type, e.payload["code"]) for e in denials] == [
            ("automation.governance.denied", "AUTOMATION_V2_ACCESS_DENIED")
        ]
        assert Run.objects.get(pk=run.pk).version == run.version

    @pytest.mark.parametrize("path", READ_PATHS)
    def test_viewer_reads(self, operator, viewer, path):
        run = a_run(operator, status="paused")
        before = audit_count(run.workspace)
        assert viewer.client().get(f"{URL}/{run.run_id}{path}").status_code == 200
        assert audit_count(run.workspace) == before

    @pytest.mark.parametrize("suffix", MUTATION_PATHS)
    def test_agent_without_grant_is_forbidden(self, operator, agent, suffix):
        run = a_run(operator, status="paused")
        body = {"node_id": "review"} if suffix == "repair" else {}
        before = audit_count(run.workspace)
        response = post(agent, run.run_id, suffix, body)
        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_MODIFY_FORBIDDEN"
        denials = AuditEvent.objects.filter(workspace=run.workspace).order_by("seq")[before:]
        assert [e.event_type for e in denials] == ["automation.governance.denied"]
        assert denials[0].payload["actor"]["kind"] == "agent"

    def test_agent_with_an_operate_grant_may_operate(self, operator, agent):
        run = a_run(operator, status="paused")
        grant_add(
            actor=actor_for(operator),
            automation=run.automation,
            permission="operate",
            username=agent.user.username,
        )
        response = post(agent, run.run_id, "resume", {"reason": "agent resumes"})
        assert response.status_code == 200, response.json()
        event = AuditEvent.objects.filter(event_type="automation.run.resumed").get()
        assert event.actor_kind == "agent" and event.payload["reason"] == "agent resumes"
        assert event.payload["actor"] == {
            "kind": "agent",
            "actor_id": agent.user.username,
            "source": "api",
        }

    def test_reviewer_may_not_operate(self, operator, reviewer):
        run = a_run(operator, status="paused")
        assert post(reviewer, run.run_id, "resume").status_code == 403

    def test_anonymous_is_401(self, operator, client):
        run = a_run(operator, status="paused")
        response = client.post(f"{URL}/{run.run_id}/resume")
        assert response.status_code == 401
        assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
