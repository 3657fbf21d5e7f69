"""Keyed digests of chat verifying secrets: compare them across workspaces, never in clear.

A Slack signing secret or Telegram webhook secret verifies every request signed with it, so two
workspaces whose connections hold the same one could each forge the other's clicks. A save is
refused when another workspace's connection (or the deployment's Slack app) uses the secret;
the comparison is between HMAC-SHA256 digests keyed with `SECRET_KEY` (salted), stored in
`ChannelConnection.secret_digest`, so the database holds no second copy of the secret that a
dump could test guesses against without the key. Rotating `SECRET_KEY` changes every digest:
`manage.py migrate` does not recompute them, saving a connection does.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac

SALT = "flowgate.channels.secret-digest"


def secret_digest(kind: str, secret: str) -> str:
    """The digest of `kind`'s verifying `secret`; "" for no secret."""
    if not secret:
        return ""
    return salted_hmac(SALT, f"{kind}:{secret}", algorithm="sha256").hexdigest()


def deployment_slack_digest() -> str:
    return secret_digest("slack", settings.FLOWGATE_SLACK_SIGNING_SECRET)
