"""API tokens: `fg_<random>` secrets shown once; only their SHA-256 digest is stored.

A fast hash is enough here because the secret has 256 bits of entropy (no dictionary to try);
a slow password hash would only make every API request slower.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "fg_"


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
