"""Passwords (argon2id, slow and salted) and tokens (JWT HS256 that expire).

Hashing runs in a thread (argon2-cffi releases the GIL), so a register or login does
not stall the worker's event loop. The parameters are OWASP's second argon2id choice
(19 MiB, 2 passes, 1 lane): about 25 ms a hash on this machine's cores.
"""

from __future__ import annotations

import asyncio
import functools
import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "TOKEN_ALGORITHM",
    "hash_password",
    "issue_token",
    "user_from_token",
    "verify_password",
]

TOKEN_ALGORITHM = "HS256"
TOKEN_CACHE_SIZE = 4096
"""Verified tokens kept per process (see _verified)."""
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the login is unknown, so a wrong login and a wrong password
    take the same time. Made on first use, not at import: a hash is ~25 ms of CPU, and
    every restart of the HTTP server imports this module."""
    return _HASHER.hash("not a password of anyone")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; False also for an unknown user (None hash)."""

    def check() -> bool:
        try:
            matches = _HASHER.verify(password_hash or _dummy_hash(), password)
            return matches and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def issue_token(secret: str, user_id: int, ttl_s: int, now: float | None = None) -> str:
    """A signed token naming the user, valid for `ttl_s` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + ttl_s}
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def user_from_token(secret: str, token: str) -> int | None:
    """The user id of a valid, unexpired token signed with `secret`; None otherwise."""
    verified = _verified(secret, token)
    if verified is None or verified[1] <= time.time():  # PyJWT: expired once exp <= now
        return None
    return verified[0]


@functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _verified(secret: str, token: str) -> tuple[int, int] | None:
    """(user id, exp) of a token whose signature and claims check out, expiry aside.

    NOTE: cached: a client sends the same token with every request, and decoding it
    (base64, JSON, HMAC) was a tenth of a GET /api/user/balance's CPU. The expiry is
    checked by the caller on every use, so a cached token still expires on time.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False},
        )
        user_id, expires = int(claims["sub"]), int(claims["exp"])  # PyJWT's int() too
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
        return None
    return (user_id, expires) if 0 < user_id < 2**63 else None  # a bigint id, or no user
