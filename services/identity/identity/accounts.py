"""Account operations shared by the routes and the start-up bootstrap: creating, finding,
deleting users, and the checks that keep at least one admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from servicekit import ResponseCode, ServiceError
from servicekit.database import as_utc
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.context import IdentityContext
from identity.models import ROLE_ADMIN, RefreshToken, RetiredUsername, User
from identity.schemas import USERNAME_PATTERN


@dataclass(frozen=True, slots=True)
class Account:
    """What a request needs of a user row, read in one session and used after it."""

    user_id: int
    username: str
    role: str
    password_hash: str


def user_view(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "created_at": as_utc(user.created_at)}


def not_unique(username: str) -> ServiceError:
    return ServiceError(409, ResponseCode.NotUnique, f"The username '{username}' is taken.")


def no_such_user() -> ServiceError:
    return ServiceError(404, ResponseCode.ObjectNotFound, "No such user.")


def caller_gone() -> ServiceError:
    # The token outlived its account (deleted since): the seed's "no user for this request".
    return ServiceError(404, ResponseCode.UserNotFound, "The caller's account does not exist.")


def last_admin() -> ServiceError:
    return ServiceError(
        409, ResponseCode.Restricted, "This would leave no admin; promote another user first."
    )


def name_taken(session: Session, username: str) -> bool:
    """Taken by a user, or retired with a deleted one (names are never handed out again)."""
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        return True
    return session.get(RetiredUsername, username) is not None


def find_account(session: Session, username: str) -> Account | None:
    # A name that could never have been registered is not looked up (no NUL reaches SQL).
    if len(username) > 256 or "\x00" in username:
        return None
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        return None
    return Account(user.id, user.username, user.role, user.password_hash)


def user_by_path(session: Session, username: str) -> User:
    """The user a path names, or 404 (a name outside the rules cannot exist)."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise no_such_user()
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise no_such_user()
    return user


def insert_user(ctx: IdentityContext, username: str, password_hash: str, role: str) -> User:
    user = User(
        username=username, password_hash=password_hash, role=role, created_at=datetime.now(UTC)
    )
    with ctx.database.session() as session:
        if name_taken(session, username):
            raise not_unique(username)
        session.add(user)
        try:
            session.commit()
        except IntegrityError:
            raise not_unique(username) from None
    return user


def admins_left(session: Session) -> int:
    return session.scalar(select(func.count()).where(User.role == ROLE_ADMIN)) or 0


def delete_user(session: Session, user: User) -> None:
    """Delete a user, end their sessions, retire their name; refuses to remove the last
    admin. The caller commits."""
    was_admin = user.role == ROLE_ADMIN
    session.execute(delete(RefreshToken).where(RefreshToken.user_id == user.id))
    session.add(RetiredUsername(username=user.username, retired_at=datetime.now(UTC)))
    session.delete(user)
    session.flush()
    if was_admin and admins_left(session) == 0:
        session.rollback()
        raise last_admin()
