"""Test settings: PostgreSQL and Redis from the environment (see ./flowgate test), fixed keys."""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, env

SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"
AUDIT_HMAC_KEYS = env.str(
    "AUDIT_HMAC_KEYS",
    default="test1:" + "11" * 32 + ",old0:" + "22" * 32,
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Lets the test suite's flush (TRUNCATE between transactional tests) pass the audit trigger;
# see governance/migrations/0002_audit_append_only.py. Never set outside tests.
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"]["options"] = "-c flowgate.audit_maintenance=on"

# django-axes, except for the test client's request-less `Client.login()` (see the module).
AUTHENTICATION_BACKENDS = [
    "tests.support.axes_backend.AxesBackendWithTestClientLogin",
    *[b for b in AUTHENTICATION_BACKENDS if b != "axes.backends.AxesStandaloneBackend"],  # noqa: F405
]
