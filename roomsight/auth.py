"""Bearer tokens: who holds this one. Shared by every HTTP surface that changes state (the reviewer API,
the control-plane API), so the comparison is written, and reviewed, once."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_holder(token: str | None, tokens: Mapping[str, str]) -> str | None:
    """The name whose token this is. Every configured token is compared, in constant time, so the
    response time says nothing about which name exists or how close a guess was."""
    if not token:
        return None
    found = None
    given = token.encode()
    for name, expected in tokens.items():
        if hmac.compare_digest(given, expected.encode()):
            found = name
    return found
