"""Approval gates (one row per opening of an approval node) and their decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from automations.models import Run
from governance.models import Workspace


class GateStatus(models.TextChoices):
    OPEN = "open", "Open"
    DECIDED = "decided", "Decided"
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Superseded"


class Gate(models.Model):
    """One opening of an approval node in a run; `id` is the `approval_request_id` everywhere.

    A rework, repair or reset that reaches the gate again opens a new row (next `round`), so a
    decision of an earlier opening can never settle a later one.
    """

    id = models.CharField(max_length=64, primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="gates")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="gates")
    node_id = models.CharField(max_length=128)
    round = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=GateStatus.choices, default=GateStatus.OPEN)
    title = models.CharField(max_length=300)
    instructions = models.TextField(blank=True)
    decisions = models.JSONField(default=list)
    rework_targets = models.JSONField(default=list)
    upstream_node_ids = models.JSONField(default=list)
    policy = models.JSONField(default=dict)
    expiry_policy = models.JSONField(default=dict)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gates_requested",
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reviewed_digest = models.CharField(max_length=64, blank=True)
    # What this opening asks the reviewer to judge, as it was when it opened (kept after a
    # rework clears the outputs): `upstream_outputs` and the `downstream_plan` an approval
    # covers. `reviewed_digest` is the SHA-256 of its canonical JSON.
    reviewed = models.JSONField(default=dict, blank=True)
    reminder_count = models.PositiveIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.JSONField(default=list, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Judged when the gate opens (`approvals.reviewers`): no member but the run's accountable
    # humans could approve it, so it will wait until it expires unless someone is granted.
    lacks_independent_reviewer = models.BooleanField(default=False)
    # The opening's quorum progress (`approvals.quorum.Quorum.progress`), written under the
    # gate's lock with each approval; {} for a gate without a quorum.
    quorum = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "node_id", "round"], name="one_gate_per_round")
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "expires_at"], name="gate_ws_status_exp"),
            models.Index(fields=["status", "expires_at"], name="gate_status_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.node_id}#{self.round}"

    @property
    def transition_id(self) -> str:
        return f"{self.id}:decision"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REWORK = "rework", "Rework"
    CANCEL = "cancel", "Cancel"
    EXPIRED = "expired", "Expired"
    GUARD_DENIED = "guard_denied", "Transition guard denied"


# Decisions a human may submit; `expired` comes from the sweep, `guard_denied` is a record only.
HUMAN_DECISIONS = ("approve", "rework", "cancel")


class Surface(models.TextChoices):
    API = "api", "API"
    PAGE = "page", "Approval page"
    ADMIN = "admin", "Admin"
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"
    TELEGRAM = "telegram", "Telegram"
    SYSTEM = "system", "System"
    # Approved in advance by a human's standing approval (`approvals.standing`).
    STANDING = "standing", "Standing approval"


class GateDecision(models.Model):
    """An entry of a gate's history. At most one *settling* entry per gate (a DB constraint), so
    of two concurrent decisions on one opening exactly one can commit; `guard_denied` entries are
    recorded but settle nothing, and so are the approvals of a quorum gate that do not complete
    it (`approvals.quorum`). One approval per person per opening: the person counted is
    `on_behalf_of` when a delegate decided (`approvals.delegation`), else `decided_by`, and one
    human approves an opening at most once whoever they act for."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="decision_records")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="gate_decisions")
    node_id = models.CharField(max_length=128)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    settles = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gate_decisions",
    )
    # The delegator whose review authority `decided_by` used (a delegation), else null.
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gate_decisions_delegated",
    )
    decider_kind = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Surface.choices)
    reviewed_digest = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["gate"],
                condition=models.Q(settles=True),
                name="one_settling_decision_per_gate",
            ),
            # A guard denial is a record only: it must never take the gate's one settling slot;
            # an approval settles unless a quorum still needs more; every other entry settles.
            models.CheckConstraint(
                condition=models.Q(decision="guard_denied", settles=False)
                | models.Q(decision="approve")
                | (~models.Q(decision="guard_denied") & models.Q(settles=True)),
                name="only_denials_and_approvals_unsettling",
            ),
            models.UniqueConstraint(
                Coalesce("on_behalf_of", "decided_by"),
                "gate",
                condition=models.Q(decision="approve"),
                name="one_approval_per_person_per_gate",
            ),
            models.UniqueConstraint(
                fields=["gate", "decided_by"],
                condition=models.Q(decision="approve"),
                name="one_approval_per_approver_per_gate",
            ),
        ]
        indexes = [models.Index(fields=["run", "decided_at", "id"], name="decision_run_at")]
        ordering = ["decided_at", "id"]

    def __str__(self) -> str:
        return f"{self.gate_id} {self.decision}"


class ApprovalRequest(models.Model):
    """An approval a principal (usually an agent built elsewhere) asked for over the API.

    It is decided like any gate: it is backed by a run of the workspace's approval-requests
    automation (`approvals.requests`) parked on the one gate opened for it, so the decision
    service, policy, audit, pages, pending list, chat cards and expiry are the gates' own. This
    row keeps what a gate does not: the action and its proposed arguments, what a reviewer may
    edit and the answer form, and — written by `gate_decide` in the decision's transaction —
    the arguments approved, the diff from the proposed ones and the validated answer. Its status
    is the gate's (`approvals.request_json.request_status`), never a second copy.
    """

    id = models.CharField(max_length=64, primary_key=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="approval_requests"
    )
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="approval_request")
    gate = models.OneToOneField(Gate, on_delete=models.CASCADE, related_name="approval_request")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="approval_requests",
    )
    action = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict)
    summary = models.CharField(max_length=300)
    context = models.JSONField(default=dict, blank=True)
    # As submitted, `rules` included (the gate holds the policy of the proposed arguments).
    policy = models.JSONField(default=dict, blank=True)
    response_schema = models.JSONField(null=True, blank=True)
    editable = models.JSONField(null=True, blank=True)
    decision = models.OneToOneField(
        GateDecision,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="approval_request",
    )
    approved_arguments = models.JSONField(null=True, blank=True)
    diff = models.JSONField(default=list, blank=True)
    response = models.JSONField(null=True, blank=True)
    # The standing approval that approved it when it was made (`approvals.standing`).
    standing_approval = models.ForeignKey(
        "StandingApproval",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="uses",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="request_ws_created"),
            models.Index(
                fields=["workspace", "requested_by", "-created_at", "-id"],
                name="request_ws_requester",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.action}"


class Delegation(models.Model):
    """`delegator` lends their review authority to `delegate` in one workspace from `starts_at`
    until `ends_at` (out of office), unless revoked first (`approvals.delegation`).

    The delegate decides with the delegator's permissions and clearances only where the delegate
    also passes separation of duties; a delegate's own delegations are never followed."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="delegations")
    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Set by the beat sweep when it audited the delegation's end (`delegation_expired`), once.
    expiry_audited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(delegator=models.F("delegate")), name="delegation_not_to_self"
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="delegation_ends_after_start",
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "delegate", "ends_at"], name="delegation_ws_delegate"
            ),
            models.Index(fields=["ends_at", "expiry_audited_at"], name="delegation_expiry"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delegator} → {self.delegate} until {self.ends_at:%Y-%m-%d %H:%M}"

    def active(self, now) -> bool:
        return self.revoked_at is None and self.starts_at <= now < self.ends_at


class StandingApproval(models.Model):
    """`granted_by` approves in advance, until `expires_at` (unless revoked first), the requests
    `grantee` makes for `action` whose arguments satisfy `constraints` (a JSON Schema) and whose
    policy `policy` covers, at most `max_uses` times (`approvals.standing`).

    Each use is a decision by the grantor on the request's gate, through the decision service
    (so every rule is judged again at that moment), with the surface `standing`; the request
    names the grant (`ApprovalRequest.standing_approval`) and `use_count` counts them, updated
    under the row's lock so a limit holds across concurrent requests."""

    id = models.CharField(max_length=64, primary_key=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="standing_approvals"
    )
    action = models.CharField(max_length=200)
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="standing_approvals"
    )
    constraints = models.JSONField(default=dict)
    # The policy it approves at most: `reviewer_eligibility`, `risk_tier`, `data_classes`.
    policy = models.JSONField(default=dict)
    reason = models.CharField(max_length=500)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(granted_by=models.F("grantee")),
                name="standing_approval_not_to_self",
            ),
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True)
                | models.Q(use_count__lte=models.F("max_uses")),
                name="standing_approval_within_max_uses",
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "grantee", "action", "expires_at"],
                name="standing_ws_grantee_action",
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} for {self.grantee} until {self.expires_at:%Y-%m-%d %H:%M}"

    def active(self, now) -> bool:
        return (
            self.revoked_at is None
            and now < self.expires_at
            and (self.max_uses is None or self.use_count < self.max_uses)
        )
