"""Console users, passwords, sessions, roles and the login limit."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange.console.auth import (
    Authenticator,
    LoginLimiter,
    Role,
    Sessions,
    UsersFile,
    hash_password,
    verify_password,
)
from exchange.exceptions import LoginFailed, LoginThrottled, RoleForbidden, UsersFileInvalid

PASSWORD = "correct horse battery"
FAST_N = 2**10  # the unit tests' hashes: the format and the check, not the cost


class TestPasswords:
    """scrypt hashes with a salt each; verification in constant time."""

    def test_hash_verifies(self) -> None:
        """The right password verifies against its stored hash."""
        verify_password(hash_password(PASSWORD, n=FAST_N), PASSWORD)

    def test_wrong_password_fails(self) -> None:
        """A wrong password is login-failed."""
        with pytest.raises(LoginFailed):
            verify_password(hash_password(PASSWORD, n=FAST_N), PASSWORD + "!")

    def test_salted(self) -> None:
        """Two hashes of one password differ (a salt each), both verify."""
        first, second = hash_password(PASSWORD, n=FAST_N), hash_password(PASSWORD, n=FAST_N)
        assert first != second
        assert first.startswith("scrypt$1024$8$1$")
        assert PASSWORD not in first

    @pytest.mark.parametrize(
        "stored", ["", "plain", "md5$1$2$3$4$5", "scrypt$1024$8$1$!!$!!", "scrypt$x$8$1$AA==$AA=="]
    )
    def test_malformed_hash_fails_closed(self, stored: str) -> None:
        """A stored value that is not a scrypt hash never verifies."""
        with pytest.raises(LoginFailed):
            verify_password(stored, PASSWORD)


class TestUsersFile:
    """The file ``exchange console user add`` writes."""

    def test_add_and_load(self, tmp_path: Path) -> None:
        """Users come back with their roles; the file holds hashes only, owner-readable."""
        users = UsersFile(tmp_path / "users.json")
        users.add("alsu", Role.SUPPORT, PASSWORD)
        users.add("rinat", Role.ADMIN, PASSWORD + "2")
        loaded = users.load()
        assert {n: u.role for n, u in loaded.items()} == {"alsu": Role.SUPPORT, "rinat": Role.ADMIN}
        text = (tmp_path / "users.json").read_text()
        assert PASSWORD not in text
        assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600
        verify_password(loaded["rinat"].password_hash, PASSWORD + "2")

    def test_no_file_no_users(self, tmp_path: Path) -> None:
        """Without a file there is no user at all (no default)."""
        assert UsersFile(tmp_path / "none.json").load() == {}

    @pytest.mark.parametrize(("name", "password"), [("A", PASSWORD), ("ok-name", "short")])
    def test_bad_name_or_short_password(self, tmp_path: Path, name: str, password: str) -> None:
        """A bad user name or a password under 12 characters is refused."""
        with pytest.raises(UsersFileInvalid):
            UsersFile(tmp_path / "u.json").add(name, Role.SUPPORT, password)

    def test_corrupt_file(self, tmp_path: Path) -> None:
        """A file that is not a users file is users-file-invalid, not an empty list."""
        path = tmp_path / "u.json"
        path.write_text(json.dumps({"users": {"x": {"role": "root", "password": "p"}}}))
        with pytest.raises(UsersFileInvalid):
            UsersFile(path).load()


@pytest.fixture
def auth(tmp_path: Path, clock: FrozenClock) -> Authenticator:
    """An authenticator over a users file with one support user and one admin."""
    users = UsersFile(tmp_path / "users.json")
    users.add("alsu", Role.SUPPORT, PASSWORD)
    users.add("rinat", Role.ADMIN, PASSWORD)
    return Authenticator(users, Sessions(clock), LoginLimiter(clock, attempts=3))


class TestLogin:
    """Logging in: the limit, the password, a new session."""

    def test_login_makes_a_new_session(self, auth: Authenticator) -> None:
        """A good login gives a new session id and CSRF token (no fixation)."""
        anonymous = auth.sessions.new()
        session = auth.log_in(anonymous, "alsu", PASSWORD, "10.0.0.1")
        assert (session.user, session.role) == ("alsu", Role.SUPPORT)
        assert session.id != anonymous.id
        assert session.csrf != anonymous.csrf
        assert auth.sessions.get(anonymous.id) is None
        assert auth.sessions.get(session.id) is session

    def test_unknown_user_and_wrong_password_fail_alike(self, auth: Authenticator) -> None:
        """Both are login-failed with the same text."""
        texts = []
        for name, password in (("nobody", PASSWORD), ("alsu", "wrong password!")):
            with pytest.raises(LoginFailed) as caught:
                auth.log_in(auth.sessions.new(), name, password, "10.0.0.1")
            texts.append(caught.value.message)
        assert texts[0] == texts[1]

    def test_rate_limit_per_user(self, auth: Authenticator, clock: FrozenClock) -> None:
        """After 3 failures for a user, even the right password is refused until the window
        passes, from any address."""
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            with pytest.raises(LoginFailed):
                auth.log_in(auth.sessions.new(), "alsu", "wrong password!", address)
        with pytest.raises(LoginThrottled):
            auth.log_in(auth.sessions.new(), "alsu", PASSWORD, "10.0.0.9")
        clock.advance(timedelta(minutes=6))
        auth.log_in(auth.sessions.new(), "alsu", PASSWORD, "10.0.0.9")

    def test_rate_limit_per_address(self, auth: Authenticator) -> None:
        """An address that failed 3 times (any users) is refused for every user."""
        for name in ("a1", "a2", "a3"):
            with pytest.raises(LoginFailed):
                auth.log_in(auth.sessions.new(), name, PASSWORD, "10.0.0.7")
        with pytest.raises(LoginThrottled):
            auth.log_in(auth.sessions.new(), "rinat", PASSWORD, "10.0.0.7")
        auth.log_in(auth.sessions.new(), "rinat", PASSWORD, "10.0.0.8")


class TestSessions:
    """Sessions expire; roles gate actions."""

    def test_expiry(self, clock: FrozenClock) -> None:
        """A session past its lifetime is gone."""
        sessions = Sessions(clock, timedelta(hours=1))
        session = sessions.new()
        clock.advance(timedelta(minutes=59))
        assert sessions.get(session.id) is session
        clock.advance(timedelta(minutes=2))
        assert sessions.get(session.id) is None
        assert sessions.get("forged") is None
        assert sessions.get(None) is None

    def test_expired_sessions_are_swept(self, clock: FrozenClock) -> None:
        """Visitors who never come back leave no lasting trace: once the count passes the
        sweep mark, expired sessions go, live ones stay."""
        sessions = Sessions(clock, timedelta(hours=1))
        gone = [sessions.new() for _ in range(1000)]
        clock.advance(timedelta(hours=2))
        live = [sessions.new() for _ in range(100)]
        assert len(sessions) < 200
        assert all(sessions.get(s.id) is s for s in live)
        assert all(sessions.get(s.id) is None for s in gone)

    def test_roles(self, auth: Authenticator) -> None:
        """Anonymous may do nothing, support may read, only admin may act."""
        anonymous = auth.sessions.new()
        with pytest.raises(RoleForbidden):
            anonymous.require(Role.SUPPORT)
        support = auth.log_in(auth.sessions.new(), "alsu", PASSWORD, "10.0.0.1")
        assert support.require(Role.SUPPORT) == "alsu"
        with pytest.raises(RoleForbidden):
            support.require(Role.ADMIN)
        admin = auth.log_in(auth.sessions.new(), "rinat", PASSWORD, "10.0.0.1")
        assert admin.require(Role.ADMIN) == "rinat"
        assert admin.require(Role.SUPPORT) == "rinat"
