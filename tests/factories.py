"""Builders of test data, shared by every test directory: factory_boy factories for the data
model, flows, and runs and gates put into the state a test needs. Services are used where
invariants matter (runs reach their gates through the engine itself, automations and runs are
created by the services, audit events by the chain writer).

Test modules import these from here, never from each other; fixtures live in conftest.py files.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from approvals.models import Gate, GateStatus
from automations import engine, services
from automations.models import Automation, NodeState, Run, RunNode, RunStatus
from automations.services import automation_create, run_start
from channels.models import ChannelConnection, ChatIdentity, WebhookEndpoint
from channels.webhooks import services as webhook_services
from governance.actors import Actor
from governance.audit import audit_record
from governance.models import (
    Membership,
    Organization,
    PrincipalKind,
    Role,
    User,
    Workspace,
    WorkspaceGroup,
)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"ws{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    kind = PrincipalKind.HUMAN
    password = factory.django.Password("pw-for-tests")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.VIEWER


def simple_flow() -> dict:
    return {
        "nodes": [
            {"node_id": "draft", "kind": "agent", "agent_id": "writer", "objective": "Draft"},
            {
                "node_id": "approval",
                "kind": "approval",
                "depends_on": ["draft"],
                "gate": {"decisions": ["approve", "rework", "cancel"], "rework_targets": ["draft"]},
            },
        ]
    }


def simple_agents() -> list[dict]:
    return [
        {
            "agent_id": "writer",
            "template_id": "template-a",
            "display_name": "Writer",
            "model_policy": {"provider": "echo", "model": "echo-1"},
        }
    ]


class AutomationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Automation

    workspace = factory.SubFactory(WorkspaceFactory)
    automation_id = factory.Sequence(lambda n: f"auto-{n}")
    name = factory.Sequence(lambda n: f"Automation {n}")
    flow = factory.LazyFunction(simple_flow)
    agents = factory.LazyFunction(simple_agents)
    execution = factory.LazyFunction(lambda: {"max_parallel": 1})
    created_by = factory.SubFactory(UserFactory)


# --- Actors --------------------------------------------------------------------------------------


def add_to_group(member, name: str) -> None:
    """Put the member in the workspace group `name` (created, and made the workspace's, if
    missing)."""
    group, _ = Group.objects.get_or_create(name=name)
    WorkspaceGroup.objects.get_or_create(group=group, defaults={"workspace": member.workspace})
    member.user.groups.add(group)


def actor_for(member) -> Actor:
    """The service-layer Actor of a `make_member` result, in the member's workspace."""
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=member.user, workspace=member.workspace
    )
    return Actor.for_member(membership)


# --- Automations ---------------------------------------------------------------------------------

AUTOMATIONS_URL = "/api/automations/v2"


def automation_body(**overrides) -> dict:
    """A valid create request for the automation API."""
    data = {"name": "Weekly report", "agents": simple_agents(), "flow": simple_flow()}
    data.update(overrides)
    return data


def create_automation(member, **overrides) -> dict:
    """Create an automation through the API as `member`; returns the response body."""
    response = member.client().post(AUTOMATIONS_URL, automation_body(**overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def new_automation(actor: Actor, automation_id: str = "weekly", **data) -> Automation:
    """The simple flow's automation, created by the service as `actor`."""
    return automation_create(
        actor=actor,
        data={
            "automation_id": automation_id,
            "name": "Weekly report",
            "agents": simple_agents(),
            "flow": simple_flow(),
            **data,
        },
    )


def queued_runs(actor: Actor, automation: Automation, count: int) -> list[Run]:
    return [run_start(actor=actor, automation=automation) for _ in range(count)]


def start_runs(member, automation_id: str, n: int) -> list[str]:
    """Start `n` runs through the service (nodes, lifecycle, audit); oldest first."""
    actor = actor_for(member)
    automation = Automation.objects.get(
        workspace=member.workspace, automation_id=automation_id, deleted_at__isnull=True
    )
    return [services.run_start(actor=actor, automation=automation).run_id for _ in range(n)]


# --- Flows ---------------------------------------------------------------------------------------

AGENTS = [
    {
        "agent_id": "agent-a",
        "template_id": "template-a",
        "display_name": "Agent A",
        "model_policy": {"provider": "echo", "model": "echo-1"},
    }
]


def agent_node(node_id, *deps, prompt=None):
    """An agent node of `AGENTS`' agent, depending on `deps`."""
    return {
        "node_id": node_id,
        "kind": "agent",
        "agent_id": "agent-a",
        "objective": f"Do {node_id}",
        "depends_on": list(deps),
        "metadata": {"builder": {"prompt": prompt or f"Write {node_id} v1"}},
    }


def approval_node(node_id="approval", *deps, rework_targets=("draft",), **gate):
    return {
        "node_id": node_id,
        "kind": "approval",
        "depends_on": list(deps),
        "objective": "Approve",
        "gate": {
            "decisions": gate.pop("decisions", ["approve", "rework", "cancel"]),
            "rework_targets": list(rework_targets),
            "instructions": "Check the review output",
            **gate,
        },
    }


# The reference's "basic" flow: draft → review → approval (rework targets [draft]).
BASIC = [
    agent_node("draft", prompt="Write draft v1"),
    agent_node("review", "draft"),
    {
        "node_id": "approval",
        "kind": "approval",
        "depends_on": ["review"],
        "objective": "Approve",
        "gate": {
            "decisions": ["approve", "rework", "cancel"],
            "rework_targets": ["draft"],
            "instructions": "Check the review output",
        },
    },
]


def basic(**gate):
    """draft → review → approval → publish, the gate configured by `gate`."""
    return [
        agent_node("draft", prompt="Write draft v1"),
        agent_node("review", "draft"),
        approval_node("approval", "review", **gate),
        agent_node("publish", "approval"),
    ]


# A gate policy only an elevated reviewer may decide.
GOVERNED = {
    "reviewer_eligibility": "elevated_reviewer",
    "risk_tier": "financial_record_access",
    "data_classes": ["financial_record"],
}


def review_flow(**gate) -> list[dict]:
    """research → draft → review (gate) → publish."""
    reworks = "rework" in gate.get("decisions", ["rework"])
    return [
        agent_node("research"),
        agent_node("draft", "research"),
        approval_node("review", "draft", rework_targets=("draft",) if reworks else (), **gate),
        agent_node("publish", "review"),
    ]


def approval_flow(*, decisions=("approve", "rework", "cancel"), expiry=None, policy=None) -> list:
    """draft → review → approval → publish, the flow of the chat card tests."""
    gate = {
        "decisions": list(decisions),
        "rework_targets": ["draft"] if "rework" in decisions else [],
        "instructions": "Check the <draft> & its review",
    }
    if expiry:
        gate["expiry"] = expiry
    if policy:
        gate["policy"] = policy
    node = {
        "node_id": "approval",
        "kind": "approval",
        "depends_on": ["draft", "review"],
        "objective": "Approve the weekly report",
        "gate": gate,
    }
    return [
        agent_node("draft"),
        agent_node("review", "draft"),
        node,
        agent_node("publish", "approval"),
    ]


# Markup an agent's output could carry: every page must show it as text, never run it.
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


# --- Runs ----------------------------------------------------------------------------------------


def output(status="completed", **extra):
    """A node output as the engine stores it."""
    return {"status": status, "summary": status, **extra}


def make_run(
    actor: Actor,
    flow=BASIC,
    *,
    status=RunStatus.PAUSED,
    nodes=None,
    automation_id="basic",
    **fields,
) -> Run:
    """A run of `flow` put directly into `status`, with `nodes` = {node_id: (state, attempts,
    output)}; the other nodes stay pending with no attempts."""
    automation = Automation.objects.filter(automation_id=automation_id).first()
    if automation is None:
        automation = automation_create(
            actor=actor,
            data={
                "automation_id": automation_id,
                "name": automation_id.title(),
                "agents": AGENTS,
                "flow": {"nodes": flow},
                "execution": {"max_parallel": 2},
            },
        )
    run = run_start(actor=actor, automation=automation)
    for node_id, (state, attempts, out) in (nodes or {}).items():
        RunNode.objects.filter(run=run, node_id=node_id).update(
            state=state, attempts=attempts, output=out
        )
    finished = status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.BLOCKED)
    Run.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now() if finished else None, **fields
    )
    return Run.objects.select_related("automation").get(pk=run.pk)


def make_running(run: Run) -> RunNode:
    """The state the engine leaves a run in while its first node executes in a worker."""
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, lease_owner="worker:1", version=F("version") + 1
    )
    RunNode.objects.filter(run=run, node_id="draft").update(
        state=NodeState.RUNNING, attempts=1, attempt_token=uuid.uuid4(), task_id=str(uuid.uuid4())
    )
    return RunNode.objects.get(run=run, node_id="draft")


def set_status(run: Run, status: str) -> None:
    Run.objects.filter(pk=run.pk).update(status=status, version=F("version") + 1)


def complete(run, *node_ids):
    """Mark `node_ids` of `run` completed (first attempt, a plain output)."""
    RunNode.objects.filter(run=run, node_id__in=node_ids).update(
        state=NodeState.COMPLETED, attempts=1, output=output()
    )


def fresh(run) -> Run:
    run = Run.objects.select_related("automation", "workspace__organization").get(pk=run.pk)
    assert run.status in RunStatus.values
    return run


# --- Gates ---------------------------------------------------------------------------------------


def gate_row(run, node_id="approval") -> Gate:
    """An open Gate row written directly (not by the engine), for run-control tests."""
    now = timezone.now()
    return Gate.objects.create(
        id=f"gate-{run.pk}-{node_id}",
        run=run,
        workspace_id=run.workspace_id,
        node_id=node_id,
        title="Approve",
        decisions=["approve", "rework", "cancel"],
        rework_targets=["draft"],
        upstream_node_ids=["review"],
        requested_at=now,
        expires_at=now + timedelta(days=7),
    )


def awaiting(actor, flow=None, *, automation_id="basic", done=("draft", "review"), attempts=1):
    """A run parked by the engine on its gate, the nodes in `done` completed."""
    run = make_run(
        actor,
        flow or basic(),
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={n: (NodeState.COMPLETED, attempts, output(summary=n)) for n in done},
    )
    engine.run_advance(run.run_id)
    return fresh(run)


def open_gate(run) -> Gate:
    """The open gate of `run`."""
    return Gate.objects.get(run=run, status=GateStatus.OPEN)


def review_gate(requester, *, automation_id="newsletter", text="Draft text for review", **gate):
    """A run started by `requester` (an Actor), parked by the engine on its `review` gate, with
    `draft`'s output carrying `text`."""
    done = NodeState.COMPLETED
    run = make_run(
        requester,
        review_flow(**gate),
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={
            "research": (done, 1, {"status": "completed", "summary": "Found three sources"}),
            "draft": (
                done,
                1,
                {"status": "completed", "summary": "Drafted the issue", "content": {"text": text}},
            ),
        },
    )
    engine.run_advance(run.run_id)
    return open_gate(run)


def card_gate(member, *, automation_id="weekly-report", **flow) -> Gate:
    """A run of `member`'s workspace parked by the engine on its gate (hooks fire on commit),
    the upstream outputs carrying the markup and line breaks a chat card must render."""
    done = NodeState.COMPLETED
    run = make_run(
        actor_for(member),
        approval_flow(**flow),
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={
            "draft": (done, 1, output(summary="Draft v1 of the *weekly* report <b>")),
            "review": (done, 1, output(content={"text": "Looks good.\nShip it."}, summary="")),
        },
    )
    engine.run_advance(run.run_id)
    return Gate.objects.select_related("run__automation", "workspace__organization").get(
        run=run, status=GateStatus.OPEN
    )


def gate_for(member, *, automation_id="weekly-report", policy=None) -> Gate:
    """A run requested by `member`, parked by the engine on its approval gate (chat tests)."""
    flow = approval_flow()
    if policy:
        flow[2]["gate"]["policy"] = policy
    done = NodeState.COMPLETED
    run = make_run(
        actor_for(member),
        flow,
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={"draft": (done, 1, output()), "review": (done, 1, output())},
    )
    engine.run_advance(run.run_id)
    return Gate.objects.select_related("run__automation", "workspace__organization").get(
        run=run, status=GateStatus.OPEN
    )


def reopen(gate: Gate) -> Gate:
    """After a rework of `gate`: the reset nodes complete again and the engine opens the next
    round of the same gate node."""
    RunNode.objects.filter(run=gate.run, node_id__in=["draft", "review"]).update(
        state=NodeState.COMPLETED, attempts=1, output=output()
    )
    engine.run_advance(gate.run.run_id)
    return Gate.objects.get(run=gate.run, status=GateStatus.OPEN)


# --- Chat ----------------------------------------------------------------------------------------


def link(member, kind: str, user_id: str, *, team_id: str = "", name: str = "") -> ChatIdentity:
    """A link `member` proved through their workspace's `kind` connection (create it first:
    without one the link is unconfirmed and decides nothing)."""
    connection = ChannelConnection.objects.filter(workspace=member.workspace, kind=kind).first()
    return ChatIdentity.objects.create(
        user=member.user,
        kind=kind,
        external_team_id=team_id,
        external_user_id=user_id,
        display_name=name,
        connection=connection,
        confirmed_at=timezone.now() if connection else None,
    )


# --- Audit ---------------------------------------------------------------------------------------


def append_events(workspace: Workspace, count: int, *, actor: Actor | None = None) -> list[int]:
    """Append `count` events in one transaction; returns their primary keys in seq order."""
    actor = actor or Actor.system(workspace)
    with transaction.atomic():
        return [
            audit_record(
                workspace=workspace,
                event_type=f"test.event_{n % 3}",
                actor=actor,
                payload={"n": n, "note": f"event {n}"},
            ).pk
            for n in range(count)
        ]


# --- Outbound webhooks ---------------------------------------------------------------------------


def webhook_endpoint(admin: Actor, url: str, *types: str, **data) -> tuple[WebhookEndpoint, str]:
    """An endpoint created by `admin` (through the service), with its secret."""
    created = webhook_services.endpoint_create(
        actor=admin, data={"url": url, "event_types": list(types), **data}
    )
    return created.endpoint, created.secret


# --- approval requests (issue 18) ----------------------------------------------------------------

REQUESTS_URL = "/api/approvals/requests"


def request_body(**overrides) -> dict:
    """A payment an agent asks to make: `amount` and `memo` editable (amount at most 500)."""
    return {
        "action": "payments.send",
        "arguments": {"amount": 100, "memo": "Invoice 42", "payee": {"iban": "DE00 1234"}},
        "summary": "Pay invoice 42",
        "context": {
            "text": "Invoice 42 from ACME, due Friday.",
            "links": [{"title": "Invoice 42", "url": "https://billing.example.com/42"}],
        },
        "editable": {
            "paths": ["amount", "memo"],
            "schema": {
                "type": "object",
                "properties": {"amount": {"type": "integer", "minimum": 1, "maximum": 500}},
                "required": ["amount"],
            },
        },
        **overrides,
    }


def ask(member, **overrides) -> dict:
    """Open an approval request as `member` over the API; its JSON."""
    response = member.client().post(REQUESTS_URL, request_body(**overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- Standing approvals --------------------------------------------------------------------------

STANDING_URL = "/api/approvals/standing"
SMALL_PAYMENTS = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "maximum": 200}},
    "required": ["amount"],
}


def grant_body(**overrides) -> dict:
    """A week's standing approval of bot-agent's `payments.send` up to 200 (`request_body`'s
    payment of 100 is covered)."""
    return {
        "action": "payments.send",
        "grantee": "bot-agent",
        "constraints": SMALL_PAYMENTS,
        "expires_at": (timezone.now() + timedelta(days=7)).isoformat(),
        "reason": "Small supplier payments this week",
        **overrides,
    }


def grant(member, **overrides):
    """Grant a standing approval as `member` over the API; the response."""
    return member.client().post(STANDING_URL, grant_body(**overrides), format="json")


def granted(member, **overrides) -> dict:
    """Grant a standing approval as `member` over the API; its JSON."""
    response = grant(member, **overrides)
    assert response.status_code == 201, response.json()
    return response.json()
