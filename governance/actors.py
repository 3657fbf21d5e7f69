"""Who is acting: the principal, its kind, its workspace and role, and the surface used.

Every service takes an `Actor`; it is built only from authenticated credentials (API token,
session, linked chat account) or stands for the system itself (Celery sweeps).
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.models import Membership, PrincipalKind, Role, User, Workspace

SYSTEM = "system"
# A schedule or an inbound webhook starting a run on its own: not a principal, but the trigger
# an editor of the automation set up (`automations.triggers`).
TRIGGER = "trigger"


@dataclass(frozen=True)
class Actor:
    kind: str  # human | agent | service | system | trigger
    workspace: Workspace
    user: User | None = None
    role: str | None = None
    # api | page | admin | slack | discord | telegram | system:<name> | schedule:<id> | webhook:<id>
    source: str = "api"

    @classmethod
    def for_member(cls, membership: Membership, *, source: str = "api") -> Actor:
        return cls(
            kind=membership.user.kind,
            workspace=membership.workspace,
            user=membership.user,
            role=membership.role,
            source=source,
        )

    @classmethod
    def for_admin(cls, user: User, workspace: Workspace) -> Actor:
        """A staff user acting from the admin console on `workspace`: their membership decides;
        a superuser who is not a member acts as a workspace admin."""
        membership = (
            Membership.objects.select_related("user", "workspace__organization")
            .filter(user=user, workspace=workspace)
            .first()
        )
        if membership is not None:
            return cls.for_member(membership, source="admin")
        role = Role.ADMIN if user.is_superuser else None
        return cls(kind=user.kind, workspace=workspace, user=user, role=role, source="admin")

    @classmethod
    def system(cls, workspace: Workspace, name: str = "flowgate") -> Actor:
        return cls(kind=SYSTEM, workspace=workspace, user=None, role=None, source=f"system:{name}")

    @classmethod
    def trigger(cls, workspace: Workspace, source: str) -> Actor:
        """A trigger acting on its own (`schedule:<schedule_id>`, `webhook:<trigger_id>`); it
        holds no permission itself: the editor who set it up was authorised then."""
        return cls(kind=TRIGGER, workspace=workspace, user=None, role=None, source=source)

    @property
    def actor_id(self) -> str:
        return self.user.username if self.user is not None else self.source

    @property
    def is_human(self) -> bool:
        return self.kind == PrincipalKind.HUMAN

    @property
    def is_agent(self) -> bool:
        return self.kind == PrincipalKind.AGENT

    @property
    def is_workspace_admin(self) -> bool:
        """A human holding the admin role. An agent's admin role gives it no admin powers (it
        gets `view` from its role and the rest only by owning or being granted, SPEC §6.2)."""
        return self.is_human and self.role == Role.ADMIN

    def describe(self) -> dict[str, str]:
        """The actor as recorded in audit payloads and decision records."""
        return {"kind": self.kind, "actor_id": self.actor_id, "source": self.source}
