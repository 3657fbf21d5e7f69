"""The authorisation matrix of the signed-in surfaces: the approval pages and the admin console.

Same callers and the same world as the API matrix (tests/security/authz_table.py), rendered
below it in docs/security.md, executed by tests/security/test_session_matrix.py. What a caller
is for a browser session:

- `anonymous`: not signed in: every page and admin URL redirects (302) to its login page
  (`/accounts/login/` or `/admin/login/`) with `next` naming the URL asked for. **LOGIN**
- agents (`agent_with_grant`, `agent_without_grant`): cannot sign in. The password login refuses
  them (`governance.backends.HumanModelBackend`, even with a correct password), and a session
  made for one anyway is read as no one, so they get the anonymous answer. **SIGNIN**
- the humans sign in with their password. In the admin console all of them are staff
  (`is_staff`, not superuser): that is the product's model (`governance.admin_scope`), where
  staff status only opens the console and the member's workspaces and role decide what they see
  and may do, through the same services as the API. (A human who is not staff is sent to the
  admin login: tested once per admin row, not a column.) The agents are made staff too, so it
  is the sign-in rule, not the staff flag, that keeps them out.

A cell is `(status, outcome)`:
- **DONE**: the action happened. A page answers 302 to the gate page; the admin answers 302 to
  the object or list page, which shows a success message and no error.
- a refusal code (ACCESS, SELF, AUTHORITY, as in the API matrix): a page answers 403 with that
  error; the admin answers 302 back to its page, which shows the refusal as an error message,
  and the denial is audited with that code, as for the API.
- **MISSING**: 404, exactly the answer for an id that does not exist.
- **NOTHING**: a changelist action on an object of another workspace: the admin filters the
  selection by the user's workspaces first, so the action finds nothing to act on (302, no
  message, nothing changes), exactly as for an id that does not exist.
- **FORBIDDEN**: 403, the console's page is not shown to the member's role (audit events are
  for workspace admins, like `GET /api/audit/events`).
- **LINKED**: the link page linked the chat account to the signed-in user (200).
- **NOT_MEMBER**: the link page refuses a user outside the link's workspace (403).
- None: a page shown (200).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.security.authz_table import AGENTS, HUMANS, ROLES

SIGNED_OUT = {"anonymous": (302, "LOGIN"), **dict.fromkeys(AGENTS, (302, "SIGNIN"))}
OUTCOMES = {
    "LOGIN": "redirect to the login page, `next` naming the URL",
    "SIGNIN": "an agent cannot sign in (password login refused, a forged session is no one): "
    "the anonymous answer",
    "DONE": "the action happened (pages: redirect to the gate page; admin: redirect to a "
    "page with a success message)",
    "ACCESS, AUTHORITY, SELF": "refused by the service with the API's code (see above): a "
    "page answers 403 with it, the admin redirects with an error message; the denial is audited "
    "with that code",
    "MISSING": "404, exactly the answer for an id that does not exist",
    "NOTHING": "admin action on another workspace's object: nothing selected, no success or "
    "error message, nothing written, as for an id that does not exist",
    "FORBIDDEN": "403: the console page is not for this role",
    "LINKED": "the chat account of the link is now linked to the signed-in user, proven through "
    "the connection the link came from",
    "NOT_MEMBER": "the link's connection belongs to a workspace the user is not a member of: "
    "403, nothing linked",
}
ADMIN_LOGIN = "/admin/login/"
PAGE_LOGIN = "/accounts/login/"


@dataclass(frozen=True)
class SessionRoute:
    """One page or admin request.

    `path` and the values of `body` may hold the world's placeholders: `{gate_id}` (the open
    gate of the gate run), `{automation_pk}`, `{<state>_run_pk}`, `{<state>_run_id}`, `{grant_id}`,
    `{workspace_pk}`, `{audit_event_pk}` (the workspace's newest), `{owner_user_pk}`,
    `{link_token}` (a link page token for a chat account, through the world's connection). `scoped`
    names the placeholder whose object the existence check swaps for one that does not exist.
    """

    name: str
    method: str
    path: str
    expect: dict[str, tuple[int, str | None]]
    body: dict | None = None
    run: str | None = None
    scoped: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/admin/")

    @property
    def login_url(self) -> str:
        return ADMIN_LOGIN if self.is_admin else PAGE_LOGIN


def members_see(ok: int = 200, other: tuple[int, str | None] = (404, "MISSING")):
    """Every signed-in human gets `ok`; another workspace's admin gets `other`."""
    return {**SIGNED_OUT, **dict.fromkeys(HUMANS, (ok, None)), "other_workspace": other}


def operate(allowed: set[str], other: tuple[int, str | None] = (404, "MISSING")):
    """An admin action guarded by a permission on the automation: `allowed` humans succeed,
    the other humans are refused by the service (ACCESS, audited)."""
    cells = members_see(302, other)
    for role in HUMANS:
        cells[role] = (302, "DONE" if role in allowed else "ACCESS")
    return cells


OPERATE = {"operator", "admin", "owner"}
OWNER_OR_ADMIN = {"admin", "owner"}
RUNS = "/admin/automations/run/"
AUTOMATIONS = "/admin/automations/automation/"
GATE_PAGE = "/approvals/{gate_id}/"
ADMIN_GATE = "/admin/approvals/gate/{gate_id}/"
LINK_PAGE = "/channels/link/{link_token}/"
# Gate decisions: who may approve the world's elevated gate (the same rules as the API).
DECIDE = {
    "viewer": "ACCESS",
    "operator": "ACCESS",
    "reviewer": "AUTHORITY",  # the gate needs review_elevated
    "owner": "SELF",  # the owner requested the run
    "elevated_reviewer": "DONE",
    "admin": "DONE",
}
RUN_ACTIONS = {"pause": "queued", "resume": "paused", "cancel": "paused", "recover": "paused"}
AUTOMATION_ACTIONS = ("pause", "resume", "run_now")


def _spec_form(**fields) -> dict:
    """The automation spec form's "Save": a one-node spec as its JSON boxes (braces doubled:
    the bodies go through `str.format` for the placeholders)."""
    boxes = {
        "agents": [{"agent_id": "writer", "template_id": "t"}],
        "flow": {"nodes": [{"node_id": "a", "kind": "agent", "agent_id": "writer"}]},
        "execution": {"max_parallel": 2},
    }
    return {
        "name": "Weekly report",
        "description": "edited in the console",
        "status": "active",
        "input_schema": "",
        **{k: json.dumps(v).replace("{", "{{").replace("}", "}}") for k, v in boxes.items()},
        "_save": "Save",
        **fields,
    }


def _bulk(action: str, pk: str) -> dict:
    """The changelist's action bar posting `action` for one selected object."""
    return {"action": action, "index": "0", "_selected_action": pk}


SESSION_ROUTES: list[SessionRoute] = [
    # -- approval pages --
    SessionRoute(
        "pending approvals page",
        "GET",
        "/approvals/",
        members_see(other=(200, None)),  # the outsider sees its own (empty) list
    ),
    SessionRoute("gate page", "GET", GATE_PAGE, members_see(), run="gate", scoped="gate_id"),
    SessionRoute(
        "gate status (the page's live updates)",
        "GET",
        GATE_PAGE + "status/",
        members_see(),
        run="gate",
        scoped="gate_id",
    ),
    SessionRoute(
        "decide on the gate page (approve)",
        "POST",
        GATE_PAGE,
        {
            **members_see(),
            **{
                role: (302, "DONE") if outcome == "DONE" else (403, outcome)
                for role, outcome in DECIDE.items()
            },
        },
        body={"decision": "approve", "reason": "", "approval_request_id": "{gate_id}"},
        run="gate",
        scoped="gate_id",
    ),
    # -- the chat account link page (the token: see the note in docs/security.md) --
    SessionRoute(
        "chat link page",
        "GET",
        LINK_PAGE,
        {**members_see(other=(403, "NOT_MEMBER"))},
    ),
    SessionRoute(
        "confirm a chat link (link page)",
        "POST",
        LINK_PAGE,
        {**members_see(200, other=(403, "NOT_MEMBER")), **dict.fromkeys(HUMANS, (200, "LINKED"))},
        body={"password": "pw-for-tests"},  # the link page asks for the password again
    ),
    # -- admin console: runs --
    SessionRoute("run list", "GET", RUNS, members_see(other=(200, None))),
    SessionRoute("run list, live cells", "GET", RUNS + "live/", members_see(other=(200, None))),
    SessionRoute(
        "run page (by run id)",
        "GET",
        RUNS + "{paused_run_id}/change/",
        members_see(),
        run="paused",
        scoped="paused_run_id",
    ),
    SessionRoute(
        "run page, live parts",
        "GET",
        RUNS + "{paused_run_id}/live/",
        members_see(),
        run="paused",
        scoped="paused_run_id",
    ),
    SessionRoute(
        "repair page of a node (form and reset preview)",
        "GET",
        RUNS + "{paused_run_id}/repair/{node_id}/",
        members_see(),
        run="paused",
        scoped="paused_run_id",
    ),
    *[
        SessionRoute(
            f"{verb} a run (run page button, confirmed)",
            "POST",
            RUNS + f"{{{state}_run_id}}/act/",
            operate(OPERATE),
            body={"action": verb, "confirmed": "yes"},
            run=state,
            scoped=f"{state}_run_id",
        )
        for verb, state in RUN_ACTIONS.items()
    ],
    *[
        SessionRoute(
            f"{verb} a node (run page node button, confirmed)",
            "POST",
            RUNS + "{paused_run_id}/act/",
            operate(OPERATE),
            body={"action": verb, "node_id": "draft", "confirmed": "yes"},
            run="paused",
            scoped="paused_run_id",
        )
        for verb in ("retry", "requeue")
    ],
    SessionRoute(
        "repair a node (repair page)",
        "POST",
        RUNS + "{paused_run_id}/repair/{node_id}/",
        operate(OPERATE),
        body={"reason": "fix"},
        run="paused",
        scoped="paused_run_id",
    ),
    *[
        SessionRoute(
            f"{verb} runs (run list action, confirmed)",
            "POST",
            RUNS,
            operate(OPERATE, other=(302, "NOTHING")),
            body={**_bulk(verb, f"{{{state}_run_pk}}"), "confirmed": "yes"},
            run=state,
            scoped=f"{state}_run_pk",
        )
        for verb, state in RUN_ACTIONS.items()
    ],
    # -- admin console: automations --
    SessionRoute(
        "automation page",
        "GET",
        AUTOMATIONS + "{automation_pk}/change/",
        members_see(),
        scoped="automation_pk",
    ),
    *[
        SessionRoute(
            f"{verb.replace('_', ' ')} an automation (automation page button)",
            "POST",
            AUTOMATIONS + "{automation_pk}/act/",
            operate(OPERATE),
            body={"action": verb},
            scoped="automation_pk",
        )
        for verb in AUTOMATION_ACTIONS
    ],
    *[
        SessionRoute(
            f"{verb.replace('_', ' ')} automations (automation list action)",
            "POST",
            AUTOMATIONS,
            operate(OPERATE, other=(302, "NOTHING")),
            body=_bulk(verb, "{automation_pk}"),
            scoped="automation_pk",
        )
        for verb in AUTOMATION_ACTIONS
    ],
    SessionRoute(
        "automation edit page",
        "GET",
        AUTOMATIONS + "{automation_pk}/edit/",
        members_see(),
        scoped="automation_pk",
    ),
    SessionRoute(
        "save an automation (edit page)",
        "POST",
        AUTOMATIONS + "{automation_pk}/edit/",
        operate(OWNER_OR_ADMIN),
        body=_spec_form(),
        scoped="automation_pk",
    ),
    SessionRoute(
        "add an automation page",
        "GET",
        AUTOMATIONS + "add/",
        members_see(other=(200, None)),  # the outsider's form offers its own workspace
    ),
    SessionRoute(
        "create an automation (add page)",
        "POST",
        AUTOMATIONS + "add/",
        {
            **operate({"operator", "admin", "owner"}),
            # Another workspace is not among the form's choices: the form says so (200).
            "other_workspace": (200, None),
        },
        body=_spec_form(workspace="{workspace_pk}"),
    ),
    SessionRoute(
        "add a grant (automation page)",
        "POST",
        AUTOMATIONS + "{automation_pk}/grants/",
        operate(OWNER_OR_ADMIN),
        body={"principal": "user", "grantee": "vera-viewer", "permission": "operate"},
        scoped="automation_pk",
    ),
    SessionRoute(
        "revoke a grant (automation page)",
        "POST",
        AUTOMATIONS + "{automation_pk}/grants/",
        operate(OWNER_OR_ADMIN),
        body={"revoke": "{grant_id}"},
        scoped="automation_pk",
    ),
    SessionRoute(
        "add a schedule (automation page)",
        "POST",
        AUTOMATIONS + "{automation_pk}/schedules/",
        operate(OWNER_OR_ADMIN),
        body={"cron": "@daily", "timezone": "UTC", "inputs": ""},
        scoped="automation_pk",
    ),
    SessionRoute(
        "add a webhook trigger (automation page)",
        "POST",
        AUTOMATIONS + "{automation_pk}/webhook_triggers/",
        operate(OWNER_OR_ADMIN),
        body={"trigger_name": "CRM"},
        scoped="automation_pk",
    ),
    # -- admin console: gates and audit --
    SessionRoute(
        "gate page (admin)",
        "GET",
        ADMIN_GATE + "change/",
        members_see(),
        run="gate",
        scoped="gate_id",
    ),
    SessionRoute(
        "decide a gate (admin, approve)",
        "POST",
        ADMIN_GATE + "decide/",
        {**members_see(), **{role: (302, outcome) for role, outcome in DECIDE.items()}},
        body={"decision": "approve", "reason": ""},
        run="gate",
        scoped="gate_id",
    ),
    SessionRoute(
        "audit event list",
        "GET",
        "/admin/governance/auditevent/",
        {
            **members_see(other=(200, None)),  # the outsider, an admin, sees its own events
            **dict.fromkeys(HUMANS - {"admin"}, (403, "FORBIDDEN")),
        },
    ),
    SessionRoute(
        "verify audit chains (admin button)",
        "POST",
        "/admin/governance/auditevent/verify/",
        {
            **members_see(),
            **dict.fromkeys(HUMANS - {"admin"}, (403, "FORBIDDEN")),
            "admin": (302, "DONE"),
            "other_workspace": (302, "NOTHING"),  # "No audit chain to verify", as for no id
        },
        body={"workspace": "{workspace_pk}"},
        scoped="workspace_pk",
    ),
    SessionRoute(
        "verify audit chains (audit list action)",
        "POST",
        "/admin/governance/auditevent/",
        {
            **members_see(),
            **dict.fromkeys(HUMANS - {"admin"}, (403, "FORBIDDEN")),
            "admin": (302, "DONE"),
            "other_workspace": (302, "NOTHING"),
        },
        body=_bulk("verify_chains", "{audit_event_pk}"),
        scoped="audit_event_pk",
    ),
    # -- admin console: users (deployment-wide, superusers only) --
    SessionRoute(
        "set a user's password (user admin)",
        "POST",
        "/admin/governance/user/{owner_user_pk}/password/",
        {
            **members_see(),
            **dict.fromkeys(HUMANS | {"other_workspace"}, (403, "FORBIDDEN")),
        },
        body={"password1": "Xy9-new-password", "password2": "Xy9-new-password"},
        scoped="owner_user_pk",
    ),
]

assert all(set(route.expect) == set(ROLES) for route in SESSION_ROUTES), "a cell is missing"
