"""Who is calling: the username the gateway puts in the identity header.

The services sit on an internal network behind the gateway, which removes any client-sent
copy of this header before setting it from a verified token; so its presence is the proof of
authentication here. A request without it did not come through an authenticated route.
"""

from __future__ import annotations

import re

from servicekit.codes import ResponseCode
from servicekit.envelope import ServiceError

DEFAULT_USER_HEADER = "User"

# Token subjects are usernames; anything else in the header is refused rather than stored.
_PLAUSIBLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def caller_name(value: str | None) -> str:
    if value is None or not _PLAUSIBLE_NAME.fullmatch(value):
        raise ServiceError(
            401, ResponseCode.Unauthorized, "The request carries no authenticated user identity."
        )
    return value
