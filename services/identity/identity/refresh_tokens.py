"""Refresh tokens: opaque, stored hashed, rotated on every use, revoked as a family.

A refresh token is good for one use. Presenting one that was already used means a copy
exists somewhere else, so the whole family (every token descended from that login) is
revoked and both holders must log in again.

Each rotation grants at most `ttl_seconds` more, and never past the family's session end,
`session_seconds` after the login: a session has to end, however often it is refreshed.
Spent tokens are kept while they could still be presented (they reveal a copy), and
`purge` deletes what can no longer matter: expired tokens and revoked families.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from servicekit import ResponseCode, ServiceError
from servicekit.database import as_utc
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from identity.models import RefreshToken, User


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _refused(message: str) -> ServiceError:
    return ServiceError(401, ResponseCode.BadTokenRequest, message)


@dataclass(frozen=True, slots=True)
class RefreshTokenStore:
    ttl_seconds: int
    session_seconds: int

    def issue(
        self,
        session: Session,
        user_id: int,
        now: datetime,
        family_id: str = "",
        session_end: datetime | None = None,
    ) -> str:
        """A token for a new login (no family given), or the next one of a family."""
        token = secrets.token_urlsafe(32)
        ends = session_end or now + timedelta(seconds=self.session_seconds)
        session.add(
            RefreshToken(
                token_hash=token_digest(token),
                family_id=family_id or uuid.uuid4().hex,
                user_id=user_id,
                issued_at=now,
                expires_at=min(now + timedelta(seconds=self.ttl_seconds), ends),
                used_at=None,
                revoked=False,
                session_expires_at=ends,
            )
        )
        return token

    def rotate(self, session: Session, token: str, now: datetime) -> tuple[User, str]:
        """Spend `token` and return its user and a new token of the same family.

        The caller commits. On reuse the family's revocation is committed here, before the
        refusal is raised, so the rollback that follows the error cannot undo it.
        """
        record = session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
        )
        if record is None or record.revoked:
            raise _refused("The refresh token is not valid.")
        if record.used_at is not None:
            self._revoke_family(session, record.family_id)
            session.commit()
            raise _refused("The refresh token was already used; its sessions are revoked.")
        if as_utc(record.session_expires_at) <= now:
            raise _refused("The session has reached its maximum lifetime; log in again.")
        if as_utc(record.expires_at) <= now:
            raise _refused("The refresh token has expired.")
        # Conditional update: of two concurrent uses of one token, exactly one wins.
        spent = session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == record.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
        )
        if getattr(spent, "rowcount", 0) != 1:
            session.rollback()
            self._revoke_family(session, record.family_id)
            session.commit()
            raise _refused("The refresh token was already used; its sessions are revoked.")
        user = session.get(User, record.user_id)
        if user is None:
            raise _refused("The refresh token is not valid.")
        session_end = as_utc(record.session_expires_at)
        return user, self.issue(session, user.id, now, record.family_id, session_end)

    def revoke(self, session: Session, token: str) -> None:
        family = session.scalar(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == token_digest(token))
        )
        if family is not None:
            self._revoke_family(session, family)

    @staticmethod
    def revoke_user(session: Session, user_id: int) -> None:
        """End every session of a user ("log out everywhere", password change or reset)."""
        session.execute(
            update(RefreshToken).where(RefreshToken.user_id == user_id).values(revoked=True)
        )

    @staticmethod
    def purge(session: Session, now: datetime) -> int:
        """Delete expired tokens and revoked families; returns how many rows went.

        Presenting any of them is refused the same way with or without its row: an expired
        token is past use, and a revoked family is already ended.
        """
        result = session.execute(
            delete(RefreshToken).where(
                or_(RefreshToken.expires_at <= now, RefreshToken.revoked.is_(True))
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    @staticmethod
    def _revoke_family(session: Session, family_id: str) -> None:
        session.execute(
            update(RefreshToken).where(RefreshToken.family_id == family_id).values(revoked=True)
        )
