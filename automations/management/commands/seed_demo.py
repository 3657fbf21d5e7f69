"""`manage.py seed_demo [--force]` — a demo organisation to click through; safe to run again.

Creates `demo/main` with an owner (workspace admin and Django superuser), a staff operator who
is not a superuser (the admin console as most staff see it), a reviewer with clearances, an
agent, and a demo automation with an approval gate.

The demo users' API tokens stay the same across runs (so the tokens printed by one
`./flowgate run` keep working after a restart): the database stores only their digests, so the
raw tokens are kept in `FLOWGATE_DEMO_TOKENS_FILE` (`var/demo-tokens.json`, mode 0600, like
`var/dev-secrets.json`). A stored token is reused while it is still an active demo token of that
user in the demo workspace; otherwise (first run, revoked, another database) the user's demo
tokens are revoked and a new one is issued and stored.

The demo users have well-known passwords and one is a superuser, so the command refuses to run
unless `DEBUG` is on (the embedded default) or `--force` is given. It only ever changes users it
created itself (`User.demo_account`): when a user with a demo username exists that it did not
create, it refuses before writing anything, `--force` or not, so it can never reset a real
account's password or make it a superuser.
"""

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from automations.models import Automation
from automations.services import automation_create, run_start
from governance.actors import Actor
from governance.models import ApiToken, Membership, PrincipalKind, Role, User
from governance.services import member_add, token_issue, token_revoke, workspace_create
from governance.tokens import token_digest

WORKSPACE = "demo/main"
TOKEN_NAME = "demo"
USERS = [
    # username, role, kind, password, clearances
    ("owner", Role.ADMIN, PrincipalKind.HUMAN, "flowgate-owner", ["internal"]),
    (
        "reviewer",
        Role.REVIEWER,
        PrincipalKind.HUMAN,
        "flowgate-reviewer",
        ["internal", "financial_record"],
    ),
    ("operator", Role.OPERATOR, PrincipalKind.HUMAN, "flowgate-operator", ["internal"]),
    ("agent", Role.OPERATOR, PrincipalKind.AGENT, None, []),
]
# Django admin flags of the demo users: the owner is a superuser, the operator staff only.
SUPERUSERS = frozenset({"owner"})
STAFF = frozenset({"owner", "operator"})
DEMO_AUTOMATION = {
    "automation_id": "demo-weekly-report",
    "name": "Weekly report",
    "description": "Drafts the weekly finance report, asks a reviewer, then publishes it.",
    "agents": [
        {
            "agent_id": "writer",
            "template_id": "report-template",
            "display_name": "Writer",
            "model_policy": {"provider": "echo", "model": "echo-1"},
        },
    ],
    "flow": {
        "nodes": [
            {
                "node_id": "draft",
                "kind": "agent",
                "agent_id": "writer",
                "objective": "Write the weekly report",
                "metadata": {"builder": {"prompt": "Summarise this week's revenue and costs."}},
                "retry": {"max_attempts": 2, "backoff_s": 1},
            },
            {
                "node_id": "approval",
                "kind": "approval",
                "depends_on": ["draft"],
                "objective": "Approve the weekly report",
                "gate": {
                    "decisions": ["approve", "rework", "cancel"],
                    "rework_targets": ["draft"],
                    "instructions": "Check the figures before the report goes out.",
                    "policy": {
                        "reviewer_eligibility": "any_human_reviewer",
                        "risk_tier": "external_send",
                        "data_classes": ["financial_record"],
                    },
                    "expiry": {"expires_after_s": 604800, "on_expiry": "cancel"},
                },
            },
            {
                "node_id": "publish",
                "kind": "agent",
                "agent_id": "writer",
                "depends_on": ["approval"],
                "objective": "Publish the approved report",
            },
        ]
    },
    "execution": {"max_parallel": 1},
}


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo workspace, users, tokens and automation. Refused unless "
        "DEBUG is on or --force is given: the demo logins have published passwords."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even though DEBUG is off (never on a deployment others can reach).",
        )

    def handle(self, *args, force=False, **options):
        if not (settings.DEBUG or force):
            raise CommandError(
                "seed_demo creates a superuser with a published password; it runs only with "
                "DEBUG on (the embedded default) or with --force"
            )
        self._seed()

    @transaction.atomic
    def _seed(self):
        names = [username for username, *_ in USERS]
        foreign = sorted(
            User.objects.filter(username__in=names, demo_account=False).values_list(
                "username", flat=True
            )
        )
        if foreign:
            raise CommandError(
                f"seed_demo would take over existing user(s) {', '.join(foreign)}, which it did "
                "not create; they are left untouched (also with --force). Seed the demo into "
                "another database, or rename those users first."
            )
        workspace, _ = workspace_create(path=WORKSPACE, name="Demo")
        stored = _read_tokens()
        tokens = {}
        for username, role, kind, password, clearances in USERS:
            result = member_add(
                workspace=workspace,
                username=username,
                role=role,
                kind=kind,
                password=password,
                clearances=clearances,
            )
            result.user.demo_account = True
            result.user.is_staff = username in STAFF
            result.user.is_superuser = username in SUPERUSERS
            result.user.save(update_fields=["demo_account", "is_staff", "is_superuser"])
            tokens[username] = _demo_token(result.user, workspace, stored.get(username))
        owner = Actor.for_member(
            Membership.objects.select_related("user", "workspace__organization").get(
                workspace=workspace, user__username="owner"
            )
        )
        automation = Automation.objects.filter(
            workspace=workspace,
            deleted_at__isnull=True,
            automation_id=DEMO_AUTOMATION["automation_id"],
        ).first() or automation_create(actor=owner, data=DEMO_AUTOMATION)
        # One demo run, started by the owner: the worker takes it to the approval gate, where
        # the reviewer (not the owner: self-approval is refused) decides.
        if not automation.runs.exists():
            run = run_start(actor=owner, automation=automation)
            self.stdout.write(f"Started demo run {run.run_id}; it stops at its approval gate.")
        # Written inside the transaction: if the file cannot be written, nothing is committed
        # and the next run starts from the same state.
        _write_tokens(tokens)
        self._print(tokens)

    def _print(self, tokens: dict[str, str]) -> None:
        base = settings.FLOWGATE_PUBLIC_URL.rstrip("/")
        w = self.stdout.write
        w(f"Demo workspace {WORKSPACE} is ready.")
        w(f"  Admin console:  {base}/admin/")
        w(f"  API docs:       {base}/api/docs/")
        w(f"  Health:         {base}/healthz")
        w("  Logins (password):")
        for username, _, _, password, _ in USERS:
            if password:
                w(f"    {username:<9} {password}")
        w("  API tokens (Authorization: Bearer <token>):")
        for username, token in tokens.items():
            w(f"    {username:<9} {token}")
        w(f"  Demo automation: {DEMO_AUTOMATION['automation_id']}")


def _demo_token(user: User, workspace, raw: str | None) -> str:
    """`raw` if it is still an active demo token of `user` in `workspace`; else revoke the
    user's demo tokens and issue a new one."""
    demo_tokens = ApiToken.objects.filter(
        user=user, workspace=workspace, name=TOKEN_NAME, revoked_at__isnull=True
    )
    if raw and demo_tokens.filter(digest=token_digest(raw)).exists():
        return raw
    for old in demo_tokens:
        token_revoke(token=old)
    return token_issue(user=user, workspace=workspace, name=TOKEN_NAME)[1]


def _tokens_path() -> Path:
    return Path(settings.FLOWGATE_DEMO_TOKENS_FILE)


def _read_tokens() -> dict[str, str]:
    """The stored raw demo tokens by username; empty when missing or unreadable."""
    try:
        data = json.loads(_tokens_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write_tokens(tokens: dict[str, str]) -> None:
    """Replace the token file atomically, readable by this user only."""
    path = _tokens_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(tokens, handle)
    os.replace(temporary, path)
