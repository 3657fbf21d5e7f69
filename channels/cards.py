"""What an approval card says, on each platform: open (with buttons) and decided (without).

`card_facts` reads everything a card shows from the database once; `gate_outcome` says how a
closed gate ended ("Approved by Alice via the approval page at 12:03 UTC on 2025-01-02"). The
renderers turn them into each platform's own payload — Slack Block Kit, a Discord embed with
button components, Telegram text with an inline keyboard — which `channels.platforms` sends as is.

Button values are `CardAction(decision, gate_id).encode()`: the gate *opening* travels with the
click, so a stale card can never decide a later opening. Only the decisions the gate offers get a
button. The approval page link is in the text, not a button. Everything that came from users or
agents (titles, instructions, upstream output) is escaped for Slack's mrkdwn, then clipped to the
platforms' limits, and Discord is told not to ping anyone it mentions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from approvals.models import Decision, Gate, GateDecision, GateStatus, Surface
from approvals.quorum import progress_text
from approvals.request_answers import REQUEST_TRIGGER
from automations.models import RunNode
from channels.actions import CardAction

SUMMARY_PER_NODE = 400  # characters of one upstream node's summary
SUMMARY_TOTAL = 1800  # characters of the whole upstream summary (fits every platform's limit)
INSTRUCTIONS_MAX = 1500
MAX_REQUEST_ARGUMENTS = 10  # arguments of an approval request listed on its card
REQUEST_LABEL = "Approval request (edit or answer on the approval page)"

BUTTONS = {  # decision -> (label, Slack style, Discord style)
    "approve": ("Approve", "primary", 3),
    "rework": ("Request rework", None, 2),
    "cancel": ("Cancel run", "danger", 4),
}
OUTCOME_LABELS = {
    Decision.APPROVE: "Approved",
    Decision.REWORK: "Sent back for rework",
    Decision.CANCEL: "Cancelled",
    Decision.EXPIRED: "Expired",
}
SURFACE_NAMES = {
    Surface.API: "the API",
    Surface.PAGE: "the approval page",
    Surface.ADMIN: "the admin",
    Surface.SLACK: "Slack",
    Surface.DISCORD: "Discord",
    Surface.TELEGRAM: "Telegram",
    Surface.SYSTEM: "Flowgate",
    Surface.STANDING: "a standing approval",
}
COLORS = {"open": 0xF2C744, "approve": 0x2EB67D, "rework": 0x4A90D9, "other": 0x9B9B9B}


@dataclass(frozen=True)
class CardFacts:
    """Everything an approval card shows about one gate opening."""

    gate_id: str
    title: str
    instructions: str
    run_id: str
    node_id: str
    workspace: str
    expires_at: datetime
    decisions: tuple[str, ...]
    upstream: tuple[tuple[str, str], ...]  # (node id, summary); a request's action, arguments
    url: str
    notice: str = ""  # reminder / escalation banner of a re-post
    upstream_label: str = "Upstream output"
    # A quorum gate's approvals so far ("1 of 2 approvals (finance: 0 of 1); approved by
    # alice"), `approvals.quorum.progress_text`; "" without a quorum.
    progress: str = ""

    @property
    def lead(self) -> str:
        """The banner above an open card: the notice, then the quorum progress."""
        return "\n".join(part for part in (self.notice, self.progress) if part)


@dataclass(frozen=True)
class Outcome:
    """How a closed gate ended. `key` is what a card records as rendered (idempotency)."""

    key: str
    headline: str
    reason: str = ""

    @property
    def text(self) -> str:
        return self.headline + (f"\nReason: {self.reason}" if self.reason else "")


def approval_url(gate_id: str) -> str:
    return f"{settings.FLOWGATE_PUBLIC_URL.rstrip('/')}/approvals/{gate_id}/"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fmt_time(moment: datetime) -> str:
    return f"{moment:%H:%M} UTC on {moment:%Y-%m-%d}"


def _node_summary(output: Any) -> str:
    if isinstance(output, dict):
        for value in (output.get("summary"), (output.get("content") or {}).get("text")):
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())
        return ", ".join(f"{k}: {v}" for k, v in output.items() if k != "status") or "(no output)"
    return "(no output)" if output is None else str(output)


def card_facts(gate: Gate, *, purpose: str = "card") -> CardFacts:
    """The facts of `gate`'s card (2 queries: the gate's run, automation and workspace are
    expected `select_related`; the upstream outputs are one more)."""
    outputs = dict(
        RunNode.objects.filter(run_id=gate.run_id, node_id__in=gate.upstream_node_ids).values_list(
            "node_id", "output"
        )
    )
    upstream, used = _request_lines(gate), 0
    for node_id in gate.upstream_node_ids:
        summary = clip(_node_summary(outputs.get(node_id)), SUMMARY_PER_NODE)
        if used + len(summary) > SUMMARY_TOTAL:
            upstream.append((node_id, "…"))
            break
        used += len(summary)
        upstream.append((node_id, summary))
    automation = gate.run.automation
    return CardFacts(
        gate_id=gate.pk,
        title=clip(f"{automation.name or automation.automation_id}: {gate.title}", 140),
        instructions=clip(
            gate.instructions or "A human approval is required to continue.", INSTRUCTIONS_MAX
        ),
        run_id=gate.run.run_id,
        node_id=gate.node_id,
        workspace=gate.workspace.path,
        expires_at=gate.expires_at,
        decisions=tuple(d for d in BUTTONS if d in (gate.decisions or [])),
        upstream=tuple(upstream),
        url=approval_url(gate.pk),
        notice=_notice(gate, purpose),
        progress=progress_text(gate.quorum),
        upstream_label=REQUEST_LABEL
        if gate.run.trigger_type == REQUEST_TRIGGER
        else "Upstream output",
    )


def _request_lines(gate: Gate) -> list[tuple[str, str]]:
    """An approval request's action and top-level arguments (from the run's inputs, which the
    gate's reviewed digest binds; no query). Edits and answers are made on the approval page."""
    if gate.run.trigger_type != REQUEST_TRIGGER:
        return []
    inputs = gate.run.inputs or {}
    arguments = inputs.get("arguments") or {}
    lines = [("action", clip(str(inputs.get("action") or ""), SUMMARY_PER_NODE))]
    for name, value in list(arguments.items())[:MAX_REQUEST_ARGUMENTS]:
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append((str(name), clip(shown, SUMMARY_PER_NODE)))
    return lines


def progress_key(gate: Gate) -> str:
    """What an open card records as rendered once it shows the gate's quorum progress ("" when
    there is nothing to show): a card is edited again only when the count changed."""
    count = (gate.quorum or {}).get("approvals") or 0
    return f"progress:{count}" if count else ""


def _notice(gate: Gate, purpose: str) -> str:
    if purpose.startswith("reminder"):
        return (
            f"Reminder {gate.reminder_count}: still waiting for a decision "
            f"(expires at {fmt_time(gate.expires_at)})."
        )
    if purpose == "escalation":
        names = ", ".join(gate.escalated_to) or "more reviewers"
        return (
            f"Escalated to {names}: they can now decide (expires at {fmt_time(gate.expires_at)})."
        )
    return ""


def gate_outcome(gate: Gate) -> Outcome | None:
    """How `gate` ended, or None while it is open. One query (the settling decision)."""
    if gate.status == GateStatus.OPEN:
        return None
    if gate.status == GateStatus.SUPERSEDED:
        when = fmt_time(gate.closed_at) if gate.closed_at else "a later change"
        return Outcome("superseded", f"No longer needed: the run changed at {when}.")
    record = (
        GateDecision.objects.select_related("decided_by").filter(gate=gate, settles=True).first()
    )
    if record is None:  # closed without a settling record: show the status only
        return Outcome(gate.status, f"{gate.get_status_display()}.")
    label = OUTCOME_LABELS.get(record.decision, record.get_decision_display())
    when = fmt_time(record.decided_at)
    if record.decision == Decision.EXPIRED:
        return Outcome(
            record.decision, f"Expired at {when}: no decision was made and the run was cancelled."
        )
    user = record.decided_by
    who = (user.get_full_name() or user.username) if user else "someone"
    surface = SURFACE_NAMES.get(record.source, record.source)
    return Outcome(record.decision, f"{label} by {who} via {surface} at {when}.", record.reason)


# --- Slack ------------------------------------------------------------------------------------


SLACK_TEXT_MAX = 3000  # of a section's text; Slack refuses the whole message beyond it
SLACK_FIELD_MAX = 2000  # of one section field
MRKDWN_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
LONGEST_ESCAPE = max(len(e) for e in MRKDWN_ESCAPES.values())


def _mrkdwn(text: str) -> str:
    """`text` escaped for mrkdwn: user text can neither format links nor ping (`<!channel>`)."""
    return "".join(MRKDWN_ESCAPES.get(c, c) for c in text)


def _fit(mrkdwn: str, limit: int = SLACK_TEXT_MAX) -> str:
    """Escaped `mrkdwn` clipped to `limit` characters without cutting an entity (`&amp;`).

    Clip after escaping: escaping grows text (up to 5x), so text clipped to fit before it can
    exceed Slack's limit, and Slack then refuses the card for good (`invalid_blocks`).
    """
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = limit - 1
    entity = mrkdwn.rfind("&", max(0, cut - LONGEST_ESCAPE + 1), cut)
    if entity != -1 and ";" not in mrkdwn[entity:cut]:
        cut = entity
    return mrkdwn[:cut].rstrip() + "…"


def slack_text(text: str, limit: int = SLACK_TEXT_MAX) -> str:
    """Plain words (user text in them) as mrkdwn that fits `limit`: escaped, then clipped."""
    return _fit(_mrkdwn(text), limit)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(text)}}


def _field(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _fit(text, SLACK_FIELD_MAX)}


def _slack_body(facts: CardFacts, lead: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": facts.title, "emoji": False}},
    ]
    if lead:
        blocks.append(_section(lead))
    blocks += [
        _section(_mrkdwn(facts.instructions)),
        {
            "type": "section",
            "fields": [
                _field(f"*Run*\n`{_mrkdwn(facts.run_id)}`"),
                _field(f"*Node*\n`{_mrkdwn(facts.node_id)}`"),
                _field(f"*Workspace*\n{_mrkdwn(facts.workspace)}"),
                _field(f"*Expires*\n{fmt_time(facts.expires_at)}"),
            ],
        },
    ]
    if facts.upstream:
        lines = "\n".join(f"• `{_mrkdwn(n)}`: {_mrkdwn(s)}" for n, s in facts.upstream)
        blocks.append(_section(f"*{facts.upstream_label}*\n{lines}"))
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{facts.url}|Open the approval page>"}],
        }
    )
    return blocks


def slack_open(facts: CardFacts) -> dict[str, Any]:
    lead = f":bell: {_mrkdwn(facts.lead)}" if facts.lead else ""
    buttons = []
    for decision in facts.decisions:
        label, style, _ = BUTTONS[decision]
        button = {
            "type": "button",
            "action_id": f"fg_{decision}",
            "text": {"type": "plain_text", "text": label},
            "value": CardAction(decision, facts.gate_id).encode(),
        }
        if style:
            button["style"] = style
        buttons.append(button)
    blocks = _slack_body(facts, lead)
    if buttons:
        blocks.append({"type": "actions", "block_id": "fg_decision", "elements": buttons})
    # The top-level text is the notification's and is mrkdwn too: escaped like the blocks.
    return {"text": f"Approval needed: {_mrkdwn(facts.title)}", "blocks": blocks}


def slack_closed(facts: CardFacts, outcome: Outcome) -> dict[str, Any]:
    lead = f"*{_mrkdwn(outcome.headline)}*"
    if outcome.reason:
        lead += f"\nReason: {_mrkdwn(clip(outcome.reason, 1000))}"
    return {
        "text": _mrkdwn(f"{facts.title}: {outcome.headline}"),
        "blocks": _slack_body(facts, lead),
    }


def slack_reply(facts: CardFacts, outcome: Outcome) -> dict[str, Any]:
    return {"text": slack_text(outcome.text)}


# --- Discord ----------------------------------------------------------------------------------

NO_PINGS = {"parse": []}  # text from users/agents must not ping @everyone or anyone else


def _discord_embed(facts: CardFacts, lead: str, color: int) -> dict[str, Any]:
    description = f"{lead}\n\n{facts.instructions}" if lead else facts.instructions
    fields = [
        {"name": "Run", "value": f"`{facts.run_id}`", "inline": True},
        {"name": "Node", "value": f"`{facts.node_id}`", "inline": True},
        {"name": "Workspace", "value": facts.workspace, "inline": True},
        {"name": "Expires", "value": fmt_time(facts.expires_at), "inline": True},
    ]
    if facts.upstream:
        lines = "\n".join(f"• `{n}`: {s}" for n, s in facts.upstream)
        fields.append({"name": facts.upstream_label, "value": clip(lines, 1024), "inline": False})
    return {
        "title": clip(facts.title, 256),
        "url": facts.url,
        "description": clip(description, 4000),
        "color": color,
        "fields": fields,
        "footer": {"text": "Open the approval page from the title"},
    }


def discord_open(facts: CardFacts) -> dict[str, Any]:
    buttons = [
        {
            "type": 2,
            "style": BUTTONS[d][2],
            "label": BUTTONS[d][0],
            "custom_id": CardAction(d, facts.gate_id).encode(),
        }
        for d in facts.decisions
    ]
    lead = f"🔔 {facts.lead}" if facts.lead else ""
    return {
        "content": "",
        "embeds": [_discord_embed(facts, lead, COLORS["open"])],
        "components": [{"type": 1, "components": buttons}] if buttons else [],
        "allowed_mentions": NO_PINGS,
    }


def discord_closed(facts: CardFacts, outcome: Outcome) -> dict[str, Any]:
    lead = f"**{outcome.headline}**"
    if outcome.reason:
        lead += f"\nReason: {clip(outcome.reason, 1000)}"
    color = COLORS.get(outcome.key, COLORS["other"])
    return {
        "content": "",
        "embeds": [_discord_embed(facts, lead, color)],
        "components": [],
        "allowed_mentions": NO_PINGS,
    }


def discord_reply(facts: CardFacts, outcome: Outcome) -> dict[str, Any]:
    return {"content": clip(outcome.text, 2000), "allowed_mentions": NO_PINGS}


# --- Telegram (plain text: nothing to escape, nothing to mis-parse) ------------------------------

TELEGRAM_MAX = 4000  # of the 4096 a message may hold
NO_PREVIEW = {"is_disabled": True}


def _telegram_text(facts: CardFacts, lead: str) -> str:
    parts = [facts.title]
    if lead:
        parts.append(lead)
    parts += [
        facts.instructions,
        f"Run: {facts.run_id}\nNode: {facts.node_id}\nWorkspace: {facts.workspace}\n"
        f"Expires: {fmt_time(facts.expires_at)}",
    ]
    if facts.upstream:
        lines = "\n".join(f"• {n}: {s}" for n, s in facts.upstream)
        parts.append(f"{facts.upstream_label}:\n{lines}")
    parts.append(f"Approval page: {facts.url}")
    return clip("\n\n".join(parts), TELEGRAM_MAX)


def telegram_open(facts: CardFacts) -> dict[str, Any]:
    content: dict[str, Any] = {
        "text": _telegram_text(facts, f"🔔 {facts.lead}" if facts.lead else ""),
        "link_preview_options": NO_PREVIEW,
    }
    if facts.decisions:
        content["reply_markup"] = {
            "inline_keyboard": [
                [
                    {"text": BUTTONS[d][0], "callback_data": CardAction(d, facts.gate_id).encode()}
                    for d in facts.decisions
                ]
            ]
        }
    return content


def telegram_closed(facts: CardFacts, outcome: Outcome) -> dict[str, Any]:
    lead = outcome.headline + (f"\nReason: {clip(outcome.reason, 1000)}" if outcome.reason else "")
    # No reply_markup: editMessageText without one removes the inline keyboard.
    return {"text": _telegram_text(facts, lead), "link_preview_options": NO_PREVIEW}


def telegram_reply(facts: CardFacts, outcome: Outcome) -> dict[str, Any]:
    return {"text": clip(outcome.text, TELEGRAM_MAX)}


@dataclass(frozen=True)
class Renderer:
    open: Callable[[CardFacts], dict[str, Any]]
    closed: Callable[[CardFacts, Outcome], dict[str, Any]]
    reply: Callable[[CardFacts, Outcome], dict[str, Any]]


RENDERERS = {
    "slack": Renderer(slack_open, slack_closed, slack_reply),
    "discord": Renderer(discord_open, discord_closed, discord_reply),
    "telegram": Renderer(telegram_open, telegram_closed, telegram_reply),
}
