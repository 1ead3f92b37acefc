"""Who may call the HTTP API, how fast, from which browser origin, and under which domain."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from modelfn.registry import REPO_ROOT, Registry, load_registry
from tests.infra.conftest import Synthesized, synthesize
from tests.infra.test_modelfn_stack import logical_id

JWT = {"auth": "jwt", "jwt-issuer": "https://login.example.com/", "jwt-audience": ["modelfn"]}
DOMAIN = {
    "domain-name": "api.example.com",
    "certificate-arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234",
    "cors-origins": ["https://app.example.com"],
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(REPO_ROOT / "models.toml")


@pytest.fixture(scope="module")
def iam(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), stage="prod")


@pytest.fixture(scope="module")
def jwt(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        registry, tmp_path_factory.mktemp("cdk.out"), stage="staging", **JWT, **DOMAIN
    )


@pytest.fixture(scope="module")
def jwt_page(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A JWT stage that turns the playground on: the one place routes open without a token."""
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), playground="jwt", **JWT)


@pytest.fixture(scope="module")
def shipped_dev(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), stage="dev")


@pytest.fixture(scope="module")
def public(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), auth="none")


def routes(synth: Synthesized) -> list[dict[str, Any]]:
    return [r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()]


# The page's own files, written out here rather than read from the route list's `page_file`
# flag: a route marked by mistake (card.json, a plot, predict) must fail the tests below.
PAGE_FILE_KEY = re.compile(r"GET /models/[a-z0-9-]+/(page|static/\{asset\})")


def open_route_keys(synth: Synthesized) -> set[str]:
    """The route keys that answer without any authorizer."""
    return {r["RouteKey"] for r in routes(synth) if r["AuthorizationType"] == "NONE"}


def playground_urls(synth: Synthesized) -> list[str]:
    return [key for key in synth.template.find_outputs("*") if key.endswith("PlaygroundUrl")]


def public_api_warnings(synth: Synthesized) -> list[Any]:
    found: list[Any] = Annotations.from_stack(synth.stack).find_warning(
        "*", Match.string_like_regexp("modelfn:auth is none")
    )
    return found


def stage_props(synth: Synthesized) -> dict[str, Any]:
    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    props: dict[str, Any] = stage["Properties"]
    return props


def test_every_route_needs_a_sigv4_signature_by_default(iam: Synthesized) -> None:
    assert routes(iam)
    assert {r["AuthorizationType"] for r in routes(iam)} == {"AWS_IAM"}
    assert not iam.resources("AWS::ApiGatewayV2::Authorizer")
    assert not iam.resources("AWS::ApiGatewayV2::DomainName")
    # No CORS unless origins are configured: browsers on other sites cannot call it.
    (api,) = iam.resources("AWS::ApiGatewayV2::Api").values()
    assert "CorsConfiguration" not in api["Properties"]


def test_jwt_mode_checks_the_issuer_and_audience_on_every_route(jwt: Synthesized) -> None:
    (authorizer_id, authorizer), *_ = jwt.resources("AWS::ApiGatewayV2::Authorizer").items()
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT"
    assert props["JwtConfiguration"] == {
        "Issuer": "https://login.example.com/",
        "Audience": ["modelfn"],
    }
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert len(jwt.resources("AWS::ApiGatewayV2::Authorizer")) == 1
    for route in routes(jwt):
        assert route["AuthorizationType"] == "JWT"
        assert route["AuthorizerId"] == {"Ref": authorizer_id}


@pytest.mark.parametrize("which", ["iam", "jwt", "jwt_page", "shipped_dev"])
def test_no_route_but_the_page_files_lacks_an_authorizer_on_any_stage(
    which: str, request: pytest.FixtureRequest
) -> None:
    # Only `auth = "none"` (the `public` fixture, explicit and warned) opens the API itself.
    synth: Synthesized = request.getfixturevalue(which)
    assert routes(synth)
    opened = open_route_keys(synth)
    assert all(PAGE_FILE_KEY.fullmatch(key) for key in opened), opened
    assert not any("predict" in key or "/v2" in key for key in opened)


def test_a_jwt_playground_opens_only_the_page_files_and_keeps_the_card_behind_the_token(
    jwt_page: Synthesized, registry: Registry
) -> None:
    (authorizer_id,) = jwt_page.resources("AWS::ApiGatewayV2::Authorizer")
    assert open_route_keys(jwt_page) == {
        f"GET /models/{name}/{file}"
        for name in registry.names()
        for file in ("page", "static/{asset}")
    }
    for route in routes(jwt_page):
        if route["RouteKey"] not in open_route_keys(jwt_page):
            assert route["AuthorizationType"] == "JWT", route["RouteKey"]
            assert route["AuthorizerId"] == {"Ref": authorizer_id}
    keys = {r["RouteKey"] for r in routes(jwt_page)}
    for model_data in ("card.json", "files/{file}", "predict"):
        assert (
            f"{'GET' if model_data != 'predict' else 'POST'} /models/cifar10-cnn/{model_data}"
            in keys
        )
    # The URL the stack prints is the page's (docs/deploy.md, "Stack outputs").
    outputs = jwt_page.template.find_outputs("Cifar10CnnPlaygroundUrl")
    assert "/models/cifar10-cnn/page" in json.dumps(outputs)


def test_only_a_stage_with_a_working_page_prints_its_url(
    jwt_page: Synthesized, iam: Synthesized, shipped_dev: Synthesized, public: Synthesized
) -> None:
    assert len(playground_urls(jwt_page)) == len(jwt_page.stack.functions)
    assert not playground_urls(public)  # auth none, but dev's table keeps playground false
    for synth in (iam, shipped_dev):
        assert not playground_urls(synth)
        assert not any("/page" in key for key in (r["RouteKey"] for r in routes(synth)))


def test_none_is_explicit_and_warned_about_at_synth(public: Synthesized) -> None:
    assert {r["AuthorizationType"] for r in routes(public)} == {"NONE"}
    assert public_api_warnings(public)


def test_the_other_modes_raise_no_public_api_warning(iam: Synthesized, jwt: Synthesized) -> None:
    for synth in (iam, jwt):
        assert not public_api_warnings(synth)


@pytest.mark.parametrize("which", ["iam", "jwt", "public"])
def test_the_stage_throttles_and_logs_every_request_as_json(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    settings = synth.stack.settings
    props = stage_props(synth)
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": settings.throttle_rate,
        "ThrottlingBurstLimit": settings.throttle_burst,
    }
    access = props["AccessLogSettings"]
    # The log group's ARN without the ":*" of its Arn attribute, as API Gateway stores it: with
    # the suffix, CloudFormation reports the stage as drifted forever (aws-cdk issue 38796).
    parts = access["DestinationArn"]["Fn::Join"][1]
    assert parts[-1] == {"Ref": logical_id(synth.stack.api.access_logs)}
    assert ":logs:" in "".join(p for p in parts if isinstance(p, str))
    assert parts[-2].endswith(":log-group:")
    assert {"requestId", "routeKey", "status", "caller"} <= set(json.loads(access["Format"]))
    log_group = synth.resources("AWS::Logs::LogGroup")[logical_id(synth.stack.api.access_logs)]
    assert log_group["Properties"]["RetentionInDays"] == settings.log_retention_days


def test_stages_throttle_by_their_own_limits(iam: Synthesized, public: Synthesized) -> None:
    # prod and dev (the `public` fixture) come from different stage tables in cdk.json.
    assert stage_props(iam)["DefaultRouteSettings"]["ThrottlingRateLimit"] == 500
    assert stage_props(public)["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50


def test_cors_allows_only_the_configured_origins_and_signing_headers(jwt: Synthesized) -> None:
    (api,) = jwt.resources("AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["https://app.example.com"]
    assert sorted(cors["AllowMethods"]) == ["GET", "POST"]
    assert {"authorization", "content-type", "x-amz-date"} <= set(cors["AllowHeaders"])


def test_a_custom_domain_uses_its_certificate_and_tls_1_2(jwt: Synthesized) -> None:
    (domain,) = jwt.resources("AWS::ApiGatewayV2::DomainName").values()
    props = domain["Properties"]
    assert props["DomainName"] == "api.example.com"
    (config,) = props["DomainNameConfigurations"]
    assert config["CertificateArn"] == DOMAIN["certificate-arn"]
    assert config["SecurityPolicy"] == "TLS_1_2"
    (mapping,) = jwt.resources("AWS::ApiGatewayV2::ApiMapping").values()
    assert mapping["Properties"]["ApiId"] == {"Ref": logical_id(jwt.stack.api.http_api)}
    jwt.template.has_output("CustomDomainUrl", {"Value": "https://api.example.com"})
    jwt.template.has_output("CustomDomainTarget", {})
