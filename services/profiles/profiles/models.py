"""The profiles schema. Migrations in profiles/migrations must match it (a test checks)."""

from __future__ import annotations

from datetime import datetime

from servicekit.database import NAMING_CONVENTION
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Profile(Base):
    __tablename__ = "profiles"
    # SQLite would otherwise hand a deleted profile's id to the next one (PostgreSQL's
    # sequences never reuse): a stale link or cached id must not find someone else's profile.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(100))
    bio: Mapped[str] = mapped_column(String(1000))
    location: Mapped[str] = mapped_column(String(100))
    # The avatar file's name inside the media directory (never a client-chosen name).
    avatar_file: Mapped[str | None] = mapped_column(String(80))
    avatar_type: Mapped[str | None] = mapped_column(String(32))
    avatar_size: Mapped[int | None] = mapped_column(BigInteger)
    avatar_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
