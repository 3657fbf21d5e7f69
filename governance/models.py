"""Tenancy (organisations, workspaces, memberships), principals and tokens, and the audit chain."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class PrincipalKind(models.TextChoices):
    HUMAN = "human", "Human"
    AGENT = "agent", "Agent"
    SERVICE = "service", "Service"


class User(AbstractUser):
    """Every principal is a user with a kind; agents and services authenticate only by token."""

    kind = models.CharField(
        max_length=16, choices=PrincipalKind.choices, default=PrincipalKind.HUMAN
    )
    # Created by `manage.py seed_demo`, whose published passwords it may reset: the command
    # never touches a user without this mark.
    demo_account = models.BooleanField(default=False)

    @property
    def is_human(self) -> bool:
        return self.kind == PrincipalKind.HUMAN


class Organization(models.Model):
    """A customer of the deployment; owns workspaces and nothing else."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


# Data classes a gate may declare; a reviewer needs one clearance per class on the gate.
DATA_CLASSES = (
    "public",
    "internal",
    "confidential",
    "restricted",
    "executive",
    "credential",
    "regulated",
    "customer_data",
    "source_code",
    "financial_record",
)


def clearance_codename(data_class: str) -> str:
    return f"review_{data_class}"


class Workspace(models.Model):
    """The tenant boundary: every automation, run, gate, audit event and connection has one."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="workspaces"
    )
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="workspace_slug_per_org")
        ]
        permissions = [
            (clearance_codename(c), f"Review gates with {c.replace('_', ' ')} data")
            for c in DATA_CLASSES
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def path(self) -> str:
        """`<org-slug>/<workspace-slug>`, the form used by `X-Workspace` and the commands."""
        return f"{self.organization.slug}/{self.slug}"


class WorkspaceUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table for per-workspace clearances granted to users."""

    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE)


class WorkspaceGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE)


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    """A user's role in one workspace; without one the workspace does not exist for them."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace"], name="one_membership_per_workspace"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.workspace} ({self.role})"


class WorkspaceGroup(models.Model):
    """Makes a Django auth group one workspace's own.

    Group names are unique across the deployment; grants (`POST …/grants {"group": …}`) look a
    group up only among the caller's workspace groups, so another tenant's group can neither be
    granted to nor detected. A group without this row cannot be named in a grant at all.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="groups")
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="workspace_link")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.group.name} @ {self.workspace}"


class ApiToken(models.Model):
    """A bearer token bound to one workspace. Only a SHA-256 digest of the secret is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a token.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditChainHead(models.Model):
    """The tail of one workspace's audit chain; locked FOR UPDATE to append (O(1) per event)."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.PROTECT, primary_key=True, related_name="audit_head"
    )
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace_id}@{self.seq}"


class AuditEvent(models.Model):
    """One link of a workspace's hash chain; a trigger refuses UPDATE, DELETE and TRUNCATE."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="audit_events")
    seq = models.BigIntegerField()
    event_type = models.CharField(max_length=100)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_seq_unique_per_chain")
        ]
        indexes = [
            models.Index(fields=["workspace", "event_type", "seq"], name="audit_ws_type_seq"),
            models.Index(fields=["workspace", "created_at"], name="audit_ws_created"),
        ]
        ordering = ["workspace_id", "seq"]

    def __str__(self) -> str:
        return f"{self.workspace_id}#{self.seq} {self.event_type}"


class IdempotencyRecord(models.Model):
    """The first response to a request sent with an `Idempotency-Key` (governance.idempotency).

    One row per workspace, principal and key: the unique constraint is what makes two
    concurrent requests with the same key produce one effect. `status_code` is null while the
    first request is still being answered.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    principal = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "principal", "key"], name="idempotency_key_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.principal}: {self.key}"


class WorkspaceEvent(models.Model):
    """One domain event of a workspace (a run or gate changed, …), for the event feed and the
    outbound webhooks (`governance.events`).

    Written in the transaction of the change it describes, so it exists exactly when the change
    committed. `seq` is its position in the workspace's feed: null when written, stamped right
    after the commit by `events_stamp`, which numbers committed events 1, 2, 3, … under the
    workspace's `WorkspaceEventHead` lock. Numbering at commit (not at insert, as an id
    sequence would) is what lets a feed reader that saw seq n never miss a later-committing n-1.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=40, unique=True)
    seq = models.BigIntegerField(null=True, blank=True)
    event_type = models.CharField(max_length=100)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="event_seq_unique_per_ws")
        ]
        indexes = [
            # The stamper and its sweep look for unstamped events only.
            models.Index(
                fields=["workspace", "id"],
                condition=models.Q(seq__isnull=True),
                name="event_unstamped",
            ),
            # Retention (`events_forget`) deletes the oldest first.
            models.Index(fields=["created_at"], name="event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}#{self.seq} {self.event_type}"


class WorkspaceEventHead(models.Model):
    """The last feed position stamped in a workspace; locked to stamp (see `WorkspaceEvent`).

    `forgotten_seq` is the highest position retention has deleted (`events_forget`): events at
    or below it may be gone, every event after it is still there. A feed cursor below it is
    expired (410), since the events it would read next may be missing.
    """

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    seq = models.BigIntegerField(default=0)
    forgotten_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.workspace_id}@{self.seq}"
