"""The embedded default: runs on this machine with nothing configured.

SQLite in `var/`, kombu's filesystem broker, and dev secrets generated once and kept in
`var/dev-secrets.json` so sessions and the audit chain survive restarts. Any variable set in
the environment still wins.
"""

import json
import secrets

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, env

DEBUG = env.bool("DEBUG", default=True)


def _dev_secrets() -> dict[str, str]:
    """Load (or create once) the generated secrets of this checkout's embedded default."""
    path = VAR_DIR / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_HMAC_KEYS": f"dev1:{secrets.token_hex(32)}",
    }
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


if not SECRET_KEY or not AUDIT_HMAC_KEYS:  # noqa: F405
    _generated = _dev_secrets()
    SECRET_KEY = SECRET_KEY or _generated["SECRET_KEY"]  # noqa: F405
    AUDIT_HMAC_KEYS = AUDIT_HMAC_KEYS or _generated["AUDIT_HMAC_KEYS"]  # noqa: F405
