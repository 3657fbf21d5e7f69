"""Malformed but verified chat payloads (issue 14): every interaction endpoint answers them in
its platform's shape, never a 500.

As first found on `main`: a correctly signed Discord modal submit whose `components` was not a
list answered an HTML 500. Here that request, and then property-based variations of each
platform's payload shapes (every field replaced by any JSON value, text with NULs and odd
characters), signed correctly, so they reach the handlers past verification (a mangled
application or team id names no connection: that request is the 401 of an unverified one).
Django's test client re-raises a view's exception, so any crash fails the test.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.models import ChannelConnection
from tests.factories import gate_for
from tests.support.interactions import (
    discord_click,
    discord_post,
    discord_submission,
    public_hex,
    slack_click,
    slack_post,
    slack_submission,
    telegram_post,
    telegram_press,
    telegram_reply,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

KEY = Ed25519PrivateKey.generate()
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(max_size=40) | st.sampled_from(["\x00", "id\x00", ""])
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def mangled(shape: dict) -> st.SearchStrategy:
    """`shape` with some of its fields (at any depth) replaced by arbitrary JSON values."""
    paths = list(_paths(shape))

    @st.composite
    def build(draw):
        value = json.loads(json.dumps(shape))
        for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
            _set(value, path, draw(json_values))
        return value

    return build()


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from _paths(child, (*prefix, index))


def _set(value, path, new) -> None:
    for step in path[:-1]:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(value, dict) or (
        isinstance(value, list) and isinstance(last, int) and last < len(value)
    ):
        value[last] = new


def answered(response) -> None:
    """A 200 in the platform's shape, or the 401 of a request that names an application or
    team of no connection (so no secret verified it: mangling the id does that)."""
    assert response.status_code in (200, 401), response.content
    if response.status_code == 401:
        assert response.json()["code"] == "INVALID_SIGNATURE"


@pytest.fixture
def world(chat_fakes, operator, reviewer):
    gate = gate_for(operator)
    connections = chat_fakes.connect(gate.workspace)
    ChannelConnection.objects.filter(pk=connections["discord"].pk).update(
        public_key=public_hex(KEY)
    )
    return gate


def test_a_signed_modal_submit_with_malformed_components_is_answered(world):
    """As first found: an HTML 500."""
    for components in (7, "x", {"a": 1}, [7], [{"components": 5}], [{"components": ["x"]}]):
        payload = discord_submission(f"fg:rework:{world.pk}", "why")
        payload["data"]["components"] = components
        response = discord_post(payload, KEY)
        assert response.status_code == 200
        assert response.json()["type"] == 4  # an ephemeral message: "say what should change"


def test_discord_payload_shapes(world):
    shapes = [discord_click(world.pk, "approve"), discord_submission(f"fg:rework:{world.pk}", "x")]

    @FUZZ
    @given(st.sampled_from(shapes).flatmap(mangled))
    def check(payload):
        response = discord_post(payload, KEY)
        answered(response)
        assert response.status_code == 401 or "type" in response.json()

    check()


def test_slack_payload_shapes(world):
    view = {"callback_id": "fg_rework", "private_metadata": json.dumps({"gate": world.pk})}
    shapes = [slack_click(world.pk, "approve"), slack_submission(view, "because")]

    @FUZZ
    @given(st.sampled_from(shapes).flatmap(mangled))
    def check(payload):
        answered(slack_post(payload))

    check()


def test_telegram_payload_shapes(world):
    prompt = f"Reply with the reason.\n\nfg:rework:{world.pk}"
    shapes = [telegram_press(world.pk, "approve"), telegram_reply(prompt, "because")]

    @FUZZ
    @given(st.sampled_from(shapes).flatmap(mangled))
    def check(update):
        answered(telegram_post(update))

    check()


def test_nul_characters_in_names_and_ids_are_answered(world):
    """PostgreSQL refuses NUL in text: ids and names carrying one must not reach a query raw."""
    click = discord_click(world.pk, "approve", user="20\x0001")
    click["member"]["user"]["global_name"] = "Ri\x00ta"
    answered(discord_post(click, KEY))
    press = telegram_press(world.pk, "approve")
    press["callback_query"]["from"]["username"] = "ri\x00ta"
    press["callback_query"]["from"]["id"] = "50\x0001"
    answered(telegram_post(press))
    slack = slack_click(world.pk, "approve", user="U0\x00RITA")
    slack["user"]["name"] = "ri\x00ta"
    answered(slack_post(slack))
