"""The local gateway authorizes as the deployed API does (`modelfn serve --auth iam|jwt`).

One local deployment (moto S3, a real function process, the gateway) runs with IAM; a second
gateway over the same function process runs with JWT. Clients sign with botocore's SigV4 signer
and mint RS256 tokens with PyJWT, as real callers of the deployed API do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from modelfn.api_routes import route_table
from modelfn.registry import load_registry
from modelfn.store import LocalStore, publish_artifact
from tests.log_hygiene import remember_secret
from tests.support.manifests import linear_onnx_graph, write_artifact
from tools.cli import build_parser
from tools.local.auth import (
    AUTH_MODES,
    SIGNATURE_MISMATCH,
    UNKNOWN_KEY,
    Allowed,
    IamAuthorizer,
    JwtAuthorizer,
    LocalCredentials,
    LocalJwtIssuer,
    local_authorizer,
    sign_request,
)
from tools.local.deployment import LocalDeployment, local_deployment
from tools.local.gateway import Gateway

MODEL = "cifar10-cnn"
CREDENTIALS = LocalCredentials.generate()
SESSION = LocalCredentials("ASIA" + "B" * 16, "session-secret", session_token="session-token-value")
# The log-hygiene scan (tests/log_hygiene.py) looks for these values in everything logged.
for _name, _value in (
    ("local IAM secret key", CREDENTIALS.secret_key),
    ("local session secret key", SESSION.secret_key),
    ("local session token", "session-token-value"),
):
    remember_secret(_name, _value)
# Every route the deployed API has, health included: all of them are authorized there.
GETS = [
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    f"/v2/models/{MODEL}",
    f"/v2/models/{MODEL}/ready",
]
INFER = {
    "inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.0] * 3072}]
}


@pytest.fixture(scope="module")
def iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    root = tmp_path_factory.mktemp("auth")
    store = LocalStore(root / "store")
    publish_artifact(store, write_artifact(root / "build", onnx=linear_onnx_graph()[0]))
    authorizer = IamAuthorizer([CREDENTIALS, SESSION])
    with local_deployment(
        load_registry(),
        store,
        models=[MODEL],
        log_dir=root / "logs",
        authorizer=authorizer,
        playground=False,  # as on an IAM stage: no browser can sign a page load
    ) as running:
        yield running


@pytest.fixture(scope="module")
def jwt_gateway(iam: LocalDeployment) -> Iterator[tuple[str, LocalJwtIssuer]]:
    issuer = LocalJwtIssuer()
    authorizer = JwtAuthorizer(issuer.public_key, issuer.issuer, [issuer.audience])
    gateway = Gateway(route_table([MODEL]), iam.functions, authorizer=authorizer)
    gateway.start()
    try:
        yield gateway.url, issuer
    finally:
        gateway.stop()


def _signed(
    method: str, url: str, body: bytes = b"", credentials: LocalCredentials = CREDENTIALS, **kw: str
) -> httpx.Response:
    headers = sign_request(
        credentials, method, url, body=body, headers={"content-type": "application/json"}, **kw
    )
    return httpx.request(method, url, content=body, headers=headers, timeout=30)


# --- IAM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GETS)
def test_iam_signed_get_reaches_the_function_and_unsigned_is_forbidden(
    iam: LocalDeployment, path: str
) -> None:
    assert _signed("GET", iam.url + path).status_code == 200
    unsigned = httpx.get(iam.url + path, timeout=30)
    assert unsigned.status_code == 403 and unsigned.json() == {"message": "Forbidden"}


def test_iam_signed_post_with_a_query_and_session_credentials(iam: LocalDeployment) -> None:
    import json

    body = json.dumps(INFER).encode()
    url = f"{iam.url}/v2/models/{MODEL}/infer?b=2&a=1"
    assert _signed("POST", url, body).json()["outputs"][0]["shape"] == [1, 10]
    assert _signed("POST", url, body, credentials=SESSION).status_code == 200
    # The session token is part of the credential: without it (or another) the key is refused.
    headers = sign_request(SESSION, "POST", url, body=body)
    headers["X-Amz-Security-Token"] = "another-token"
    refused = httpx.post(url, content=body, headers=headers, timeout=30)
    assert refused.status_code == 403


def test_iam_refuses_a_changed_body_path_or_secret(iam: LocalDeployment) -> None:
    url = f"{iam.url}/v2/models/{MODEL}/infer"
    headers = sign_request(
        CREDENTIALS,
        "POST",
        url,
        body=b'{"inputs": []}',
        headers={"content-type": "application/json"},
    )
    tampered = httpx.post(url, content=b'{"inputs": [1]}', headers=headers, timeout=30)
    assert tampered.status_code == 403 and tampered.json() == {"message": SIGNATURE_MISMATCH}
    headers = sign_request(CREDENTIALS, "GET", f"{iam.url}/v2/health/live")
    moved = httpx.get(f"{iam.url}/v2/health/ready", headers=headers, timeout=30)
    assert moved.status_code == 403 and moved.json() == {"message": SIGNATURE_MISMATCH}
    wrong_secret = LocalCredentials(CREDENTIALS.access_key, "not-the-secret")
    assert _signed("GET", f"{iam.url}/v2/health/live", credentials=wrong_secret).json() == {
        "message": SIGNATURE_MISMATCH
    }
    stranger = LocalCredentials.generate()
    refused = _signed("GET", f"{iam.url}/v2/health/live", credentials=stranger)
    assert refused.status_code == 403 and refused.json() == {"message": UNKNOWN_KEY}


def test_iam_refuses_another_service_or_region(iam: LocalDeployment) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{iam.url}/v2/health/live"
    for service, region in (("lambda", "us-east-1"), ("execute-api", "eu-west-1")):
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(
            Credentials(CREDENTIALS.access_key, CREDENTIALS.secret_key), service, region
        ).add_auth(request)
        response = httpx.get(url, headers=dict(request.headers.items()), timeout=30)
        assert (
            response.status_code == 403
            and "Credential should be scoped" in response.json()["message"]
        )


def test_iam_refuses_a_signature_older_than_five_minutes() -> None:
    # The authorizer's clock moved 5 min 1 s past the signing time; 4 min 59 s still passes.
    url = "http://127.0.0.1:1/v2/health/live"
    headers = sign_request(CREDENTIALS, "GET", url)
    signed_at = (
        datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    )
    late = IamAuthorizer([CREDENTIALS], clock=lambda: signed_at + 301)
    answer = late.authorize("GET", "/v2/health/live", "", headers, b"")
    assert answer[0] == 403 and b"Signature expired" in answer[2]
    in_time = IamAuthorizer([CREDENTIALS], clock=lambda: signed_at + 299)
    assert (
        in_time.authorize("GET", "/v2/health/live", "", headers, b"").context["iam"]["accessKey"]
        == CREDENTIALS.access_key
    )


def test_iam_unknown_route_is_still_the_404(iam: LocalDeployment) -> None:
    # API Gateway matches the route before it authorizes: no route, no authorizer.
    response = httpx.get(f"{iam.url}/v2/models/other/ready", timeout=30)
    assert response.status_code == 404 and response.json() == {"message": "Not Found"}


def test_iam_docs_stay_open_for_the_browser(iam: LocalDeployment) -> None:
    assert httpx.get(f"{iam.url}/openapi.json", timeout=30).status_code == 200


def test_iam_refuses_the_playground_as_the_synth_does(tmp_path: Path) -> None:
    # Refused before anything starts: the store is not even read.
    with (
        pytest.raises(
            ValueError, match=r"playground cannot work behind auth iam: a browser cannot"
        ),
        local_deployment(
            load_registry(), LocalStore(tmp_path), authorizer=IamAuthorizer([CREDENTIALS])
        ),
    ):
        pass


# --- JWT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GETS)
def test_jwt_valid_token_reaches_the_function_and_none_is_unauthorized(
    jwt_gateway: tuple[str, LocalJwtIssuer], path: str
) -> None:
    url, issuer = jwt_gateway
    ok = httpx.get(url + path, headers={"authorization": f"Bearer {issuer.mint()}"}, timeout=30)
    assert ok.status_code == 200
    missing = httpx.get(url + path, timeout=30)
    assert missing.status_code == 401 and missing.json() == {"message": "Unauthorized"}


def test_jwt_post_without_the_bearer_prefix(jwt_gateway: tuple[str, LocalJwtIssuer]) -> None:
    url, issuer = jwt_gateway
    response = httpx.post(
        f"{url}/v2/models/{MODEL}/infer",
        json=INFER,
        headers={"authorization": issuer.mint()},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["outputs"][0]["shape"] == [1, 10]


def _bad_tokens(issuer: LocalJwtIssuer) -> list[tuple[str, str]]:
    """(what the www-authenticate header must say, token)"""
    other = LocalJwtIssuer(issuer.issuer, issuer.audience)
    now = int(time.time())
    hs256 = {"iss": issuer.issuer, "aud": issuer.audience, "exp": now + 60}
    return [
        ("the token has expired", issuer.mint(iat=now - 7200, exp=now - 60)),
        ("the token signature is invalid", other.mint()),
        ("the token does not have a valid audience", issuer.mint(aud="someone-else")),
        ("the token does not have a valid issuer", issuer.mint(iss="https://elsewhere.example/")),
        ("the token is not valid yet", issuer.mint(nbf=now + 600)),
        ("the token is invalid", "not.a.jwt"),
        # A symmetric algorithm is refused whatever its key: only RS256 is accepted.
        ("the token is invalid", jwt.encode(hs256, "k" * 32, algorithm="HS256")),
    ]


def test_jwt_bad_tokens_are_401_with_the_reason(jwt_gateway: tuple[str, LocalJwtIssuer]) -> None:
    url, issuer = jwt_gateway
    for reason, token in _bad_tokens(issuer):
        response = httpx.get(
            f"{url}/v2/health/ready", headers={"authorization": f"Bearer {token}"}, timeout=30
        )
        assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}, (
            reason
        )
        challenge = response.headers["www-authenticate"]
        assert (
            challenge.startswith('Bearer scope="" error="invalid_token"') and reason in challenge
        ), challenge


def test_jwt_client_id_stands_in_for_a_missing_audience(
    jwt_gateway: tuple[str, LocalJwtIssuer],
) -> None:
    url, issuer = jwt_gateway
    token = issuer.mint(aud=None, client_id=issuer.audience)
    assert (
        httpx.get(f"{url}/v2/health/live", headers={"authorization": token}, timeout=30).status_code
        == 200
    )


class _Recorder:
    """Stands in for a function process: keeps each event, answers 200."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}


def test_the_identity_reaches_the_event_as_api_gateway_puts_it() -> None:
    issuer, recorder = LocalJwtIssuer(), _Recorder()
    authorizer = JwtAuthorizer(issuer.public_key, issuer.issuer, [issuer.audience])
    gateway = Gateway(route_table([MODEL]), {MODEL: recorder}, authorizer=authorizer)  # type: ignore[dict-item]
    gateway.start()
    try:
        token = issuer.mint(subject="ada", scope="read write")
        assert (
            httpx.get(f"{gateway.url}/v2", headers={"authorization": f"Bearer {token}"}).status_code
            == 200
        )
    finally:
        gateway.stop()
    jwt_context = recorder.events[-1]["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["sub"] == "ada" and jwt_context["scopes"] == ["read", "write"]
    iam = IamAuthorizer([CREDENTIALS]).authorize(
        "GET", "/v2", "", sign_request(CREDENTIALS, "GET", "http://h:1/v2"), b""
    )
    assert isinstance(iam, Allowed) and iam.context["iam"]["accessKey"] == CREDENTIALS.access_key


# --- `modelfn serve --auth` -----------------------------------------------------------------


def test_serve_defaults_to_no_auth_so_make_demo_is_unchanged() -> None:
    assert build_parser().parse_args(["serve"]).auth == "none"
    for mode in AUTH_MODES:
        assert build_parser().parse_args(["serve", "--auth", mode]).auth == mode
    assert local_authorizer("none") == (None, [])


def test_serve_auth_iam_takes_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELFN_GATEWAY_ACCESS_KEY_ID", "AKIALOCALEXAMPLE0001")
    monkeypatch.setenv("MODELFN_GATEWAY_SECRET_ACCESS_KEY", "local-secret")
    authorizer, lines = local_authorizer(build_parser().parse_args(["serve", "--auth", "iam"]).auth)
    assert (
        isinstance(authorizer, IamAuthorizer)
        and authorizer.credentials[0].access_key == "AKIALOCALEXAMPLE0001"
    )
    assert not any("local-secret" in line for line in lines)  # a given secret is never printed
    monkeypatch.delenv("MODELFN_GATEWAY_SECRET_ACCESS_KEY")
    with pytest.raises(ValueError, match="MODELFN_GATEWAY_SECRET_ACCESS_KEY"):
        local_authorizer("iam")


def test_serve_auth_jwt_prints_a_token_it_accepts() -> None:
    authorizer, lines = local_authorizer("jwt")
    token = next(line for line in lines if "Bearer " in line).rsplit("Bearer ", 1)[1]
    assert authorizer is not None
    assert not hasattr(
        authorizer.authorize("GET", "/v2", "", {"authorization": token}, b""), "status"
    )
