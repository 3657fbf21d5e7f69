"""The authorisation matrix: every API route by every kind of caller → the exact answer.

This table is the documentation (scripts/render_security_doc.py renders it into
docs/security.md) and the test (tests/security/test_authz_matrix.py calls every cell against
the world of tests/security/world.py and asserts status and error code). Edit it here; the doc
test fails until docs/security.md is rendered again.

Callers (columns), all but the first two members of workspace `acme/ops`:
- `anonymous`: no credentials;
- `other_workspace`: an admin of another organisation's workspace;
- `viewer`, `operator`, `reviewer`, `admin`: humans with that role;
- `elevated_reviewer`: a reviewer holding a `review_elevated` grant on the automation;
- `agent_with_grant` / `agent_without_grant`: agents with the operator role, with and without
  an `operate` grant on the automation;
- `owner`: the human operator who created the automation (and requested its runs).

A cell is `(status, code)`; `code` is the error code of a refusal, None for a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ROLES = (
    "anonymous",
    "other_workspace",
    "viewer",
    "operator",
    "reviewer",
    "elevated_reviewer",
    "admin",
    "agent_with_grant",
    "agent_without_grant",
    "owner",
)
HUMANS = {"viewer", "operator", "reviewer", "elevated_reviewer", "admin", "owner"}
AGENTS = {"agent_with_grant", "agent_without_grant"}
MEMBERS = HUMANS | AGENTS

# Error codes by short name (the rendered table uses the short names, with this legend).
CODES = {
    "ACCESS": "AUTOMATION_V2_ACCESS_DENIED",
    "AGENT": "AUTOMATION_V2_MODIFY_FORBIDDEN",
    "HUMAN": "AUTOMATION_V2_GATE_REQUIRES_HUMAN",
    "SELF": "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN",
    "AUTHORITY": "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED",
    "AUDIT": "AUDIT_ACCESS_DENIED",
    "REQUEST": "APPROVAL_REQUEST_FORBIDDEN",
    "CHANNEL": "CHANNEL_ACCESS_DENIED",
    "IDENTITY": "CHANNEL_IDENTITY_DENIED",
    "WEBHOOK": "WEBHOOK_ACCESS_DENIED",
    "INVALID": "INVALID_REQUEST",
    "AUTH": "AUTHENTICATION_REQUIRED",
    "DELEGATE_SELF": "APPROVALS_DELEGATION_TO_SELF",
    "DELEGATE_INVALID": "APPROVALS_DELEGATION_DELEGATE_INVALID",
    "DELEGATE_HUMAN": "APPROVALS_DELEGATION_REQUIRES_HUMAN",
    "STANDING_INVALID": "APPROVALS_STANDING_INVALID",
    "STANDING_HUMAN": "APPROVALS_STANDING_REQUIRES_HUMAN",
    "STANDING_REVOKE": "APPROVALS_STANDING_REVOKE_FORBIDDEN",
    "MISSING": "the route's not-found code, exactly as for an id that does not exist",
}
UNAUTHENTICATED = (401, "AUTH")
# MISSING: objects of another workspace answer exactly like missing ones, with the route's code.
NOT_FOUND_CODES = {
    "automation_id": "AUTOMATION_V2_NOT_FOUND",
    "run_id": "AUTOMATION_V2_RUN_NOT_FOUND",
    "connection_id": "CHANNEL_CONNECTION_NOT_FOUND",
    "identity_id": "CHANNEL_IDENTITY_NOT_FOUND",
    "delegation_id": "APPROVALS_DELEGATION_NOT_FOUND",
    "webhook_id": "WEBHOOK_NOT_FOUND",
    "request_id": "APPROVAL_REQUEST_NOT_FOUND",
    "standing_id": "APPROVALS_STANDING_NOT_FOUND",
}


@dataclass(frozen=True)
class Route:
    """One API operation as the matrix calls it.

    `path` has `{automation_id}`, `{grant_id}`, `{connection_id}`, `{identity_id}`,
    `{webhook_id}`, `{delivery_id}`, `{request_id}` and `{<state>_run_id}` placeholders filled
    from the world; `run` names the run state the route needs (queued, paused, gate;
    `request`: an approval request of the agent with a grant) or None.
    """

    name: str
    method: str
    path: str
    expect: dict[str, tuple[int, str | None]]
    body: dict | None = None
    run: str | None = None

    @property
    def scoped_id(self) -> str | None:
        """The placeholder that names an object of the workspace (for the existence check)."""
        if "_run_id}" in self.path:
            return "run_id"
        for name in (
            "automation_id",
            "connection_id",
            "identity_id",
            "webhook_id",
            "request_id",
            "delegation_id",
            "standing_id",
        ):
            if f"{{{name}}}" in self.path:
                return name
        return None

    @property
    def scoped_key(self) -> str | None:
        """The world's id that `scoped_id` stands for (runs: the run of the route's state)."""
        return f"{self.run}_run_id" if self.scoped_id == "run_id" else self.scoped_id


def everyone(ok: int) -> dict[str, tuple[int, str | None]]:
    """Every authenticated caller gets `ok` (reads of the caller's own workspace)."""
    return {"anonymous": UNAUTHENTICATED, **dict.fromkeys(ROLES[1:], (ok, None))}


def visible(ok: int) -> dict[str, tuple[int, str | None]]:
    """Reads of one object: every member may; another workspace sees nothing there (404)."""
    return {**everyone(ok), "other_workspace": (404, "MISSING")}


def permitted(ok: int, allowed: set[str]) -> dict[str, tuple[int, str | None]]:
    """A permission on the automation: `allowed` succeed, other humans are refused with
    ACCESS, other agents with AGENT (SPEC §6.2), another workspace gets 404."""
    cells = visible(ok)
    for role in MEMBERS - allowed:
        cells[role] = (403, "AGENT" if role in AGENTS else "ACCESS")
    return cells


def workspace_admins(
    ok: int, *, other: tuple[int, str | None] = (404, "MISSING"), refusal: str = "CHANNEL"
):
    """Chat connections and identities (SPEC §8), webhooks (`refusal="WEBHOOK"`): the
    workspace's admins only; everyone else in the workspace is refused with `refusal`; another
    workspace's admin gets `other`."""
    return {
        **everyone(ok),
        **dict.fromkeys(MEMBERS - {"admin"}, (403, refusal)),
        "other_workspace": other,
    }


OPERATE = {"operator", "admin", "owner", "agent_with_grant"}
OWNER_OR_ADMIN = {"admin", "owner"}
AUTOMATION = "/api/automations/v2/{automation_id}"
CONNECTIONS = "/api/channels/connections"
WEBHOOKS = "/api/webhooks"
IDENTITIES = "/api/channels/identities"
RUN = "/api/automations/v2/runs/{%s_run_id}"
REQUESTS = "/api/approvals/requests"
DELEGATIONS = "/api/approvals/delegations"
STANDING = "/api/approvals/standing"
# A month from when the table is loaded: inside the longest period a delegation may have.
DELEGATION_ENDS = (datetime.now(UTC) + timedelta(days=30)).isoformat()

ROUTES: list[Route] = [
    # -- automations --
    Route("list automations", "GET", "/api/automations/v2", everyone(200)),
    Route(
        "create an automation",
        "POST",
        "/api/automations/v2",
        {
            **everyone(201),  # the other workspace's admin creates one in its own workspace
            **dict.fromkeys(("viewer", "reviewer", "elevated_reviewer"), (403, "ACCESS")),
        },
        body={
            "name": "Created by the matrix",
            "agents": [{"agent_id": "writer", "template_id": "t"}],
            "flow": {"nodes": [{"node_id": "a", "kind": "agent", "agent_id": "writer"}]},
        },
    ),
    Route("read an automation", "GET", AUTOMATION, visible(200)),
    Route(
        "update an automation",
        "PATCH",
        AUTOMATION,
        permitted(200, OWNER_OR_ADMIN),
        body={"description": "edited"},
    ),
    Route("delete an automation", "DELETE", AUTOMATION, permitted(204, OWNER_OR_ADMIN)),
    Route("list grants", "GET", AUTOMATION + "/grants", permitted(200, OWNER_OR_ADMIN)),
    Route(
        "add a grant",
        "POST",
        AUTOMATION + "/grants",
        permitted(201, OWNER_OR_ADMIN),
        body={"user": "vera-viewer", "permission": "operate"},
    ),
    Route(
        "revoke a grant",
        "DELETE",
        AUTOMATION + "/grants/{grant_id}",
        permitted(204, OWNER_OR_ADMIN),
    ),
    Route("list handoffs", "GET", AUTOMATION + "/handoffs", visible(200)),
    # -- triggers: editors (change permission) manage them, members read them --
    Route("list schedules", "GET", AUTOMATION + "/schedules", visible(200)),
    Route(
        "add a schedule",
        "POST",
        AUTOMATION + "/schedules",
        permitted(201, OWNER_OR_ADMIN),
        body={"cron": "@daily", "timezone": "Europe/Berlin"},
    ),
    Route("read a schedule", "GET", AUTOMATION + "/schedules/{schedule_id}", visible(200)),
    Route(
        "change a schedule",
        "PATCH",
        AUTOMATION + "/schedules/{schedule_id}",
        permitted(200, OWNER_OR_ADMIN),
        body={"enabled": False},
    ),
    Route(
        "delete a schedule",
        "DELETE",
        AUTOMATION + "/schedules/{schedule_id}",
        permitted(204, OWNER_OR_ADMIN),
    ),
    Route("list webhook triggers", "GET", AUTOMATION + "/webhook_triggers", visible(200)),
    Route(
        "add a webhook trigger",
        "POST",
        AUTOMATION + "/webhook_triggers",
        permitted(201, OWNER_OR_ADMIN),
        body={"name": "CRM"},
    ),
    Route(
        "read a webhook trigger",
        "GET",
        AUTOMATION + "/webhook_triggers/{trigger_id}",
        visible(200),
    ),
    Route(
        "rotate a webhook trigger",
        "POST",
        AUTOMATION + "/webhook_triggers/{trigger_id}/rotate",
        permitted(200, OWNER_OR_ADMIN),
    ),
    Route(
        "revoke a webhook trigger",
        "DELETE",
        AUTOMATION + "/webhook_triggers/{trigger_id}",
        permitted(204, OWNER_OR_ADMIN),
    ),
    # The secret URL is the credential: whoever holds it starts a run, signed in or not.
    Route(
        "start a run from a webhook",
        "POST",
        "/api/hooks/{token}",
        dict.fromkeys(ROLES, (202, None)),
        body={"ticket": 42},
    ),
    Route("pause an automation", "POST", AUTOMATION + "/pause", permitted(200, OPERATE)),
    Route("resume an automation", "POST", AUTOMATION + "/resume", permitted(200, OPERATE)),
    Route("start a run", "POST", AUTOMATION + "/run_now", permitted(201, OPERATE)),
    Route("list an automation's runs", "GET", AUTOMATION + "/runs", visible(200)),
    # -- runs --
    Route("list runs", "GET", "/api/automations/v2/runs", everyone(200)),
    Route("read a run", "GET", RUN % "paused", visible(200), run="paused"),
    Route("pause a run", "POST", RUN % "queued" + "/pause", permitted(200, OPERATE), run="queued"),
    Route(
        "resume a run", "POST", RUN % "paused" + "/resume", permitted(200, OPERATE), run="paused"
    ),
    Route(
        "cancel a run", "POST", RUN % "paused" + "/cancel", permitted(200, OPERATE), run="paused"
    ),
    Route(
        "recover a run",
        "POST",
        RUN % "paused" + "/recover",
        permitted(200, OPERATE),
        run="paused",
    ),
    Route(
        "repair a run",
        "POST",
        RUN % "paused" + "/repair",
        permitted(200, OPERATE),
        body={"node_id": "review", "prompt": "Review again"},
        run="paused",
    ),
    *[
        Route(
            f"{verb} a task",
            "POST",
            RUN % "paused" + f"/tasks/review/{verb}",
            permitted(200, OPERATE),
            run="paused",
        )
        for verb in ("retry", "requeue", "continue")
    ],
    Route(
        "preview a task reset",
        "GET",
        RUN % "paused" + "/tasks/review/reset_preview",
        visible(200),
        run="paused",
    ),
    Route(
        "decide a gate (approve)",
        "POST",
        RUN % "gate" + "/gate",
        {
            **visible(200),
            "viewer": (403, "ACCESS"),
            "operator": (403, "ACCESS"),
            "reviewer": (403, "AUTHORITY"),  # the gate needs review_elevated
            "owner": (403, "SELF"),  # the owner requested the run: no self-approval
            "agent_with_grant": (403, "HUMAN"),
            "agent_without_grant": (403, "HUMAN"),
        },
        body={"decision": "approve"},
        run="gate",
    ),
    # -- approvals and audit --
    Route("list pending approvals", "GET", "/api/approvals/pending", everyone(200)),
    Route("list delegations", "GET", DELEGATIONS, everyone(200)),
    Route(
        "delegate review authority",
        "POST",
        DELEGATIONS,
        {
            **everyone(201),
            # The other workspace's admin, in its own workspace, names nobody of theirs.
            "other_workspace": (400, "DELEGATE_INVALID"),
            "elevated_reviewer": (400, "DELEGATE_SELF"),  # the body names them
            **dict.fromkeys(AGENTS, (403, "DELEGATE_HUMAN")),
        },
        body={"delegate": "eli-elevated", "ends_at": DELEGATION_ENDS},
    ),
    Route(
        "revoke a delegation",
        "DELETE",
        DELEGATIONS + "/{delegation_id}",
        {
            # The world's delegation is the reviewer's to the viewer: they and the workspace's
            # admins see it and may revoke it; nobody else sees it.
            **dict.fromkeys(ROLES, (404, "MISSING")),
            "anonymous": UNAUTHENTICATED,
            **dict.fromkeys(("reviewer", "viewer", "admin"), (204, None)),
        },
    ),
    *[
        Route(
            name,
            "GET",
            path,
            {
                **everyone(200),  # the other workspace's admin reads its own workspace's trail
                **dict.fromkeys(MEMBERS - {"admin"}, (403, "AUDIT")),
            },
        )
        for name, path in (
            ("list audit events", "/api/audit/events"),
            ("verify the audit chain", "/api/audit/verify"),
        )
    ],
    # -- approval requests (docs/agents.md); the world's request is the agent with a grant's --
    Route("list approval requests", "GET", REQUESTS, everyone(200)),
    Route(
        "ask for an approval",
        "POST",
        REQUESTS,
        {
            **everyone(201),  # the other workspace's admin asks in its own workspace
            **dict.fromkeys(("viewer", "reviewer", "elevated_reviewer"), (403, "REQUEST")),
        },
        body={"action": "payments.send", "arguments": {"amount": 1}, "summary": "Pay"},
    ),
    Route(
        "read an approval request",
        "GET",
        REQUESTS + "/{request_id}",
        {
            **visible(200),
            # Agents and humans without the reviewer or admin role see only their own.
            **dict.fromkeys(
                ("viewer", "operator", "owner", "agent_without_grant"), (404, "MISSING")
            ),
        },
        run="request",
    ),
    Route(
        "decide an approval request (approve)",
        "POST",
        REQUESTS + "/{request_id}/decide",
        {
            **visible(200),
            **dict.fromkeys(
                ("viewer", "operator", "owner", "agent_without_grant"), (404, "MISSING")
            ),
            "agent_with_grant": (403, "HUMAN"),  # its own request: only humans decide
            "admin": (403, "SELF"),  # granted the agent its operate grant: accountable for it
        },
        body={"decision": "approve"},
        run="request",
    ),
    # -- standing approvals (docs/agents.md); the world's is the reviewer's to the plain agent --
    Route("list standing approvals", "GET", STANDING, everyone(200)),
    Route(
        "grant a standing approval",
        "POST",
        STANDING,
        {
            **everyone(201),
            # The other workspace's admin, in its own workspace, names nobody of theirs.
            "other_workspace": (400, "STANDING_INVALID"),
            **dict.fromkeys(("viewer", "operator", "owner"), (403, "ACCESS")),
            **dict.fromkeys(AGENTS, (403, "STANDING_HUMAN")),
        },
        body={
            "action": "payments.send",
            "grantee": "bot-plain",
            "constraints": {"type": "object"},
            "expires_at": DELEGATION_ENDS,
            "reason": "matrix",
        },
    ),
    Route(
        "read a standing approval",
        "GET",
        STANDING + "/{standing_id}",
        {
            **dict.fromkeys(ROLES, (404, "MISSING")),
            "anonymous": UNAUTHENTICATED,
            # Reviewers and admins see every one; an agent sees those granted to it.
            **dict.fromkeys(
                ("reviewer", "elevated_reviewer", "admin", "agent_without_grant"), (200, None)
            ),
        },
    ),
    Route(
        "revoke a standing approval",
        "POST",
        STANDING + "/{standing_id}/revoke",
        {
            **dict.fromkeys(ROLES, (404, "MISSING")),
            "anonymous": UNAUTHENTICATED,
            # Its grantor and the workspace's admins revoke; others who see it may not.
            **dict.fromkeys(("reviewer", "admin"), (200, None)),
            **dict.fromkeys(("elevated_reviewer", "agent_without_grant"), (403, "STANDING_REVOKE")),
        },
    ),
    # -- chat connections and identities --
    Route("list chat connections", "GET", CONNECTIONS, workspace_admins(200, other=(200, None))),
    Route(
        "create a chat connection",
        "POST",
        CONNECTIONS,
        workspace_admins(201, other=(201, None)),  # the outsider's admin, in its own workspace
        body={
            "kind": "telegram",
            "name": "matrix",
            "channel_id": "-100123",
            "bot_token": "123:matrix-token",
            "signing_secret": "matrix-secret",
        },
    ),
    Route("read a chat connection", "GET", CONNECTIONS + "/{connection_id}", workspace_admins(200)),
    Route(
        "update a chat connection",
        "PATCH",
        CONNECTIONS + "/{connection_id}",
        workspace_admins(200),
        body={"name": "renamed"},
    ),
    Route(
        "delete a chat connection",
        "DELETE",
        CONNECTIONS + "/{connection_id}",
        workspace_admins(204),
    ),
    Route("list chat identities", "GET", IDENTITIES, workspace_admins(200, other=(200, None))),
    Route(
        "link a chat account (unconfirmed)",
        "POST",
        IDENTITIES,
        # Not a member of the outsider's workspace: the same 400 as for a name that exists nowhere.
        workspace_admins(201, other=(400, "INVALID")),
        body={"user": "rita-reviewer", "kind": "discord", "external_user_id": "555000111"},
    ),
    Route(
        "unlink a chat account (the viewer's own)",
        "DELETE",
        IDENTITIES + "/{identity_id}",
        {
            **visible(204),
            **dict.fromkeys(MEMBERS - {"admin", "viewer"}, (403, "IDENTITY")),
        },
    ),
    # -- outbound webhooks and the event feed --
    Route(
        "list webhook endpoints",
        "GET",
        WEBHOOKS,
        workspace_admins(200, other=(200, None), refusal="WEBHOOK"),
    ),
    Route(
        "create a webhook endpoint",
        "POST",
        WEBHOOKS,
        workspace_admins(201, other=(201, None), refusal="WEBHOOK"),
        body={"url": "http://127.0.0.1:9/matrix", "event_types": ["gate.opened"]},
    ),
    Route(
        "read a webhook endpoint",
        "GET",
        WEBHOOKS + "/{webhook_id}",
        workspace_admins(200, refusal="WEBHOOK"),
    ),
    Route(
        "update a webhook endpoint",
        "PATCH",
        WEBHOOKS + "/{webhook_id}",
        workspace_admins(200, refusal="WEBHOOK"),
        body={"description": "renamed"},
    ),
    Route(
        "delete a webhook endpoint",
        "DELETE",
        WEBHOOKS + "/{webhook_id}",
        workspace_admins(204, refusal="WEBHOOK"),
    ),
    Route(
        "list a webhook endpoint's deliveries",
        "GET",
        WEBHOOKS + "/{webhook_id}/deliveries",
        workspace_admins(200, refusal="WEBHOOK"),
    ),
    Route(
        "redeliver a delivered webhook",
        "POST",
        WEBHOOKS + "/{webhook_id}/deliveries/{delivery_id}/redeliver",
        workspace_admins(201, refusal="WEBHOOK"),
    ),
    Route("follow the event feed", "GET", "/api/events", everyone(200)),
    # -- schema and docs (public to members, like the API itself) --
    Route("OpenAPI schema", "GET", "/api/schema/", dict.fromkeys(ROLES, (200, None))),
]
