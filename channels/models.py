"""Chat connections, chat identities, the card message map and interaction receipts; outbound
webhook endpoints and their deliveries."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from approvals.models import Gate
from channels.fields import EncryptedTextField
from governance.models import Workspace, WorkspaceEvent


class ChannelKind(models.TextChoices):
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"
    TELEGRAM = "telegram", "Telegram"


class Assurance(models.TextChoices):
    """Who could forge a request a connection verifies, and so what its clicks may decide
    (docs/security.md, "Chat decision assurance")."""

    PLATFORM = "platform", "Platform: only the chat platform or the deployment's operator can sign"
    WORKSPACE = "workspace", "Workspace: a workspace admin holds the secret that verifies"


class ChannelConnection(models.Model):
    """Where a workspace's approval cards go, and the secrets to post and verify clicks.

    Slack: bot token, signing secret, channel id, team id. Discord: bot token, application public
    key, channel id, guild id. Telegram: bot token, webhook secret, chat id. Secrets are encrypted
    at rest and never rendered back. A Slack connection without a signing secret of its own is
    verified with the deployment's Slack app (`FLOWGATE_SLACK_SIGNING_SECRET`).

    `secret_digest` is a keyed digest of the signing/webhook secret (`channels.secrets`): it
    lets a save refuse a secret another workspace's connection uses without comparing secrets
    in clear.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="channel_connections"
    )
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    channel_id = models.CharField(max_length=128, help_text="Slack/Discord channel, Telegram chat.")
    external_team_id = models.CharField(
        max_length=128, blank=True, help_text="Slack team id or Discord guild id."
    )
    application_id = models.CharField(max_length=128, blank=True)
    public_key = models.CharField(max_length=128, blank=True, help_text="Discord public key.")
    bot_token = EncryptedTextField(blank=True)
    signing_secret = EncryptedTextField(
        blank=True, help_text="Slack signing secret or Telegram webhook secret."
    )
    secret_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "name"], name="connection_name_per_workspace_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def uses_deployment_app(self) -> bool:
        """A Slack connection verified with the deployment's signing secret, not its own."""
        return self.kind == ChannelKind.SLACK and not self.signing_secret

    @property
    def verifying_secret(self) -> str:
        """The HMAC secret that verifies this connection's Slack/Telegram requests ("" if none)."""
        if self.uses_deployment_app:
            return settings.FLOWGATE_SLACK_SIGNING_SECRET
        return self.signing_secret or ""

    @property
    def assurance(self) -> str:
        """`platform` when no workspace admin could sign a request this connection verifies
        (Discord's Ed25519 signatures; Slack through the deployment's app), else `workspace`
        (a Slack signing secret or Telegram webhook secret a workspace admin entered)."""
        if self.kind == ChannelKind.DISCORD or self.uses_deployment_app:
            return Assurance.PLATFORM
        return Assurance.WORKSPACE


class ChatIdentity(models.Model):
    """Links a chat account to a Flowgate user; a chat click counts only through a *proven* link.

    A link is proven when the user themself confirmed it on the signed link page
    (`channels.linking`): the token was delivered privately by the platform to that chat account
    through `connection`'s bot, and opened by the signed-in user. A proven link is bound to that
    connection and counts only for clicks that connection's secret verified (the same chat
    account id sent through a bot someone else controls proves nothing). A link created by an
    admin (API or admin console) has no connection: it is unconfirmed and decides nothing until
    the user confirms it through the link page.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_identities"
    )
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    external_team_id = models.CharField(max_length=128, blank=True)
    external_user_id = models.CharField(max_length=128)
    display_name = models.CharField(max_length=200, blank=True)
    connection = models.ForeignKey(
        ChannelConnection,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="identities",
        help_text="The connection the user proved this link through; empty: unconfirmed.",
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "kind", "external_team_id", "external_user_id"],
                condition=models.Q(connection__isnull=False),
                name="one_proven_identity_per_chat_account_and_connection",
            ),
            models.UniqueConstraint(
                fields=["user", "kind", "external_team_id", "external_user_id"],
                condition=models.Q(connection__isnull=True),
                name="one_unconfirmed_identity_per_user_and_chat_account",
            ),
            models.CheckConstraint(
                condition=models.Q(connection__isnull=True, confirmed_at__isnull=True)
                | models.Q(connection__isnull=False, confirmed_at__isnull=False),
                name="identity_confirmed_iff_bound",
            ),
        ]
        verbose_name_plural = "chat identities"

    def __str__(self) -> str:
        return f"{self.kind}:{self.external_user_id} → {self.user}"

    @property
    def is_confirmed(self) -> bool:
        return self.connection_id is not None


class LinkTokenUse(models.Model):
    """A link-page token that was used: a token links once (`channels.linking`).

    Keyed by a digest of the token; kept until the token would have expired anyway."""

    token_digest = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.token_digest


class MessageState(models.TextChoices):
    PENDING = "pending", "Pending"
    POSTED = "posted", "Posted"
    UPDATED = "updated", "Updated"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Not posted (gate closed first)"


class ApprovalMessage(models.Model):
    """One delivered card (or reminder/escalation) of a gate on one connection: the message map.

    `purpose` is `card` (posted when the gate opened), `reminder:<n>` or `escalation` (re-posts).
    Delivery is at-least-once and idempotent (channels/delivery.py): a row is created before its
    card is posted, `message_id` says it was posted, `rendered_outcome` which decision the card
    shows now and `reply_id` that the thread reply about it was posted, so running a delivery
    again changes nothing. `claimed_until` is a short lease held while a worker talks to the
    platform about this row, so two workers never post or reply twice at once.
    """

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(
        ChannelConnection, on_delete=models.CASCADE, related_name="messages"
    )
    purpose = models.CharField(max_length=16, default="card")
    recipient = models.CharField(max_length=128)
    message_id = models.CharField(max_length=128, blank=True)
    thread_id = models.CharField(max_length=128, blank=True)
    state = models.CharField(
        max_length=16, choices=MessageState.choices, default=MessageState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    rendered_outcome = models.CharField(max_length=64, blank=True)
    reply_id = models.CharField(max_length=128, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["gate", "connection", "purpose"], name="one_message_per_gate_purpose"
            )
        ]

    def __str__(self) -> str:
        return f"{self.gate_id} → {self.connection}"


class InteractionReceipt(models.Model):
    """A chat delivery handled for a connection that verified it; the unique key makes platform
    retries no-ops across processes.

    Keyed by the *verifying connection* as well as the platform's delivery key, because delivery
    keys are predictable (Telegram update ids count up per bot) and any workspace admin may create
    a connection naming someone else's bot, team or app with a secret of their own: a delivery
    verified only by that connection claims only that connection's keys and can never make
    another workspace's real click look "already handled". Such a connection is not refused when
    it is saved: workspaces may legitimately share a Slack team, Discord app or bot, and refusing
    the second claimant of a bot id would let whoever registers it first lock its real owner out;
    without the secret it verifies nothing of ours. Receipts are kept for `RECEIPT_RETENTION`
    (channels/interactions/deciding.py), longer than any platform redelivers or accepts a replay.
    """

    connection = models.ForeignKey(
        ChannelConnection, on_delete=models.CASCADE, related_name="receipts"
    )
    delivery_key = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "delivery_key"], name="one_receipt_per_connection_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.delivery_key}"


class WebhookEndpoint(models.Model):
    """Where a workspace's domain events are POSTed (`channels.webhooks`): a URL on the egress
    allowlist, the event types it subscribes to and its signing secret (`whsec_<base64>`,
    Standard Webhooks), encrypted at rest and shown once, when created or rotated."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    secret = EncryptedTextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "is_active"], name="webhook_ws_active")]

    def __str__(self) -> str:
        return f"{self.url} ({self.workspace_id})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


# A delivery in one of these is still on its way: later ones of its endpoint wait for it.
UNFINISHED_DELIVERY = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
# A delivery in one of these is done for good (a redelivery is a new row): retention may drop it.
FINISHED_DELIVERY = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)


class WebhookDelivery(models.Model):
    """One event to send to one endpoint, created in the transaction that recorded the event.

    Sent in primary-key order per endpoint (a delivery waits while an earlier one of its
    endpoint is unfinished). `next_attempt_at` is when it is due; `claimed_until` the lease of
    the worker sending it. A redelivery is a new row (`redelivery_of`), so each row's attempt
    log stays what happened to it.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WorkspaceEvent, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_log"),
            models.Index(
                fields=["endpoint", "id"],
                condition=models.Q(status__in=["pending", "retrying"]),
                name="delivery_unfinished",
            ),
            # Retention (`channels.webhooks.retention`) deletes the oldest first.
            models.Index(fields=["created_at"], name="delivery_created"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id}:{self.event_id} {self.status}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, the answer (or the error) and how long it took."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error[:40]}"
