"""The second seed's custom response code table.

The number goes in the body's `code`, the member name in `codemessage`. The HTTP status is
chosen separately (the semantic one), so these numbers never become status lines.
"""

from enum import IntEnum


class ResponseCode(IntEnum):
    LoginSuccess = 200
    TokenRefreshed = 201
    TokenRevoked = 202
    DataFound = 203
    DataCreated = 204
    DataDeleted = 205
    DataUpdated = 206
    FileUploaded = 207
    BadLoginRequest = 400
    UserNotFound = 401
    BadTokenRequest = 402
    ValidationError = 403
    EmptySequence = 404
    Unauthorized = 405
    ObjectNotFound = 406
    ObjectNotUpdated = 407
    NotUnique = 408
    Restricted = 409
    UndefinedServerException = 500
