"""The run JSON written down as serializers, for the OpenAPI schema only.

`automations.api.run_json.run_json` produces the JSON; these classes never render anything.
They exist so clients (and the schemathesis suite in tests/reliability) can hold every run
response to a precise shape: which keys are always present, which may be null, and the type
of each. Free-form parts (node outputs, gate policies, lifecycle metadata, `last_failure`)
stay objects without a fixed shape, because node kinds and policies define them.
"""

from __future__ import annotations

from rest_framework import serializers

from automations.models import RunStatus, TriggerType


def node_ids(**kwargs) -> serializers.ListField:
    """A list of node ids. A new field per use: DRF binds a field instance to one name, so a
    shared instance would be documented under one name only (and with the wrong title)."""
    return serializers.ListField(child=serializers.CharField(), **kwargs)


def _nullable_ms() -> serializers.IntegerField:
    return serializers.IntegerField(allow_null=True)


def _nullable_text() -> serializers.CharField:
    return serializers.CharField(allow_null=True)


class DecidedBySchema(serializers.Serializer):
    kind = serializers.CharField(help_text="human | agent | service | system")
    actor_id = serializers.CharField(allow_null=True)
    source = serializers.CharField(
        help_text="api | page | admin | slack | discord | telegram | system"
    )


class GateDecisionSchema(serializers.Serializer):
    """One entry of `checkpoint.gate_history`."""

    node_id = serializers.CharField()
    approval_request_id = serializers.CharField()
    round = serializers.IntegerField()
    decision = serializers.CharField()
    reason = _nullable_text()
    decided_at_ms = _nullable_ms()
    decided_by = DecidedBySchema()
    on_behalf_of = serializers.CharField(
        allow_null=True,
        help_text="The delegator whose review authority the decider used, else null.",
    )
    settles = serializers.BooleanField(
        help_text=(
            "False for an approval that counted towards the gate's quorum without completing it "
            "(and for a refused transition-guard entry)."
        )
    )
    reviewed_digest = _nullable_text()


class QuorumApprovalSchema(serializers.Serializer):
    approver = serializers.CharField()
    on_behalf_of = serializers.CharField(allow_null=True)
    groups = serializers.ListField(
        child=serializers.CharField(), help_text="The quorum's groups the approval counted for."
    )


class QuorumGroupProgressSchema(serializers.Serializer):
    group = serializers.CharField()
    required = serializers.IntegerField()
    approvals = serializers.IntegerField()


class QuorumProgressSchema(serializers.Serializer):
    """How far a gate with a quorum (`policy.quorum`) got in this opening."""

    required_approvals = serializers.IntegerField()
    approvals = serializers.IntegerField()
    groups = QuorumGroupProgressSchema(many=True)
    approved_by = QuorumApprovalSchema(many=True)
    met = serializers.BooleanField()
    summary = serializers.CharField(help_text='e.g. "1 of 2 approvals (finance: 0 of 1)"')


class AwaitingGateSchema(serializers.Serializer):
    """`checkpoint.awaiting_gate`: the open gate of a run `awaiting_approval`."""

    node_id = serializers.CharField()
    approval_request_id = serializers.CharField(help_text="The gate id (decide with it).")
    transition_id = serializers.CharField()
    round = serializers.IntegerField()
    title = serializers.CharField()
    instructions = serializers.CharField()
    decisions = serializers.ListField(child=serializers.CharField())
    rework_targets = node_ids()
    upstream_node_ids = node_ids()
    policy = serializers.DictField()
    expiry_policy = serializers.DictField()
    reviewed_digest = serializers.CharField()
    requested_at_ms = _nullable_ms()
    expires_at_ms = _nullable_ms()
    approval_url = serializers.CharField()
    quorum = QuorumProgressSchema(
        allow_null=True, help_text="The opening's approvals so far; null without a quorum."
    )


class LifecycleEventSchema(serializers.Serializer):
    event = serializers.CharField()
    recorded_at_ms = _nullable_ms()
    reason = _nullable_text()
    stop_kind = _nullable_text()
    metadata = serializers.JSONField()


class CheckpointSchema(serializers.Serializer):
    completed_nodes = node_ids()
    pending_nodes = node_ids()
    running_nodes = node_ids()
    failed_nodes = node_ids()
    blocked_nodes = node_ids()
    node_outputs = serializers.DictField(child=serializers.JSONField())
    node_attempts = serializers.DictField(child=serializers.IntegerField())
    # Reviewer feedback of the reworks that sent a node back (gate, round, reason, decider).
    node_feedback = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField())
    )
    awaiting_gate = AwaitingGateSchema(allow_null=True)
    gate_history = GateDecisionSchema(many=True)
    lifecycle_history = LifecycleEventSchema(many=True)
    last_failure = serializers.JSONField(allow_null=True)


class RunSchema(serializers.Serializer):
    """A run, as `GET /api/automations/v2/runs/{run_id}` and every run response render it."""

    run_id = serializers.CharField()
    automation_id = serializers.CharField()
    workspace = serializers.CharField(help_text="`<org>/<workspace>`")
    status = serializers.ChoiceField(choices=RunStatus.choices)
    trigger_type = serializers.ChoiceField(
        choices=TriggerType.choices,
        help_text="What started the run: `run_now`, a schedule or an inbound webhook.",
    )
    inputs = serializers.DictField(
        child=serializers.JSONField(), help_text="What the run was started with (`run_now`)."
    )
    requested_by = _nullable_text()
    created_at_ms = serializers.IntegerField()
    updated_at_ms = serializers.IntegerField()
    started_at_ms = _nullable_ms()
    finished_at_ms = _nullable_ms()
    pause_reason = _nullable_text()
    resume_reason = _nullable_text()
    detail = _nullable_text()
    stop_kind = _nullable_text()
    stop_reason = _nullable_text()
    version = serializers.IntegerField()
    automation_version = serializers.IntegerField(allow_null=True)
    checkpoint = CheckpointSchema()
    blockedNodeIDs = node_ids()  # the original's key


def run_schema_field(**kwargs) -> RunSchema:
    """A `run` field for response serializers (each use needs its own field instance)."""
    return RunSchema(help_text="The run JSON.", **kwargs)
