"""Card content (channels/cards.py) on each platform: open cards with exactly the offered
decisions as buttons carrying the gate id, escaped and clipped user content, and the decided /
expired card ("Approved by Rita Reviewer via the approval page at …") without buttons."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.expiry import sweep_gates
from approvals.models import Gate
from automations.models import RunNode
from channels.actions import decode_action
from channels.cards import (
    RENDERERS,
    SUMMARY_PER_NODE,
    Outcome,
    card_facts,
    clip,
    gate_outcome,
)
from channels.models import ApprovalMessage, MessageState
from tests.factories import actor_for, card_gate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

TIME = re.compile(r"at \d\d:\d\d UTC on \d{4}-\d\d-\d\d\.")


@pytest.fixture
def gate(operator, settings) -> Gate:
    settings.FLOWGATE_PUBLIC_URL = "https://flowgate.example.com/"
    return card_gate(operator)


def slack_buttons(content):
    actions = [b for b in content["blocks"] if b["type"] == "actions"]
    return [e for block in actions for e in block["elements"]]


def discord_buttons(content):
    return [c for row in content["components"] for c in row["components"]]


def telegram_buttons(content):
    return [b for row in content.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def test_facts_of_an_open_gate(gate):
    facts = card_facts(gate)
    assert facts.title == "Weekly-Report: Approve the weekly report"
    assert facts.instructions == "Check the <draft> & its review"
    assert (facts.run_id, facts.node_id, facts.workspace) == (
        gate.run.run_id,
        "approval",
        "acme/ops",
    )
    assert facts.decisions == ("approve", "rework", "cancel")
    assert facts.url == f"https://flowgate.example.com/approvals/{gate.pk}/"
    assert dict(facts.upstream) == {
        "draft": "Draft v1 of the *weekly* report <b>",
        "review": "Looks good. Ship it.",
    }


def test_open_cards_carry_one_button_per_decision_with_the_gate_id(gate):
    facts = card_facts(gate)
    values = {
        "slack": [b["value"] for b in slack_buttons(RENDERERS["slack"].open(facts))],
        "discord": [b["custom_id"] for b in discord_buttons(RENDERERS["discord"].open(facts))],
        "telegram": [
            b["callback_data"] for b in telegram_buttons(RENDERERS["telegram"].open(facts))
        ],
    }
    for kind, encoded in values.items():
        actions = [decode_action(v) for v in encoded]
        assert [(a.decision, a.gate_id) for a in actions] == [
            ("approve", gate.pk),
            ("rework", gate.pk),
            ("cancel", gate.pk),
        ], kind


def test_only_offered_decisions_get_buttons(operator):
    gate = card_gate(operator, decisions=("approve", "cancel"))
    facts = card_facts(gate)
    assert [b["text"]["text"] for b in slack_buttons(RENDERERS["slack"].open(facts))] == [
        "Approve",
        "Cancel run",
    ]
    assert [b["label"] for b in discord_buttons(RENDERERS["discord"].open(facts))] == [
        "Approve",
        "Cancel run",
    ]
    assert [b["text"] for b in telegram_buttons(RENDERERS["telegram"].open(facts))] == [
        "Approve",
        "Cancel run",
    ]


def test_slack_card_escapes_user_text_and_links_the_page(gate):
    content = RENDERERS["slack"].open(card_facts(gate))
    text = str(content["blocks"])
    assert "Check the &lt;draft&gt; &amp; its review" in text
    assert "<draft>" not in text
    assert f"<https://flowgate.example.com/approvals/{gate.pk}/|Open the approval page>" in text
    assert content["blocks"][0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "Weekly-Report: Approve the weekly report",
            "emoji": False,
        },
    }


def test_discord_card_never_pings(gate):
    for content in (
        RENDERERS["discord"].open(card_facts(gate)),
        RENDERERS["discord"].reply(
            card_facts(gate), Outcome("approve", "Approved by @everyone via Slack.")
        ),
    ):
        assert content["allowed_mentions"] == {"parse": []}


def test_long_upstream_output_is_clipped_on_every_platform(gate):
    RunNode.objects.filter(run=gate.run, node_id="draft").update(
        output={"status": "completed", "summary": "word " * 5000}
    )
    facts = card_facts(gate)
    assert len(dict(facts.upstream)["draft"]) == SUMMARY_PER_NODE
    assert dict(facts.upstream)["draft"].endswith("…")
    telegram = RENDERERS["telegram"].open(facts)
    assert len(telegram["text"]) <= 4096
    discord = RENDERERS["discord"].open(facts)["embeds"][0]
    assert all(len(f["value"]) <= 1024 for f in discord["fields"])
    slack_sections = [
        b["text"]["text"] for b in RENDERERS["slack"].open(facts)["blocks"] if "text" in b
    ]
    assert all(len(t) <= 3000 for t in slack_sections)


ENTITY = re.compile(r"&(amp|lt|gt);")


def slack_texts(content) -> list[str]:
    """Every mrkdwn text of a Slack message: section texts, fields, the top-level text."""
    texts = [content["text"]]
    for block in content["blocks"]:
        if block["type"] == "section":
            texts += [block["text"]["text"]] if "text" in block else []
            texts += [f["text"] for f in block.get("fields", [])]
    return texts


@pytest.mark.parametrize("offset", range(5))  # every position of the cut inside "&amp;"
def test_slack_card_escapes_before_clipping_and_never_cuts_an_entity(gate, offset):
    """ "&" becomes "&amp;" (5x): text clipped to fit before escaping would not fit after it,
    and Slack refuses the whole card (`invalid_blocks`, not retried)."""
    facts = replace(
        card_facts(gate),
        instructions="x" * offset + "&" * 1400,
        upstream=(("draft", "<" * 400), ("review", "&" * 400), ("more", ">" * 400)),
    )
    outcome = Outcome("rework", "Sent back for rework by a&b via Slack.", "&" * 1000)
    for content in (RENDERERS["slack"].open(facts), RENDERERS["slack"].closed(facts, outcome)):
        texts = slack_texts(content)
        for text in texts:
            assert len(text) <= 3000
            assert "&" not in ENTITY.sub("", text), "an entity was cut"
        [instructions] = [t for t in texts if t.startswith("x" * offset + "&amp;")]
        assert len(instructions) > 2990 and instructions.endswith("…")  # cut, and marked
    reply = RENDERERS["slack"].reply(facts, outcome)["text"]
    assert len(reply) <= 3000 and "&" not in ENTITY.sub("", reply)


def test_a_slack_card_with_long_escaped_text_is_posted(chat_fakes, gate):
    """Through the Slack stand-in, which refuses blocks past Slack's limits as Slack does."""
    from channels import delivery

    Gate.objects.filter(pk=gate.pk).update(instructions="<&>" * 500)
    RunNode.objects.filter(run=gate.run).update(
        output={"status": "completed", "summary": "&" * 2000}
    )
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    [message_pk] = delivery.cards_prepare(gate_id=gate.pk, purpose="card")

    delivery.card_sync(message_pk=message_pk)

    assert ApprovalMessage.objects.get(pk=message_pk).state == MessageState.POSTED
    [posted] = chat_fakes.slack.calls("chat.postMessage")
    assert chat_fakes.slack.blocks_valid(posted.body)


def test_slack_notification_text_is_escaped_like_the_blocks(gate):
    """The top-level `text` (the notification) is mrkdwn too: names in it must not ping."""
    facts = replace(card_facts(gate), title="<!channel> Deploy: <https://evil|ok>")
    outcome = Outcome("approve", "Approved by <!here> via Slack at 12:03 UTC on 2026-01-02.")
    for content in (RENDERERS["slack"].open(facts), RENDERERS["slack"].closed(facts, outcome)):
        assert "<" not in content["text"] and ">" not in content["text"], content["text"]
        assert "&lt;!channel&gt;" in content["text"]
    assert "&lt;!here&gt;" in RENDERERS["slack"].closed(facts, outcome)["text"]


def test_clip_marks_the_cut():
    assert clip("short", 10) == "short"
    assert clip("a" * 20, 10) == "a" * 9 + "…"


def test_decided_card_names_outcome_decider_surface_and_time_without_buttons(gate, reviewer):
    reviewer.user.first_name, reviewer.user.last_name = "Rita", "Reviewer"
    reviewer.user.save(update_fields=["first_name", "last_name"])
    assert gate_outcome(gate) is None
    gate_decide(actor=actor_for(reviewer), run=gate.run, decision="approve", source="page")
    gate.refresh_from_db()
    outcome = gate_outcome(gate)
    assert outcome.key == "approve"
    assert outcome.headline.startswith("Approved by Rita Reviewer via the approval page at ")
    assert TIME.search(outcome.headline)
    facts = card_facts(gate)
    slack = RENDERERS["slack"].closed(facts, outcome)
    assert slack_buttons(slack) == []
    assert "*Approved by Rita Reviewer via the approval page at" in str(slack["blocks"])
    discord = RENDERERS["discord"].closed(facts, outcome)
    assert discord["components"] == []
    assert "**Approved by Rita Reviewer" in discord["embeds"][0]["description"]
    telegram = RENDERERS["telegram"].closed(facts, outcome)
    assert "reply_markup" not in telegram
    assert "Approved by Rita Reviewer via the approval page" in telegram["text"]
    assert RENDERERS["telegram"].reply(facts, outcome)["text"] == outcome.headline


def test_rework_outcome_carries_the_reason(gate, reviewer):
    gate_decide(
        actor=actor_for(reviewer),
        run=gate.run,
        decision="rework",
        reason="Fix the totals",
        source="slack",
    )
    gate.refresh_from_db()
    outcome = gate_outcome(gate)
    assert outcome.headline.startswith("Sent back for rework by rita-reviewer via Slack at ")
    assert outcome.text.endswith("\nReason: Fix the totals")
    assert "Reason: Fix the totals" in str(
        RENDERERS["slack"].closed(card_facts(gate), outcome)["blocks"]
    )


def test_expired_outcome(gate):
    Gate.objects.filter(pk=gate.pk).update(expires_at=timezone.now())
    assert sweep_gates() == {gate.pk: "expired"}
    gate.refresh_from_db()
    outcome = gate_outcome(gate)
    assert outcome.key == "expired"
    assert outcome.headline.startswith("Expired at ")
    assert "no decision was made" in outcome.headline


def test_reminder_and_escalation_notices(gate):
    Gate.objects.filter(pk=gate.pk).update(reminder_count=2, escalated_to=["rita-reviewer"])
    gate.refresh_from_db()
    assert card_facts(gate, purpose="reminder:2").notice.startswith("Reminder 2: still waiting")
    assert card_facts(gate, purpose="escalation").notice.startswith("Escalated to rita-reviewer:")
    assert "Reminder 2" in str(RENDERERS["slack"].open(card_facts(gate, purpose="reminder:2")))
    assert card_facts(gate).notice == ""


def test_card_lists_cost_constant_queries(
    gate, operator, make_member, django_assert_max_num_queries
):
    from channels import delivery
    from channels.models import ChannelConnection

    for n in range(6):
        ChannelConnection.objects.create(
            workspace=operator.workspace, kind="slack", name=f"c{n}", channel_id=f"C{n}"
        )
    with django_assert_max_num_queries(4):  # gate, connections, one INSERT, the ids
        prepared = delivery.cards_prepare(gate_id=gate.pk, purpose="card")
    assert len(prepared) == 6
    assert delivery.cards_prepare(gate_id=gate.pk, purpose="card") == prepared  # no new rows
    with django_assert_max_num_queries(1):
        assert delivery.cards_to_sync(gate_id=gate.pk) == prepared
    with django_assert_max_num_queries(1):
        assert delivery.cards_overdue(now=timezone.now()) == []
    with django_assert_max_num_queries(2):
        card_facts(gate)
