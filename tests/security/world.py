"""One workspace with a member of every role the authorisation matrix names, an automation
owned by one of them, and runs in the states the API's routes act on.

Used by the authorisation matrix (tests/security) and the API fuzzing suite
(tests/reliability), so both talk to real objects: an automation with a governed gate, a run
parked on that gate by the engine itself, a paused run with a blocked node (recover, repair and
the task operations all have their context), a queued run (pause), a grant to revoke, a chat
connection, a member's proven chat link, a delegation (the reviewer's, to the viewer), a
standing approval (the reviewer's, to the agent without a grant) and a webhook endpoint with a
delivered delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.delegation import delegation_create
from approvals.models import Gate, GateStatus
from approvals.requests import request_create
from approvals.standing import standing_create
from automations.models import Automation, NodeState, Run, RunStatus
from automations.services import automation_create, grant_add
from automations.triggers.schedules import schedule_create
from automations.triggers.webhooks import webhook_trigger_create
from channels.linking import ChatAccount, link_token
from channels.models import (
    ChannelConnection,
    ChatIdentity,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from channels.services import connection_create, identity_confirm
from channels.webhooks.services import endpoint_create
from governance.events import event_record
from governance.models import AuditEvent, PrincipalKind, Role
from tests.factories import AGENTS, actor_for, agent_node, approval_node, awaiting, make_run, output

WORKSPACE = "acme/ops"
OTHER_WORKSPACE = "globex/ops"
AUTOMATION_ID = "weekly"
# The gate needs `review_elevated`: a plain reviewer is refused, a reviewer holding an elevated
# grant (or an admin) may decide, and the run's requester (the owner) may not approve it.
GATE_POLICY = {"reviewer_eligibility": "elevated_reviewer", "risk_tier": "external_send"}
FLOW = [
    agent_node("draft", prompt="Write draft v1"),
    agent_node("review", "draft"),
    approval_node("approval", "review", policy=GATE_POLICY),
    agent_node("publish", "approval"),
]

# Every caller of the matrix: (username, workspace, role, kind); "anonymous" has no credentials.
ROLES: dict[str, tuple[str, str, str, str] | None] = {
    "anonymous": None,
    "other_workspace": ("oscar-outsider", OTHER_WORKSPACE, Role.ADMIN, PrincipalKind.HUMAN),
    "viewer": ("vera-viewer", WORKSPACE, Role.VIEWER, PrincipalKind.HUMAN),
    "operator": ("otto-operator", WORKSPACE, Role.OPERATOR, PrincipalKind.HUMAN),
    "reviewer": ("rita-reviewer", WORKSPACE, Role.REVIEWER, PrincipalKind.HUMAN),
    "elevated_reviewer": ("eli-elevated", WORKSPACE, Role.REVIEWER, PrincipalKind.HUMAN),
    "admin": ("ada-admin", WORKSPACE, Role.ADMIN, PrincipalKind.HUMAN),
    "agent_with_grant": ("bot-granted", WORKSPACE, Role.OPERATOR, PrincipalKind.AGENT),
    "agent_without_grant": ("bot-plain", WORKSPACE, Role.OPERATOR, PrincipalKind.AGENT),
    "owner": ("olga-owner", WORKSPACE, Role.OPERATOR, PrincipalKind.HUMAN),
}
# The chat side: a Slack connection of the workspace, the viewer's proven link of their Slack
# account through it, and a link page token for another Slack account of that team.
SLACK = {
    "name": "approvals",
    "channel_id": "C0FLOWGATE",
    "external_team_id": "T0001",
    "bot_token": "xoxb-world-token",
    "signing_secret": "world-signing-secret",
}
VIEWER_SLACK = ChatAccount(kind="slack", team_id="T0001", user_id="U0VIEWER", display_name="vera")
LINKED_SLACK = ChatAccount(kind="slack", team_id="T0001", user_id="U0CLICKER", display_name="who")
# Webhook endpoints target the loopback receiver the matrix allowlists (tests/security/conftest.py).
WEBHOOK_URL = "http://127.0.0.1:9/world"
# Per-automation grants that make the "with grant" roles what they are.
GRANTS = {"elevated_reviewer": "review_elevated", "agent_with_grant": "operate"}


@dataclass
class World:
    members: dict  # role name → tests.conftest.Member
    automation: Automation
    connection: ChannelConnection
    identity: ChatIdentity
    webhook: WebhookEndpoint
    delivery: WebhookDelivery
    runs: dict[str, Run] = field(default_factory=dict)
    grant_id: str = ""
    schedule_id: str = ""
    trigger_id: str = ""
    hook_token: str = ""
    request_id: str = ""
    delegation_id: str = ""
    standing_id: str = ""

    def client(self, role: str) -> APIClient:
        member = self.members.get(role)
        return member.client() if member is not None else APIClient()

    def ids(self) -> dict[str, str]:
        """Values for the `{placeholders}` of route paths."""
        return {
            "automation_id": self.automation.automation_id,
            "grant_id": self.grant_id,
            "schedule_id": self.schedule_id,
            "trigger_id": self.trigger_id,
            "token": self.hook_token,
            "connection_id": str(self.connection.pk),
            "identity_id": str(self.identity.pk),
            "webhook_id": str(self.webhook.pk),
            "delivery_id": str(self.delivery.pk),
            "request_id": self.request_id,
            "delegation_id": self.delegation_id,
            "standing_id": self.standing_id,
            **{f"{state}_run_id": run.run_id for state, run in self.runs.items()},
        }

    def session_ids(self) -> dict[str, str]:
        """Values for the placeholders of page and admin URLs (tests/security/session_table.py):
        database keys, and the open gate of the gate run."""
        gate = self.runs.get("gate")
        return {
            "automation_pk": str(self.automation.pk),
            "workspace_pk": str(self.automation.workspace_id),
            "grant_id": self.grant_id,
            "owner_user_pk": str(self.members["owner"].user.pk),
            "link_token": link_token(LINKED_SLACK, self.connection.pk),
            "audit_event_pk": str(
                AuditEvent.objects.filter(workspace=self.automation.workspace_id).latest("id").pk
            ),
            "gate_id": Gate.objects.get(run=gate, status=GateStatus.OPEN).pk if gate else "",
            "node_id": "draft",  # a node of every run of the world's flow
            **{f"{state}_run_pk": str(run.pk) for state, run in self.runs.items()},
            **{f"{state}_run_id": run.run_id for state, run in self.runs.items()},
        }


def build_world(make_member, *, runs=("queued", "paused", "gate")) -> World:
    """Members of every role, the owner's automation, its grants and the requested runs."""
    members = {
        role: make_member(path, username, role=ws_role, kind=kind)
        for role, spec in ROLES.items()
        if spec is not None
        for username, path, ws_role, kind in [spec]
    }
    owner = actor_for(members["owner"])
    automation = automation_create(
        actor=owner,
        data={
            "automation_id": AUTOMATION_ID,
            "name": "Weekly report",
            "agents": AGENTS,
            "flow": {"nodes": FLOW},
            "execution": {"max_parallel": 2},
        },
    )
    grant_ids = []
    for role, permission in GRANTS.items():  # review grants are for workspace admins to give
        row = grant_add(
            actor=actor_for(members["admin"]),
            automation=automation,
            permission=permission,
            username=members[role].user.username,
        )
        grant_ids.append(f"u{row.pk}")
    connection = connection_create(actor=actor_for(members["admin"]), kind="slack", data=SLACK)
    identity = identity_confirm(
        actor=replace(actor_for(members["viewer"]), source="page"),
        account=VIEWER_SLACK,
        connection=connection,
        token="world-link-token",
    )
    delegation = delegation_create(
        actor=actor_for(members["reviewer"]),
        delegate=members["viewer"].user.username,
        ends_at=timezone.now() + timedelta(days=7),
    )
    webhook, delivery = _webhook(actor_for(members["admin"]))
    world = World(
        members=members,
        automation=automation,
        connection=connection,
        identity=identity,
        webhook=webhook,
        delivery=delivery,
        grant_id=grant_ids[0],
        delegation_id=str(delegation.pk),
        standing_id=standing_create(
            actor=actor_for(members["reviewer"]),
            data={
                "action": "payments.send",
                "grantee": members["agent_without_grant"].user.username,
                "constraints": {"type": "object"},
                "expires_at": timezone.now() + timedelta(days=7),
                "reason": "the matrix's standing approval",
            },
        ).pk,
    )
    world.schedule_id = schedule_create(
        actor=owner, automation=automation, data={"cron": "0 9 * * mon-fri"}
    ).schedule_id
    trigger, world.hook_token = webhook_trigger_create(actor=owner, automation=automation)
    world.trigger_id = trigger.trigger_id
    makers = {
        "queued": lambda: make_run(
            owner, FLOW, status=RunStatus.QUEUED, automation_id=AUTOMATION_ID
        ),
        # draft completed, review blocked: recover, repair, retry, requeue and continue apply.
        "paused": lambda: make_run(
            owner,
            FLOW,
            status=RunStatus.PAUSED,
            automation_id=AUTOMATION_ID,
            last_failure={"node_id": "review", "reason": "blocked"},
            nodes={
                "draft": (NodeState.COMPLETED, 1, output()),
                "review": (NodeState.BLOCKED, 1, output("blocked")),
            },
        ),
        "gate": lambda: awaiting(owner, FLOW, automation_id=AUTOMATION_ID),
    }
    for state in runs:
        if state == "request":  # an approval request of the agent holding a grant
            world.request_id = request_create(
                actor=actor_for(members["agent_with_grant"]),
                data={"action": "payments.send", "arguments": {"amount": 1}, "summary": "Pay"},
            ).pk
            continue
        world.runs[state] = makers[state]()
    return world


def _webhook(admin) -> tuple[WebhookEndpoint, WebhookDelivery]:
    """An endpoint of the workspace and one delivered delivery of it (redeliverable)."""
    with override_settings(FLOWGATE_HTTP_ALLOWED_HOSTS=["127.0.0.1"]):
        endpoint = endpoint_create(
            actor=admin, data={"url": WEBHOOK_URL, "event_types": ["gate.opened"]}
        ).endpoint
    with transaction.atomic():
        event = event_record(
            workspace_id=endpoint.workspace_id, event_type="gate.opened", data={"gate_id": "-"}
        )
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event=event)
    delivery.status = DeliveryStatus.DELIVERED
    delivery.save(update_fields=["status"])
    return endpoint, delivery
