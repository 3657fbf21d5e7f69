"""Self-service linking: the link an unlinked chat user is sent, the page it opens (login
required, confirm by a CSRF-protected POST), and the click that then counts."""

from __future__ import annotations

import re

import pytest
from django.core import signing
from django.test import Client

from channels.linking import SALT, ChatAccount, link_url
from channels.models import ChatIdentity
from governance.models import AuditEvent
from tests.channels.card_helpers import no_engine  # noqa: F401
from tests.channels.interaction_helpers import decisions, gate_for, slack_click, slack_post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_engine")]

ACCOUNT = ChatAccount(kind="slack", team_id="T0001", user_id="U0RITA", display_name="rita")


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def signed_in(member) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    return client


def confirm(client: Client, path: str):
    page = client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    return client.post(path, {"csrfmiddlewaretoken": token.group(1)})


def test_the_page_requires_login(reviewer):
    path = path_of(link_url(ACCOUNT, reviewer.workspace.pk))
    response = Client().get(path)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_page_names_the_account_and_the_confirmation_links_it(reviewer):
    client = signed_in(reviewer)
    path = path_of(link_url(ACCOUNT, reviewer.workspace.pk))

    page = client.get(path)
    assert page.status_code == 200
    assert "Slack account rita (U0RITA) in team T0001" in page.content.decode()
    assert not ChatIdentity.objects.exists()  # a GET writes nothing

    done = confirm(client, path)

    assert done.status_code == 200
    identity = ChatIdentity.objects.get()
    assert (identity.user, identity.kind, identity.external_team_id, identity.external_user_id) == (
        reviewer.user,
        "slack",
        "T0001",
        "U0RITA",
    )
    event = AuditEvent.objects.get(event_type="channels.identity.linked")
    assert (event.actor_id, event.payload["source"]) == ("rita-reviewer", "page")


def test_the_confirmation_needs_the_csrf_token(reviewer):
    client = signed_in(reviewer)
    response = client.post(path_of(link_url(ACCOUNT, reviewer.workspace.pk)))
    assert response.status_code == 403
    assert not ChatIdentity.objects.exists()


def test_forged_and_expired_tokens_link_nothing(reviewer):
    client = signed_in(reviewer)
    good = link_url(ACCOUNT, reviewer.workspace.pk)
    forged = path_of(good)[:-3] + "xx/"
    old = signing.dumps(["slack", "T0001", "U0RITA", "rita", reviewer.workspace.pk], salt=SALT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("channels.linking.LINK_MAX_AGE_S", -1)
        expired = client.get(f"/channels/link/{old}/")
    assert client.get(forged).status_code == 400
    assert expired.status_code == 400
    assert "invalid or has expired" in expired.content.decode()
    assert not ChatIdentity.objects.exists()


def test_a_user_of_another_workspace_cannot_use_the_link(reviewer, outsider):
    response = signed_in(outsider).get(path_of(link_url(ACCOUNT, reviewer.workspace.pk)))
    assert response.status_code == 403


def test_an_account_linked_to_someone_else_is_not_taken_over(reviewer, admin):
    ChatIdentity.objects.create(
        user=admin.user, kind="slack", external_team_id="T0001", external_user_id="U0RITA"
    )
    client = signed_in(reviewer)
    path = path_of(link_url(ACCOUNT, reviewer.workspace.pk))
    assert "linked to another Flowgate user" in client.get(path).content.decode()
    csrf = client.cookies["csrftoken"].value
    response = client.post(path, {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 409
    assert ChatIdentity.objects.get().user == admin.user


def test_from_an_unlinked_click_to_a_decision(chat_fakes, operator, reviewer):
    """The whole flow: click while unlinked → the private link → sign in and confirm → click
    again and the decision counts."""
    gate = gate_for(operator)
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    slack_post(slack_click(gate.pk, "approve", ts="1.1"))
    [told] = chat_fakes.slack.calls("chat.postEphemeral")
    link = re.search(r"https?://\S+", told.body["text"]).group(0)

    confirm(signed_in(reviewer), path_of(link))
    slack_post(slack_click(gate.pk, "approve", ts="1.2"))

    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]
