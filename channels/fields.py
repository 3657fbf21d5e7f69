"""A text field encrypted at rest (Fernet), for chat secrets that must never be shown back.

Keys: `FLOWGATE_FIELD_KEYS` (comma-separated Fernet keys; the first encrypts, all decrypt), else
one derived from `SECRET_KEY`. Rotating means prepending a new key and re-saving rows.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in getattr(settings, "FLOWGATE_FIELD_KEYS", []) if k.strip()]
    if not keys:
        derived = hashlib.sha256(f"flowgate-fields:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(k) for k in keys])


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; Python code sees plain text."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return _fernet().encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return _fernet().decrypt(value.encode()).decode()
