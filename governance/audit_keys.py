"""Parsing `AUDIT_HMAC_KEYS` ("keyid:hexsecret[,keyid:hexsecret…]"; the first key signs).

Kept free of models so the settings can check the keys at load time
(`config/settings/production.py`) with the same rules the audit writer uses.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

# Stored with every event (`AuditEvent.key_id`): a longer id would fail every audited change.
MAX_KEY_ID_LENGTH = 32


def parse_audit_keys(raw: str, *, min_bytes: int = 1) -> tuple[tuple[str, bytes], ...]:
    """The `(key_id, secret)` pairs in order, or `ImproperlyConfigured` naming what is wrong.

    Key ids must be unique (verification looks keys up by id) and fit the column; every secret
    must be hex of at least `min_bytes` bytes.
    """
    keys: list[tuple[str, bytes]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or not secret:
            raise ImproperlyConfigured("AUDIT_HMAC_KEYS entries must be keyid:hexsecret")
        if len(key_id) > MAX_KEY_ID_LENGTH or not key_id.isprintable():
            raise ImproperlyConfigured(
                f"AUDIT_HMAC_KEYS key id {key_id[:40]!r} must be at most {MAX_KEY_ID_LENGTH} "
                "printable characters"
            )
        if any(key_id == seen for seen, _ in keys):
            raise ImproperlyConfigured(f"AUDIT_HMAC_KEYS lists key id {key_id!r} twice")
        try:
            key = bytes.fromhex(secret)
        except ValueError as exc:
            raise ImproperlyConfigured(f"AUDIT_HMAC_KEYS key {key_id!r} is not hex") from exc
        if len(key) < min_bytes:
            raise ImproperlyConfigured(
                f"AUDIT_HMAC_KEYS key {key_id!r} has {len(key)} bytes; at least {min_bytes} "
                f"are required ({2 * min_bytes} hex digits)"
            )
        keys.append((key_id, key))
    if not keys:
        raise ImproperlyConfigured("AUDIT_HMAC_KEYS is empty")
    return tuple(keys)
