"""The deployed API's authorization, enforced by the local gateway (`modelfn serve --auth`).

The HTTP API authorizes every route before it invokes a function (infra/constructs/inference_api.py,
cdk.json's `modelfn:auth`); these classes do the same on 127.0.0.1, so a client that works
against `modelfn serve --auth iam|jwt` signs or carries its token as it must for the deployed API:

- `IamAuthorizer`: SigV4 (service `execute-api`). The signature is recomputed with botocore's own
  `SigV4Auth` over the canonical request, for credentials the gateway knows (`LocalCredentials`:
  generated and printed at start, or taken from the environment). What IAM policy evaluation adds
  when deployed (`execute-api:Invoke` on the route's ARN) has no local counterpart: every known
  credential may call every route.
- `JwtAuthorizer`: RS256 bearer tokens checked with PyJWT against a local public key (signature,
  `exp`, `nbf`, `iss`, `aud` or else `client_id`), as API Gateway's JWT authorizer checks them
  against its issuer's JWKS. `LocalJwtIssuer` holds the key pair and mints tokens.

A refusal is answered as the HTTP API answers it: IAM 403 with a `{"message": ...}` body (the
unsigned case says "Forbidden"; the others say what AWS says, e.g. "The request signature we
calculated does not match the signature you provided. ..."), JWT 401 `{"message":"Unauthorized"}`
with a `www-authenticate` header that names the problem (AWS: "Troubleshooting issues with HTTP
API JWT authorizers"). An accepted request's identity goes into the event's
`requestContext.authorizer` (`iam` or `jwt.claims`), as API Gateway puts it there.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

AuthMode = Literal["iam", "jwt", "none"]
AUTH_MODES: tuple[AuthMode, ...] = ("iam", "jwt", "none")

SERVICE = "execute-api"
# The region a local client signs for (the same one the local S3 uses, tools/local/s3_server.py).
LOCAL_REGION = "us-east-1"
# SigV4 requests more than 5 minutes from the server's clock are refused as replays.
MAX_CLOCK_SKEW_S = 5 * 60
SIGV4_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
ALGORITHM = "AWS4-HMAC-SHA256"
# Where `modelfn serve --auth iam` takes its credentials from instead of generating a pair.
ACCESS_KEY_ENV = "MODELFN_GATEWAY_ACCESS_KEY_ID"
SECRET_KEY_ENV = "MODELFN_GATEWAY_SECRET_ACCESS_KEY"
SESSION_TOKEN_ENV = "MODELFN_GATEWAY_SESSION_TOKEN"

JWT_ISSUER = "https://tools.local/"
JWT_AUDIENCE = "modelfn-local"
JWT_TTL_S = 3600

# What API Gateway answers (AWS re:Post "troubleshoot signature mismatch errors ... SigV4").
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY = "The security token included in the request is invalid."


class Answer(NamedTuple):
    """A refusal: what the gateway sends instead of invoking the function."""

    status: int
    headers: dict[str, str]
    body: bytes


class Allowed(NamedTuple):
    """An accepted request: what goes into the event's `requestContext.authorizer`."""

    context: dict[str, Any]


class Authorizer(Protocol):
    """Decides one request, before the gateway builds its event."""

    # The deployed auth it stands for (cdk.json's modelfn:auth): the gateway asks
    # modelfn.api_routes.skips_authorizer with it, as the CDK API does.
    @property
    def mode(self) -> AuthMode: ...

    def authorize(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Allowed | Answer: ...


def _refuse(status: int, message: str, extra: dict[str, str] | None = None) -> Answer:
    headers = {"content-type": "application/json", **(extra or {})}
    return Answer(status, headers, json.dumps({"message": message}).encode())


# --- IAM (SigV4) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCredentials:
    """An access key the local gateway accepts; with `session_token`, a temporary one."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def generate(cls) -> LocalCredentials:
        # The shapes of real keys (AKIA + 16, 40 characters), so clients' validators accept them.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return cls(
            "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30)
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalCredentials | None:
        """The pair in MODELFN_GATEWAY_ACCESS_KEY_ID / _SECRET_ACCESS_KEY (and _SESSION_TOKEN), if set."""
        env = os.environ if env is None else env
        key, secret = env.get(ACCESS_KEY_ENV), env.get(SECRET_KEY_ENV)
        if not key and not secret:
            return None
        if not key or not secret:
            raise ValueError(
                f"set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither (a pair is then generated)"
            )
        return cls(key, secret, env.get(SESSION_TOKEN_ENV) or None)


@dataclass
class IamAuthorizer:
    """SigV4 for service execute-api in `region`, for the given credentials only."""

    mode: ClassVar[AuthMode] = "iam"
    credentials: list[LocalCredentials]
    region: str = LOCAL_REGION
    clock: Any = time.time  # seconds since the epoch; a test may move it

    def authorize(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Allowed | Answer:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get("authorization", "")
        if not header:
            # Unsigned: the HTTP API's IAM authorizer says only this.
            return _refuse(403, "Forbidden")
        parsed = _parse_sigv4(header)
        if parsed is None:
            return _refuse(
                403,
                f"Authorization header requires '{ALGORITHM} Credential=..., SignedHeaders=..., Signature=...'",
            )
        access_key, date, region, service, terminator = parsed["scope"]
        known = {c.access_key: c for c in self.credentials}
        if access_key not in known:
            return _refuse(403, UNKNOWN_KEY)
        stamp = lowered.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(stamp, SIGV4_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            return _refuse(
                403, "Authorization header requires an X-Amz-Date header (YYYYMMDD'T'HHMMSS'Z')"
            )
        if date != stamp[:8] or service != SERVICE or terminator != "aws4_request":
            return _refuse(
                403, f"Credential should be scoped to a valid date, region and service {SERVICE}"
            )
        if region != self.region:
            return _refuse(
                403,
                f"Credential should be scoped to a valid region, not '{region}'; expecting '{self.region}'",
            )
        now = self.clock()
        if abs(now - signed_at) > MAX_CLOCK_SKEW_S:
            limit = datetime.fromtimestamp(now - MAX_CLOCK_SKEW_S, UTC).strftime(SIGV4_TIME_FORMAT)
            return _refuse(
                403, f"Signature expired: {stamp} is now earlier than {limit} (5 minutes)"
            )
        credentials = known[access_key]
        if (
            credentials.session_token is not None
            and lowered.get("x-amz-security-token") != credentials.session_token
        ):
            return _refuse(403, UNKNOWN_KEY)
        signed_names = parsed["signed_headers"].split(";")
        if "host" not in signed_names or any(name not in lowered for name in signed_names):
            return _refuse(403, SIGNATURE_MISMATCH)
        expected = _sigv4_signature(
            credentials,
            self.region,
            stamp,
            method,
            path,
            query,
            {n: lowered[n] for n in signed_names},
            body,
        )
        if not hmac.compare_digest(expected, parsed["signature"]):
            return _refuse(403, SIGNATURE_MISMATCH)
        return Allowed(
            {
                "iam": {
                    "accessKey": access_key,
                    "accountId": "123456789012",  # the account the local events carry (events.py)
                    "callerId": access_key,
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": "arn:aws:iam::123456789012:user/modelfn-local",
                    "userId": access_key,
                }
            }
        )


def _parse_sigv4(header: str) -> dict[str, Any] | None:
    """`AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or not fields.get("SignedHeaders") or not fields.get("Signature"):
        return None
    return {
        "scope": scope,
        "signed_headers": fields["SignedHeaders"],
        "signature": fields["Signature"],
    }


def _sigv4_signature(
    credentials: LocalCredentials,
    region: str,
    stamp: str,
    method: str,
    path: str,
    query: str,
    signed_headers: dict[str, str],
    body: bytes,
) -> str:
    """The signature botocore's SigV4Auth computes for this request at `stamp`: the same code signs
    the clients' requests, so what differs here is what the request really carried."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = signed_headers["host"]
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=signed_headers)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(
        Credentials(credentials.access_key, credentials.secret_key, credentials.session_token),
        SERVICE,
        region,
    )
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def sign_request(
    credentials: LocalCredentials,
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    region: str = LOCAL_REGION,
) -> dict[str, str]:
    """The headers to send for a SigV4-signed request (a client's side, with botocore's signer)."""
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    # The Host header is signed; set it here so the client sends exactly the value signed.
    sent = {"host": urlsplit(url).netloc, **(headers or {})}
    request = AWSRequest(method=method, url=url, data=body, headers=sent)
    signer = SigV4Auth(
        Credentials(credentials.access_key, credentials.secret_key, credentials.session_token),
        SERVICE,
        region,
    )
    signer.add_auth(request)
    return dict(request.headers.items())


# --- JWT --------------------------------------------------------------------------------------


class LocalJwtIssuer:
    """An RSA key pair standing in for an OIDC issuer: the gateway verifies, tests mint."""

    def __init__(self, issuer: str = JWT_ISSUER, audience: str = JWT_AUDIENCE) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.issuer = issuer
        self.audience = audience
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._private_key.public_key()

    def mint(self, *, subject: str = "local-user", ttl_s: int = JWT_TTL_S, **claims: Any) -> str:
        """An RS256 token for this issuer and audience; `claims` add to or override the defaults."""
        import jwt

        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_s,
            **claims,
        }
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not None},
            self._private_key,
            algorithm="RS256",
        )


@dataclass
class JwtAuthorizer:
    """API Gateway's JWT authorizer, with `$request.header.Authorization` as identity source."""

    mode: ClassVar[AuthMode] = "jwt"
    public_key: Any
    issuer: str
    audience: list[str]

    def authorize(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Allowed | Answer:
        import jwt

        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("authorization", "").strip()
        if not token:
            return _refuse(401, "Unauthorized")
        # API Gateway takes the token with or without its "Bearer " prefix.
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return self._invalid("the token has expired")
        except jwt.ImmatureSignatureError:
            return self._invalid("the token is not valid yet")
        except jwt.InvalidIssuerError:
            return self._invalid("the token does not have a valid issuer")
        except jwt.InvalidSignatureError:
            return self._invalid("the token signature is invalid")
        except jwt.PyJWTError as exc:
            return self._invalid(f"the token is invalid: {exc}")
        # `aud` if present, else `client_id`, must be one of the audiences (API Gateway's rule).
        aud = claims.get("aud", claims.get("client_id"))
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in self.audience for a in auds if isinstance(a, str)):
            return self._invalid("the token does not have a valid audience")
        scopes = str(claims.get("scope", "")).split() or None
        return Allowed(
            {"jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": scopes}}
        )

    @staticmethod
    def _invalid(description: str) -> Answer:
        challenge = f'Bearer scope="" error="invalid_token" error_description="{description}"'
        return _refuse(401, "Unauthorized", {"www-authenticate": challenge})


def local_authorizer(mode: AuthMode) -> tuple[Authorizer | None, list[str]]:
    """The authorizer `modelfn serve --auth MODE` runs, and what to tell its user to call it."""
    if mode == "none":
        return None, []
    if mode == "iam":
        given = LocalCredentials.from_env()
        credentials = given or LocalCredentials.generate()
        source = (
            "from the environment"
            if given
            else f"generated; set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} to choose"
        )
        lines = [
            f"auth iam: SigV4, service {SERVICE}, region {LOCAL_REGION}, clock skew up to {MAX_CLOCK_SKEW_S // 60} min ({source})",
            f"  AWS_ACCESS_KEY_ID={credentials.access_key}",
        ]
        if given is None:
            lines.append(f"  AWS_SECRET_ACCESS_KEY={credentials.secret_key}")
        if credentials.session_token:
            lines.append("  (session credentials: send X-Amz-Security-Token)")
        lines.append(
            f"  e.g. curl --aws-sigv4 'aws:amz:{LOCAL_REGION}:{SERVICE}' --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" URL"
        )
        return IamAuthorizer([credentials]), lines
    issuer = LocalJwtIssuer()
    lines = [
        f"auth jwt: RS256, issuer {issuer.issuer}, audience {issuer.audience} (a key pair made for this run)",
        f"  a token valid for {JWT_TTL_S // 60} min: Authorization: Bearer {issuer.mint()}",
    ]
    return JwtAuthorizer(issuer.public_key, issuer.issuer, [issuer.audience]), lines
