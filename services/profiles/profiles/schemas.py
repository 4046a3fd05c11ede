"""Request bodies. Constraint messages become the seed's validation shape (servicekit)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from servicekit.validation import RequestBody

DisplayName = Annotated[str, Field(min_length=1, max_length=100)]
Bio = Annotated[str, Field(max_length=1000)]
Location = Annotated[str, Field(max_length=100)]


class NewProfile(RequestBody):
    # Unknown fields (an `owner`, say) are refused rather than silently dropped (RequestBody).
    display_name: DisplayName
    bio: Bio = ""
    location: Location = ""


class ProfileChanges(RequestBody):
    display_name: DisplayName | None = None
    bio: Bio | None = None
    location: Location | None = None
