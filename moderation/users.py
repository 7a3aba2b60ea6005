"""Accounts of the review app and API: argon2id password hashes, roles, API tokens.

Passwords are hashed with argon2-cffi's `PasswordHasher` (argon2id, its default
RFC 9106 parameters); a hash made with older parameters is replaced at the next
successful login. An unknown username still costs one hash verification, so login
time does not tell which usernames exist. API tokens are ``secrets.token_urlsafe(32)``
shown once at issue; only their sha256 is stored (a token is high-entropy, so a
fast hash is enough and lookups stay one indexed query).

Functions here work inside a transaction the caller owns (`ReviewService` adds the
audit entry to the same transaction); hashing happens before it opens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from moderation.review import ConflictError, InvalidUserError, Role, User
from moderation.schema import api_tokens, users

USERNAME_RE = re.compile(r"^[a-z0-9._-]{2,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps one login from costing a megabyte of hashing

HASHER = PasswordHasher()
_DUMMY_HASH: list[str] = []  # computed on first use: a hash to verify against when the username is unknown


@contextmanager
def hasher(temporary: PasswordHasher) -> Iterator[PasswordHasher]:
    """Use other argon2 parameters for a while (throwaway accounts of a benchmark; not thread-safe).

    Hashes made meanwhile are real argon2id hashes; `needs_rehash` upgrades them at
    the next login under the normal parameters.
    """
    global HASHER
    saved, HASHER = HASHER, temporary
    try:
        yield temporary
    finally:
        HASHER = saved


def validate_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise InvalidUserError(f"username must match {USERNAME_RE.pattern} (lower-case letters, digits, . _ -)")
    return username


def validate_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidUserError(f"password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidUserError(f"password must have at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return HASHER.hash(validate_password(password))


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(HASHER.hash(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def check_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; with no stored hash, spends the same time and says False."""
    try:
        return HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)


def to_user(row: Any) -> User:
    return User(id=row.id, username=row.username, role=Role(row.role), distributor_id=row.distributor_id,
                session_generation=int(getattr(row, "session_generation", 0) or 0))


def end_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(session_generation=users.c.session_generation + 1))


def check_role(role: Role, distributor_id: str | None) -> None:
    if role is Role.DISTRIBUTOR and not distributor_id:
        raise InvalidUserError("a distributor account needs --distributor-id")
    if role is not Role.DISTRIBUTOR and distributor_id:
        raise InvalidUserError("only distributor accounts carry a distributor id")


def user_row(conn: Connection, username: str) -> Any:
    return conn.execute(select(users).where(users.c.username == username)).first()


def insert_user(conn: Connection, username: str, password_hash: str, role: Role, distributor_id: str | None,
                at: dt.datetime) -> User:
    if user_row(conn, username) is not None:
        raise ConflictError(f"user {username!r} exists")
    uid = conn.execute(insert(users).values(username=username, password_hash=password_hash, role=role.value,
                                            distributor_id=distributor_id, active=True, created_at=at)
                       .returning(users.c.id)).scalar_one()
    return User(id=int(uid), username=username, role=role, distributor_id=distributor_id)


def store_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


def set_active(conn: Connection, user_id: int, active: bool) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(active=active))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """(token to show once, digest to store)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def insert_token(conn: Connection, user_id: int, digest: str, at: dt.datetime) -> int:
    return int(conn.execute(insert(api_tokens).values(token_sha256=digest, user_id=user_id, created_at=at)
                            .returning(api_tokens.c.id)).scalar_one())


def token_owner(conn: Connection, token: str) -> Any:
    """The active user row behind a token (with the token's id and last use), or None."""
    q = (select(users, api_tokens.c.id.label("token_id"), api_tokens.c.last_used_at)
         .join(api_tokens, api_tokens.c.user_id == users.c.id)
         .where(api_tokens.c.token_sha256 == token_digest(token), users.c.active.is_(True)))
    return conn.execute(q).first()


def touch_token(conn: Connection, token_id: int, at: dt.datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at))
