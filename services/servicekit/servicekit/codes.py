"""The envelope's `code` space, shared by the services and the gateway (docs/error-codes.md).

The number goes in the body's `code`, the member name in `codemessage`; one name per number
and one number per name. The HTTP status is chosen separately (the semantic one), so these
numbers never become status lines.

The second seed's table is kept as it is (200-207, 400-409, 500). The services' own additions
live in 410-419 and 510-519; 420-429 and 520-529 are the gateway's, and the services use one
of those only where its meaning is exactly what happened (a framework-level "no such route").
"""

from enum import IntEnum, unique


@unique
class ResponseCode(IntEnum):
    # The second seed's table.
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
    # The services' additions.
    LoginThrottled = 410
    RegistrationThrottled = 411
    UnsupportedMediaType = 412
    ServiceBusy = 510
    NotReady = 511
    # The gateway's codes that a service answers with the same meaning.
    BadRequest = 420
    RouteNotFound = 421
    MethodNotAllowed = 422
    PayloadTooLarge = 424
