"""Automations (flow specs), their runs, per-node run state and the run lifecycle history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from governance.models import Workspace


class AutomationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DRAFT = "draft", "Draft"


class Automation(models.Model):
    """A versioned DAG spec. `automation_id` is the client-facing id, unique per workspace.

    Deleting an automation is a soft delete (`deleted_at`): its runs, gates and audit trail keep
    pointing at it, and the id becomes free for a new automation.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="automations")
    automation_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=AutomationStatus.choices, default=AutomationStatus.ACTIVE
    )
    flow = models.JSONField(default=dict)
    agents = models.JSONField(default=list)
    execution = models.JSONField(default=dict)
    workspace_root = models.CharField(max_length=1024, blank=True)
    handoff_config = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # A JSON Schema (Draft 2020-12) the inputs of `run_now` must satisfy; null: any object.
    input_schema = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="automations_created"
    )
    # Who made the change that produced the current `version` (an update or a run repair);
    # runs snapshot it, so the author of the version a run executes cannot approve its gates.
    # Null only for versions changed before this was recorded.
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="automations_changed",
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "automation_id"],
                condition=models.Q(deleted_at__isnull=True),
                name="automation_id_unique_per_workspace",
            )
        ]
        indexes = [models.Index(fields=["workspace", "-created_at", "-id"], name="auto_ws_created")]
        permissions = [
            ("operate_automation", "Operate runs of the automation"),
            ("review_automation", "Decide approval gates of the automation"),
            ("review_elevated_automation", "Decide elevated approval gates of the automation"),
        ]

    def __str__(self) -> str:
        return self.automation_id


class AutomationUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table: per-automation grants to users.

    `granted_by` is who granted it (the first grantor when granted again): the humans who let
    an agent run an automation are accountable for its runs (`approvals.policy`).
    """

    content_object = models.ForeignKey(Automation, on_delete=models.CASCADE)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )


class AutomationGroupObjectPermission(GroupObjectPermissionBase):
    """Direct-FK guardian table: per-automation grants to groups (`granted_by` as above)."""

    content_object = models.ForeignKey(Automation, on_delete=models.CASCADE)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSING = "pausing", "Pausing"
    PAUSED = "paused", "Paused"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    COMPLETED = "completed", "Completed"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Runs in these states have `finished_at` set; `blocked` is still recoverable and cancellable.
TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.BLOCKED, RunStatus.FAILED, RunStatus.CANCELLED}
)
# Runs a person has to look at: stopped by a failure or a block, paused, or waiting for a
# decision (the landing page lists them).
ATTENTION_STATUSES = frozenset(
    {RunStatus.FAILED, RunStatus.BLOCKED, RunStatus.PAUSED, RunStatus.AWAITING_APPROVAL}
)
# Runs the engine may be executing (or about to): repair and task resets are refused here.
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSING})


class StopKind(models.TextChoices):
    CANCELLED = "cancelled", "Cancelled"
    OPERATOR_STOPPED = "operator_stopped", "Operator stopped"
    GUARDRAIL_STOPPED = "guardrail_stopped", "Guardrail stopped"
    STALE_REAPED = "stale_reaped", "Stale reaped"
    SERVER_RESTART = "server_restart", "Server restart"
    PANIC = "panic", "Panic"
    SHUTDOWN = "shutdown", "Shutdown"
    # Held by an automation-level pause (automations.automation_control); the automation's
    # resume with `resume_runs` resumes exactly the runs still carrying it.
    AUTOMATION_PAUSED = "automation_paused", "Automation paused"


class TriggerType(models.TextChoices):
    """What started a run: a person or agent (`run_now`), a schedule, an inbound webhook, or an
    agent's approval request."""

    MANUAL = "manual", "Manual"
    SCHEDULE = "schedule", "Schedule"
    WEBHOOK = "webhook", "Webhook"
    # An agent's approval request (`approvals.requests`) runs as a one-gate run.
    APPROVAL_REQUEST = "approval_request", "Approval request"


class Run(models.Model):
    """One execution of an automation's snapshot. `version` increments on every state change.

    Lease fields let one worker own execution at a time; `heartbeat_at` feeds the stale sweep.
    """

    run_id = models.CharField(max_length=64, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="runs")
    automation = models.ForeignKey(Automation, on_delete=models.PROTECT, related_name="runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs_requested",
    )
    trigger_type = models.CharField(
        max_length=32, choices=TriggerType.choices, default=TriggerType.MANUAL
    )
    # The schedule or webhook trigger that started the run (`Schedule.schedule_id`,
    # `WebhookTrigger.trigger_id`); blank for manual runs. Kept as text so the run still names
    # it after the trigger is deleted.
    trigger_id = models.CharField(max_length=64, blank=True)
    # The fire time a schedule started the run for: unique per schedule, so a fire time can
    # never start two runs whatever number of beat processes and workers race for it.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    # When an agent or service requests the run: the users (pks, as strings) who granted it the
    # right to run this automation, read at start so a later revocation does not clear them.
    requester_grantors = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.QUEUED)
    automation_snapshot = models.JSONField(default=dict)
    # The snapshot's run-wide settings the engine needs on every node step, copied from it
    # whenever it is written (`automations.run_nodes`), so no step reads the whole snapshot.
    max_parallel = models.PositiveIntegerField(default=1)
    workspace_root = models.CharField(max_length=1024, blank=True)
    # What the run was started with (`run_now {"inputs": …}`): shown to agents, HTTP nodes and
    # reviewers.
    inputs = models.JSONField(default=dict, blank=True)
    pause_reason = models.TextField(blank=True)
    resume_reason = models.TextField(blank=True)
    detail = models.TextField(blank=True)
    stop_kind = models.CharField(max_length=32, choices=StopKind.choices, blank=True)
    stop_reason = models.TextField(blank=True)
    last_failure = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_epoch = models.PositiveIntegerField(default=0)
    # Last sign of life while running; while waiting on a retry backoff it holds the time the
    # run will next wake up, so the stale sweep only reaps runs that missed their own deadline.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="run_ws_created"),
            models.Index(fields=["automation", "-created_at", "-id"], name="run_auto_created"),
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
            models.Index(
                fields=["workspace", "status", "-created_at", "-id"], name="run_ws_status_created"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger_id", "scheduled_for"],
                condition=models.Q(scheduled_for__isnull=False),
                name="one_run_per_schedule_fire",
            )
        ]

    def __str__(self) -> str:
        return self.run_id


class NodeState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class RunNode(models.Model):
    """Execution state of one flow node in one run.

    `attempt_token` fences results: a node task's result is accepted only while the node still
    holds the token the task was started with (pause, cancel, repair and reset replace it).

    `position`, `kind`, `spec` and `agent` are the node's part of the run's snapshot, written
    with the snapshot (`automations.run_nodes`): a node step reads its own row, never the whole
    snapshot. `deps_done` says every dependency is completed or skipped; the engine keeps it
    exact while the run is running (set for the whole run on each advance message, the claim
    among them, then for the dependents of each node that completes), so the nodes ready to
    start are found by index.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=128)
    position = models.PositiveIntegerField(default=0)  # in the flow's order
    kind = models.CharField(max_length=64, blank=True)  # `approval` for every gate node
    spec = models.JSONField(default=dict, blank=True)
    agent = models.JSONField(null=True, blank=True)
    deps_done = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=NodeState.choices, default=NodeState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    output = models.JSONField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempt_token = models.UUIDField(null=True, blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Retry backoff: the node is not started before this."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the running attempt got one of its workspace's slots (published, or claimed by the
    # worker executing it); empty while the attempt is held back by the workspace's cap
    # (automations.fairness).
    admitted_at = models.DateTimeField(null=True, blank=True)
    # The running attempt's node `timeout_s`, the soft time limit of its task when admitted.
    time_limit_s = models.FloatField(null=True, blank=True)
    # Reviewer feedback for the node's next attempts: one entry per rework that sent it back
    # (`gate_id`, `gate_node_id`, `round`, `reason`, `decided_by`), oldest first. Agent nodes
    # give it to their model, so the next draft can answer it.
    feedback = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "node_id"], name="one_node_row_per_run_node")
        ]
        indexes = [
            models.Index(
                fields=["attempt_token"],
                condition=models.Q(attempt_token__isnull=False),
                name="runnode_attempt_token",
            ),
            # Running nodes, failed and blocked ones, in flow order.
            models.Index(fields=["run", "state", "position"], name="runnode_run_state"),
            # The nodes ready to start (or to open their gate), in flow order.
            models.Index(
                fields=["run", "position"],
                condition=models.Q(state="pending", deps_done=True),
                name="runnode_ready",
            ),
            # Live attempts (admission counts and picks them per workspace).
            models.Index(
                fields=["run"],
                condition=models.Q(state="running"),
                name="runnode_running",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.node_id}"


class RunEdge(models.Model):
    """One `depends_on` entry of a run's flow: `node` waits for `upstream` (two rows of one run).

    Written with the node rows; when a node completes, the engine finds the nodes it may release
    (`upstream` = it) and checks their other dependencies through these rows, in one UPDATE.
    """

    node = models.ForeignKey(RunNode, on_delete=models.CASCADE, related_name="upstream_edges")
    upstream = models.ForeignKey(RunNode, on_delete=models.CASCADE, related_name="downstream_edges")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "upstream"], name="one_run_edge_per_pair")
        ]

    def __str__(self) -> str:
        return f"{self.upstream_id}->{self.node_id}"


class LifecycleEvent(models.Model):
    """Append-only history of a run (`run_paused`, `node_started`, `approval_gate_opened`, …)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="lifecycle_events")
    event = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    stop_kind = models.CharField(max_length=32, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "at", "id"], name="lifecycle_run_at")]
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.run_id} {self.event}"


class SweepMark(models.Model):
    """When a beat sweep last completed, by task name: the proof that beat is alive.

    Kept in the database every web process and worker already shares (not in one process's
    memory), so `/readyz` can fail when beat has stopped and `/metrics` can report the sweep lag.
    """

    name = models.CharField(max_length=64, primary_key=True)
    completed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.completed_at:%Y-%m-%d %H:%M:%S}"


class Schedule(models.Model):
    """A cron expression in a time zone that starts runs of an automation (`trigger_type`
    `schedule`) with fixed `inputs`.

    `next_fire_at` is the one piece of state beat works from: the periodic task claims due rows
    with `SELECT … FOR UPDATE SKIP LOCKED`, starts the run for that fire time and moves
    `next_fire_at` on in the same transaction (`automations.triggers.schedules`). Null while the
    schedule is disabled.
    """

    schedule_id = models.CharField(max_length=64, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="schedules")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="schedules")
    cron = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    inputs = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_run_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="schedules_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_fire_at"],
                condition=models.Q(enabled=True),
                name="schedule_due",
            ),
            models.Index(fields=["automation", "-created_at", "-id"], name="schedule_auto_created"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} ({self.cron} {self.timezone})"


class WebhookTrigger(models.Model):
    """An inbound webhook that starts runs of an automation (`trigger_type` `webhook`): whoever
    holds its secret URL (`POST /api/hooks/<token>`) may start one, with the JSON body as inputs.

    Only the token's SHA-256 digest is stored (the token has 256 bits of entropy, as API tokens
    do); it is shown once, when created or rotated. A revoked trigger stays as evidence the
    audit trail and its runs point at.
    """

    trigger_id = models.CharField(max_length=64, unique=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="webhook_triggers"
    )
    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="webhook_triggers"
    )
    name = models.CharField(max_length=200, blank=True)
    token_digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="webhook_triggers_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["automation", "-created_at", "-id"], name="hook_auto_created")
        ]

    def __str__(self) -> str:
        return self.trigger_id
