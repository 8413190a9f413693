"""User accounts: create, change password, remove, check a password. Shared by ``flask users`` and the
sign-in page. Passwords are hashed with argon2id (argon2-cffi's defaults) and never stored, logged or
echoed; a hash made with older parameters is replaced at the next sign-in.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin, current_user
from sqlalchemy import Row, bindparam, func, select

from .. import audit
from ..dbtypes import plain_rows, utcnow
from ..errors import EXIT_NOT_FOUND, N_, ConflictError, ValidationError
from ..extensions import db
from ..models import User
from .roles import ADMIN, ROLES

NAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # argon2 takes any length; this bounds the work one sign-in attempt costs

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked when the name is unknown, so a wrong name costs the same time as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Account(UserMixin):
    """The signed-in user as Flask-Login sees it; the session cookie carries ``id.token``."""

    user_id: int
    name: str
    role: str
    token: str

    def get_id(self) -> str:
        return f"{self.user_id}.{self.token}"


def account(user: User | Row) -> Account:
    """From a ``User`` or a row of its columns (``load``)."""
    return Account(user.id, user.name, user.role, user.session_token)


def load(session_id: str) -> Account | None:
    """The account a session names, or None when the user is gone or signed out everywhere."""
    user_id, _, token = session_id.partition(".")
    if not user_id.isdigit() or not token:
        return None
    user = plain_rows(db.session, _account_query(), {"user_id": int(user_id)}).first()
    if user is None or not secrets.compare_digest(user.session_token, token):
        return None
    return account(user)


@functools.cache
def _account_query():
    """Every request asks it (the sign-in gate): the columns of an account as a plain row on the session's
    connection, about 0.15 ms cheaper than the ORM's ``get`` (docs/performance.md, "Web polling")."""
    return select(User.id, User.name, User.role, User.session_token).where(User.id == bindparam("user_id"))


def web_actor() -> str:
    """Who acted, for the audit log: ``web:NAME`` of the signed-in user."""
    return f"web:{current_user.name}" if current_user.is_authenticated else "web:-"


def _check_name(name: str) -> str:
    if not name or len(name) > NAME_MAX or not name.isprintable() or any(ch.isspace() for ch in name):
        raise ValidationError(N_("A user name is 1 to %(max)s characters without spaces."), field="name",
                              max=NAME_MAX)
    return name


def _check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError(N_("A password has %(min)s to %(max)s characters."), field="password",
                              min=PASSWORD_MIN, max=PASSWORD_MAX)
    return password


class UserNotFound(ValidationError):
    template = N_("No user named %(name)s.")
    params = ("name",)
    exit_code = EXIT_NOT_FOUND


def find(name: str) -> User:
    user = db.session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserNotFound(name, field="name")
    return user


def create(name: str, role: str, password: str, *, actor: str) -> User:
    if role not in ROLES:
        raise ValidationError(N_("Unknown role %(role)s."), field="role", role=role)
    _check_name(name)
    if db.session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ConflictError(N_("A user named %(name)s already exists."), field="name", name=name)
    user = User(name=name, role=role, password_hash=_hasher.hash(_check_password(password)),
                session_token=secrets.token_urlsafe(24))
    db.session.add(user)
    audit.record(actor, "user.create", name, details={"role": role})
    return user


def set_password(name: str, password: str, *, actor: str) -> None:
    """A new password also signs the user out of every session."""
    user = find(name)
    user.password_hash = _hasher.hash(_check_password(password))
    user.session_token = secrets.token_urlsafe(24)
    audit.record(actor, "user.passwd", name)


def admin_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.role == ADMIN)) or 0


def any_user() -> bool:
    return db.session.scalar(select(User.id).limit(1)) is not None


def remove(name: str, *, actor: str) -> None:
    user = find(name)
    if user.role == ADMIN and admin_count() == 1:
        raise ConflictError(N_("%(name)s is the last admin: create another admin first."), field="name",
                            name=name)
    db.session.delete(user)
    audit.record(actor, "user.remove", name)


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.name)))


def authenticate(name: str, password: str) -> User | None:
    """The user if the password is theirs (rehashed when argon2's parameters changed), else None."""
    user = db.session.scalar(select(User).where(User.name == name)) if name else None
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_sign_in_at = utcnow()
    return user
