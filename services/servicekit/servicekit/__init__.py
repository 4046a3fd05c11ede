"""What propylon's reference services share: the seed's response envelope and code table,
the conversion of validation failures into the seed's shape, and start-up helpers."""

from servicekit.codes import ResponseCode
from servicekit.envelope import ServiceError, envelope, envelope_body

__all__ = ["ResponseCode", "ServiceError", "envelope", "envelope_body"]
