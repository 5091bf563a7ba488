"""The HTTP API's JWT authorizer, emulated: HS256 tokens signed with `LOCAL_JWT_SECRET`.

In AWS the authorizer checks the token's signature against the issuer's keys and then its claims: `exp` must
be after the current time, `nbf` and `iat` before it, `iss`/`aud` must match, and a route's scopes must be in
`scope`/`scp` (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html,
"Authorizing API requests with a JWT authorizer"). A token without `exp` cannot pass "exp must be after the
current time", so it is refused here too (it used to be accepted: a token that never expires). The handler
gets the claims as `requestContext.authorizer.jwt.claims` with every value turned into a string (numbers as
digits, lists as `[a b]`). A request without a usable token never reaches the function: API Gateway answers
401 `{"message":"Unauthorized"}` itself, and 403 `{"message":"Forbidden"}` to a valid token without any of the
route's `AuthorizationScopes` (read from the `scope` or `scp` claim). The same happens here.

The merchant claim is checked here as well: it must be a JSON string (`null`, `true`, numbers, lists and
objects are refused, 401). Stringified they would become tenants named "null"/"true"/"[a b]". AWS's docs do
not say what API Gateway does with such values, so in AWS the identity provider must issue the claim as a
string (a Cognito custom attribute of type String); locally, where we mint the tokens, the emulator refuses
anything else. Its text rules (no NUL, no lone surrogate, no edge whitespace) are the layer's, in AWS and
here (genjobs.http.resolver.merchant_id_from).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

ISSUER = "genjobs-local"
DEFAULT_TOKEN_HOURS = 12.0
UNAUTHORIZED_BODY = b'{"message":"Unauthorized"}'


def issue_token(merchant_id: str, *, secret: str, merchant_claim: str = "merchant_id",
                hours: float = DEFAULT_TOKEN_HOURS, extra_claims: Mapping[str, Any] | None = None,
                now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": f"local-user-{merchant_id}",
        merchant_claim: merchant_id,
        "iat": issued,
        "exp": issued + int(hours * 3600),
        "token_use": "access",
    }
    claims.update(extra_claims or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def _claim_string(value: Any) -> str:
    """How API Gateway's JWT authorizer presents a claim value: always a string."""
    if value is None:
        return "null"  # JSON's spelling, never Python's "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(_claim_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass(frozen=True)
class Authorization:
    claims: dict[str, str]
    scopes: list[str] | None


@dataclass(frozen=True)
class Rejection:
    reason: str
    # 401 for a missing or bad token; 403 for a valid token without a scope the route needs, as API Gateway
    # answers (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html)
    status: int = 401

    @property
    def www_authenticate(self) -> str:
        if self.reason == "missing":
            return "Bearer"
        description = self.reason.replace('"', "'")
        return f'Bearer error="invalid_token" error_description="{description}"'


class JwtAuthorizer:
    def __init__(self, secret: str, *, merchant_claim: str = "merchant_id", leeway_seconds: int = 0) -> None:
        self._secret = secret
        self._merchant_claim = merchant_claim
        self._leeway = leeway_seconds

    def authorize(self, authorization_header: str | None, required_scopes: tuple[str, ...] = ()
                  ) -> Authorization | Rejection:
        if not authorization_header or not authorization_header.strip():
            return Rejection("missing")
        token = authorization_header.strip()
        if token[:7].lower() == "bearer ":  # API Gateway takes the token with or without the prefix
            token = token[7:].strip()
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], leeway=self._leeway,
                                options={"verify_aud": False, "require": ["exp"]})
        except jwt.MissingRequiredClaimError:
            return Rejection("the token has no exp claim")
        except jwt.ExpiredSignatureError:
            return Rejection("the token has expired")
        except jwt.ImmatureSignatureError:
            return Rejection("the token is not valid yet")
        except jwt.InvalidTokenError as exc:
            return Rejection(f"invalid token: {type(exc).__name__}")
        if not isinstance(claims, dict):
            return Rejection("invalid token: claims are not an object")
        merchant = claims.get(self._merchant_claim)
        if self._merchant_claim in claims and not isinstance(merchant, str):
            return Rejection(f"the {self._merchant_claim} claim is not a string")
        scopes = _scopes(claims)
        if required_scopes and not set(required_scopes) & set(scopes or []):
            return Rejection("the token lacks the required scope", status=403)
        return Authorization(claims={k: _claim_string(v) for k, v in claims.items()},
                             scopes=scopes if required_scopes else None)


def _scopes(claims: Mapping[str, Any]) -> list[str] | None:
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list):
        return [str(s) for s in raw]
    return None
