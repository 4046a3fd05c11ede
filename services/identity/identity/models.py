"""The identity schema. Migrations in identity/migrations must match it (a test checks)."""

from __future__ import annotations

from datetime import datetime

from servicekit.database import NAMING_CONVENTION
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLE_USER = "user"
ROLE_ADMIN = "admin"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    """One issued refresh token. Only its SHA-256 is stored; the family links rotations."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean)
    # When the login that started this family stops being renewable, whatever the rotations.
    session_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetiredUsername(Base):
    """A deleted user's name, never handed out again: the profiles service (and anything
    else) keys data by username, so a newcomer with that name would inherit it."""

    __tablename__ = "retired_usernames"

    username: Mapped[str] = mapped_column(String(32), primary_key=True)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
