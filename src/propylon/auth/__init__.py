"""JWT authentication (secret, PEM public key, JWKS) and route authorization.

``Authenticator.authenticate`` turns a request's ``Authorization`` header values into a
``Principal`` or raises ``AuthFailure`` (401); ``authorize`` checks the principal against a
route's ``AuthRequirement`` (False -> 403).
"""

from propylon.auth.authenticator import Authenticator
from propylon.auth.failures import AuthFailure, KeyRefreshNeeded
from propylon.auth.principal import Principal
from propylon.auth.requirements import authorize

__all__ = ["AuthFailure", "Authenticator", "KeyRefreshNeeded", "Principal", "authorize"]
