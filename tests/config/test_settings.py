"""Settings come from the environment; production refuses to start without real secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_HMAC = "k1:" + "ab" * 32
GOOD_SECRET = "s" * 50
SERVERS = {"DATABASE_URL": "postgres://u@db:5432/flowgate", "REDIS_URL": "redis://cache:6379/0"}


def load(module: str, **env: str) -> subprocess.CompletedProcess:
    """Import a settings module in a fresh interpreter with exactly `env` set for Flowgate."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "SECRET_KEY",
            "AUDIT_HMAC_KEYS",
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "REDIS_URL",
        }
    }
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, "
        "settings.AUDIT_HMAC_KEYS.split(':')[0])"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env,missing",
    [
        ({"AUDIT_HMAC_KEYS": GOOD_HMAC, **SERVERS}, "SECRET_KEY"),
        ({"SECRET_KEY": "short", "AUDIT_HMAC_KEYS": GOOD_HMAC, **SERVERS}, "SECRET_KEY"),
        ({"SECRET_KEY": GOOD_SECRET, **SERVERS}, "AUDIT_HMAC_KEYS"),
        ({"SECRET_KEY": GOOD_SECRET, "AUDIT_HMAC_KEYS": GOOD_HMAC}, "DATABASE_URL"),
        (
            {
                "SECRET_KEY": GOOD_SECRET,
                "AUDIT_HMAC_KEYS": GOOD_HMAC,
                "DATABASE_URL": SERVERS["DATABASE_URL"],
            },
            "REDIS_URL",
        ),
    ],
)
def test_production_refuses_to_start_without_secrets(env, missing):
    result = load("config.settings.production", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_production_starts_with_secrets_and_is_hardened():
    result = load(
        "config.settings.production", SECRET_KEY=GOOD_SECRET, AUDIT_HMAC_KEYS=GOOD_HMAC, **SERVERS
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "k1"]


def test_embedded_default_generates_dev_secrets(tmp_path):
    """The local settings work with nothing set, keeping their generated keys in var/."""
    result = load("config.settings.local", DEBUG="false")
    assert result.returncode == 0, result.stderr
    debug, secure_cookie, key_prefix = result.stdout.split()
    assert (debug, secure_cookie) == ("False", "False")
    assert key_prefix.startswith("dev")
    assert (ROOT / "var" / "dev-secrets.json").exists()
