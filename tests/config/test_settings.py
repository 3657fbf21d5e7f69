"""Settings come from the environment; production refuses to start without real secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_HMAC = "k1:" + "ab" * 32
GOOD_SECRET = "s" * 50
SERVERS = {"DATABASE_URL": "postgres://u@db:5432/flowgate", "REDIS_URL": "redis://cache:6379/0"}


PRINT_SETTINGS = (
    "import django; from django.conf import settings; django.setup(); "
    "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, "
    "settings.AUDIT_HMAC_KEYS.split(':')[0])"
)


FLOWGATE_VARIABLES = {
    "SECRET_KEY",
    "AUDIT_HMAC_KEYS",
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "FLOWGATE_VAR_DIR",
    "DEBUG",
}


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without Flowgate's variables, plus `env`."""
    return {k: v for k, v in os.environ.items() if k not in FLOWGATE_VARIABLES} | env


def load(
    module: str | None, *, code: str = PRINT_SETTINGS, **env: str
) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with exactly `env` set for Flowgate and the settings
    `module` (None: DJANGO_SETTINGS_MODULE unset, so the entry point's default applies)."""
    clean = clean_env(**env)
    if module is not None:
        clean["DJANGO_SETTINGS_MODULE"] = module
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


@pytest.mark.parametrize(
    "keys,problem",
    [
        ("k1:" + "ab" * 31, "k1' has 31 bytes; at least 32"),
        (GOOD_HMAC + ",k2:" + "cd" * 16, "k2' has 16 bytes"),
        ("k1:" + "zz" * 32, "is not hex"),
        ("k1", "keyid:hexsecret"),
        (GOOD_HMAC + "," + GOOD_HMAC, "lists key id 'k1' twice"),
        ("k" * 33 + ":" + "ab" * 32, "at most 32 printable characters"),
    ],
)
def test_production_checks_the_audit_keys_at_start(keys, problem):
    result = load(
        "config.settings.production", SECRET_KEY=GOOD_SECRET, AUDIT_HMAC_KEYS=keys, **SERVERS
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert problem in result.stderr


@pytest.mark.parametrize("entry_point", ["config.wsgi", "config.asgi", "config.celery"])
def test_entry_points_default_to_production_and_fail_closed(entry_point, tmp_path):
    """A server or worker started without DJANGO_SETTINGS_MODULE must not run on dev secrets."""
    result = load(
        None,
        code=f"import {entry_point}; from django.conf import settings; settings.DEBUG",
        FLOWGATE_VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr
    assert not (tmp_path / "dev-secrets.json").exists()


def test_manage_py_defaults_to_the_embedded_default(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "diffsettings", "--output", "unified"],
        cwd=ROOT,
        env=clean_env(FLOWGATE_VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dev-secrets.json").exists()


def test_production_starts_with_secrets_and_is_hardened():
    result = load(
        "config.settings.production", SECRET_KEY=GOOD_SECRET, AUDIT_HMAC_KEYS=GOOD_HMAC, **SERVERS
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "k1"]


def test_embedded_default_generates_dev_secrets_once(tmp_path):
    """The local settings work with nothing set: they generate their secrets into VAR_DIR on
    first start (mode 600) and reuse them on every later start."""
    var_dir = tmp_path / "var"
    show = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.VAR_DIR, "
        "settings.SECRET_KEY, settings.AUDIT_HMAC_KEYS)"
    )
    first = load("config.settings.local", code=show, DEBUG="false", FLOWGATE_VAR_DIR=str(var_dir))
    assert first.returncode == 0, first.stderr
    debug, secure_cookie, shown_var_dir, secret_key, hmac_keys = first.stdout.split()
    assert (debug, secure_cookie, shown_var_dir) == ("False", "False", str(var_dir))
    generated = var_dir / "dev-secrets.json"
    assert generated.stat().st_mode & 0o777 == 0o600
    stored = json.loads(generated.read_text())
    assert stored == {"SECRET_KEY": secret_key, "AUDIT_HMAC_KEYS": hmac_keys}
    assert len(secret_key) >= 50
    key_id, secret = hmac_keys.split(":")
    assert key_id == "dev1" and len(bytes.fromhex(secret)) == 32

    again = load("config.settings.local", code=show, FLOWGATE_VAR_DIR=str(var_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[3:] == [secret_key, hmac_keys]
    assert json.loads(generated.read_text()) == stored


def test_environment_secrets_win_over_generated_ones(tmp_path):
    result = load(
        "config.settings.local",
        SECRET_KEY=GOOD_SECRET,
        AUDIT_HMAC_KEYS=GOOD_HMAC,
        FLOWGATE_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[2] == "k1"
    assert not (tmp_path / "dev-secrets.json").exists()
