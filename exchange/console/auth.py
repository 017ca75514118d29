"""Who may use the console: the users file (scrypt hashes), server-side sessions, roles, and
the limit on login attempts per user and per client address.

Passwords are never stored: each user's line holds ``scrypt$n$r$p$salt$hash`` (base64). There
is no default user and no default password; an admin adds users with ``exchange console user
add``. A wrong password and an unknown user fail the same way (``login-failed``), and a user
or address with too many recent failures is refused before the password is even checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from exchange._clock import Clock
from exchange.exceptions import LoginFailed, LoginThrottled, RoleForbidden, UsersFileInvalid

USER_NAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")
MIN_PASSWORD = 12
# scrypt's cost: 128 * n * r bytes = 32 MiB of memory per hash, memory-hard and still well
# under a second per login on a small machine.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 64 * 1024 * 1024


class Role(StrEnum):
    """What a console user may do: support reads, admin also acts (replay)."""

    SUPPORT = "support"
    ADMIN = "admin"


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """The stored form of ``password``: scrypt with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(stored: str, password: str) -> None:
    """Check ``password`` against its stored form in constant time.

    Raises:
        LoginFailed (login-failed): it does not match, or the stored form is not scrypt's.
    """
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        digest = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=32,
        )
        good = hmac.compare_digest(digest, base64.b64decode(expected, validate=True))
    except (ValueError, TypeError):
        good = False
    if not good:
        raise LoginFailed("unknown user or wrong password")


@dataclass(frozen=True, slots=True)
class User:
    """A console user as the users file keeps them."""

    name: str
    role: Role
    password_hash: str


class UsersFile:
    """The console's users: a JSON file the admin manages (``exchange console user add``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, User]:
        """Every user by name; none when the file does not exist yet.

        Raises:
            UsersFileInvalid (users-file-invalid): the file is not a users file.
        """
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                name: User(name, Role(entry["role"]), str(entry["password"]))
                for name, entry in doc["users"].items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsersFileInvalid(
                f"cannot read the console's users file {self.path}: {exc!r}; restore it from "
                "a backup or add the users again with `exchange console user add`",
                path=str(self.path),
            ) from None

    def add(self, name: str, role: Role, password: str) -> User:
        """Add (or replace) a user; the file is written whole, readable by its owner only.

        Raises:
            UsersFileInvalid (users-file-invalid): a bad name or a too short password.
        """
        if not USER_NAME.fullmatch(name):
            raise UsersFileInvalid(
                f"user name {name!r}: use 2 to 64 of a-z 0-9 . _ -, starting with a letter"
            )
        if len(password) < MIN_PASSWORD:
            raise UsersFileInvalid(f"the password must have at least {MIN_PASSWORD} characters")
        users = self.load()
        user = User(name, role, hash_password(password))
        users[name] = user
        doc = {
            "users": {
                u.name: {"role": u.role.value, "password": u.password_hash} for u in users.values()
            }
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=1, sort_keys=True)
        temp.replace(self.path)
        return user


class LoginLimiter:
    """At most ``attempts`` failed logins per user and per address within ``window``."""

    def __init__(self, clock: Clock, attempts: int = 5, window: timedelta | None = None) -> None:
        self.clock = clock
        self.attempts = attempts
        self.window = window or timedelta(minutes=5)
        self._failures: dict[str, deque[datetime]] = {}

    def check(self, user: str, address: str) -> None:
        """Refuse before the password is checked when either key failed too often.

        Raises:
            LoginThrottled (login-throttled).
        """
        for key in (f"user:{user}", f"addr:{address}"):
            if len(self._recent(key)) >= self.attempts:
                raise LoginThrottled(
                    f"too many failed logins for {key.split(':', 1)[0]} {key.split(':', 1)[1]}; "
                    f"wait {int(self.window.total_seconds() // 60)} minutes and try again",
                    key=key,
                )

    def failed(self, user: str, address: str) -> None:
        """Count one failed login against the user and the address."""
        now = self.clock.now()
        for key in (f"user:{user}", f"addr:{address}"):
            self._recent(key).append(now)

    def succeeded(self, user: str) -> None:
        """A good login clears the user's count (not the address's)."""
        self._failures.pop(f"user:{user}", None)

    def _recent(self, key: str) -> deque[datetime]:
        since = self.clock.now() - self.window
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= since:
            times.popleft()
        return times


@dataclass(slots=True)
class Session:
    """One browser's session, kept server-side; the cookie holds only its random id."""

    id: str
    csrf: str
    expires: datetime
    user: str | None = None
    role: Role | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def require(self, role: Role) -> str:
        """The user's name when they hold ``role`` (admin holds support's too).

        Raises:
            RoleForbidden (role-forbidden): not logged in, or not allowed.
        """
        if self.user is None or self.role is None:
            raise RoleForbidden("log in first")
        if role is Role.ADMIN and self.role is not Role.ADMIN:
            raise RoleForbidden(f"{self.user} is {self.role.value}; this needs an admin")
        return self.user


_FIRST_SWEEP = 1024  # sessions held before the first sweep of expired ones


class Sessions:
    """Sessions by id, in memory: a restart logs everyone out, which is the safe way round."""

    def __init__(self, clock: Clock, lifetime: timedelta | None = None) -> None:
        self.clock = clock
        self.lifetime = lifetime or timedelta(hours=8)
        self._by_id: dict[str, Session] = {}
        # Every visitor's first page makes a session (the login form's CSRF token): expired
        # ones are swept whenever the count doubles, so visitors who never come back (or a
        # crawler) cannot grow memory without bound.
        self._sweep_at = _FIRST_SWEEP

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown or expired)."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires <= self.clock.now():
            del self._by_id[session_id]
            return None
        return session

    def new(self) -> Session:
        """A fresh anonymous session (it carries the login form's CSRF token)."""
        session = Session(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            self.clock.now() + self.lifetime,
        )
        self._by_id[session.id] = session
        if len(self._by_id) >= self._sweep_at:
            self._sweep()
        return session

    def __len__(self) -> int:
        return len(self._by_id)

    def _sweep(self) -> None:
        now = self.clock.now()
        self._by_id = {key: s for key, s in self._by_id.items() if s.expires > now}
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._by_id))

    def log_in(self, old: Session, user: User) -> Session:
        """A new session (new id and token: no fixation) for ``user``; ``old`` ends."""
        self.end(old)
        session = self.new()
        session.user, session.role = user.name, user.role
        return session

    def end(self, session: Session) -> None:
        """Forget a session."""
        self._by_id.pop(session.id, None)


class Authenticator:
    """Logs people in: the rate limit first, then the password, then a new session."""

    def __init__(self, users: UsersFile, sessions: Sessions, limiter: LoginLimiter) -> None:
        self.users = users
        self.sessions = sessions
        self.limiter = limiter

    def log_in(self, session: Session, name: str, password: str, address: str) -> Session:
        """A logged-in session for ``name``.

        Raises:
            LoginThrottled (login-throttled), LoginFailed (login-failed).
        """
        self.limiter.check(name, address)
        user = self.users.load().get(name)
        try:
            # An unknown user costs a hash too, so timing does not tell which names exist.
            verify_password(user.password_hash if user else _DUMMY, password)
            if user is None:
                raise LoginFailed("unknown user or wrong password")
        except LoginFailed:
            self.limiter.failed(name, address)
            raise
        self.limiter.succeeded(name)
        return self.sessions.log_in(session, user)


_DUMMY = hash_password(secrets.token_urlsafe(16))
