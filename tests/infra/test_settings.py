"""Deployment settings from the CDK context: each stage is complete, bad values name their key."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs

from infra.settings import SettingsError, settings_from_context
from modelfn.stages import STAGES_KEY, StageError, stage_target
from tests.infra.conftest import cdk_json_context, settings_for, stage_context

STAGES = ["dev", "staging", "prod"]


@pytest.mark.parametrize("stage", STAGES)
def test_cdk_json_describes_every_stage_completely(stage: str) -> None:
    settings = settings_for(stage)
    table = cdk_json_context()[STAGES_KEY][stage]
    assert settings.stage == stage
    assert settings.stack_name == table["stack-name"] == f"modelfn-{stage}"
    assert settings.log_retention_days == table["log-retention-days"]
    assert settings.auth == "iam"  # authorised by default, in every stage
    assert not settings.playground_on  # a browser cannot sign its calls under iam (below)


def test_without_a_stage_the_app_deploys_dev() -> None:
    context = cdk_json_context()
    assert "stage" not in context
    assert settings_from_context(cdk.App(context=context).node).stage == "dev"


def test_prod_keeps_its_data_and_dev_does_not() -> None:
    assert settings_for("prod").retain_data and settings_for("staging").retain_data
    assert not settings_for("dev").retain_data
    assert settings_for("prod").log_retention == logs.RetentionDays.ONE_YEAR


def test_stages_serve_their_own_model_alias() -> None:
    assert settings_for("prod").model_alias == "prod"
    assert settings_for("staging").model_alias == "staging"
    assert settings_for("dev").model_alias is None  # each entry's serving.alias (latest)
    # The CLI reads the same stage tables, without CDK.
    assert stage_target("prod").stack_name == "modelfn-prod"


def test_an_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown stage 'qa'.*dev, staging, prod"):
        settings_from_context(cdk.App(context=stage_context("dev") | {"stage": "qa"}).node)
    with pytest.raises(StageError, match="unknown stage 'qa'"):
        stage_target("qa")


def test_a_key_set_both_shared_and_per_stage_is_refused() -> None:
    # `-c modelfn:log-retention-days=7` would otherwise be shadowed by the stage's own value.
    context = stage_context("prod")
    context["modelfn:log-retention-days"] = 7
    with pytest.raises(
        SettingsError, match=r"modelfn:log-retention-days: set both.*stages\"\.prod"
    ):
        settings_from_context(cdk.App(context=context).node)


def test_command_line_strings_are_parsed() -> None:
    # `cdk synth -c modelfn:bucket-access-logs=true` hands every value over as a string.
    settings = settings_for(**{"bucket-access-logs": "true", "log-retention-days": "90"})
    assert settings.bucket_access_logs is True
    assert settings.log_retention == logs.RetentionDays.THREE_MONTHS


@pytest.mark.parametrize("key", ["stack-name", "log-retention-days", "auth", "throttle-rate"])
def test_missing_setting_names_its_context_key(key: str) -> None:
    with pytest.raises(SettingsError, match=rf"modelfn:{key}: Field required.*cdk\.json"):
        settings_for(**{key: None})


@pytest.mark.parametrize(
    ("key", "value"),
    [("log-retention-days", 31), ("python-version", "3.10"), ("auth", "open"),
     ("bucket-encryption", "none"), ("alarm-email", "oncall"), ("throttle-rate", 0),
     ("domain-name", "Not A Domain"), ("model-alias", "Prod")],
)  # fmt: skip
def test_bad_setting_names_its_context_key(key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=f"modelfn:{key}"):
        settings_for(**{key: value})


def test_jwt_needs_an_issuer_and_an_audience() -> None:
    with pytest.raises(SettingsError, match="auth jwt needs jwt-issuer"):
        settings_for(auth="jwt")
    settings = settings_for(
        auth="jwt", **{"jwt-issuer": "https://login.example.com/", "jwt-audience": ["modelfn"]}
    )
    assert settings.jwt_audience == ["modelfn"]
    with pytest.raises(SettingsError, match="apply to auth jwt, not iam"):
        settings_for(**{"jwt-issuer": "https://login.example.com/"})


JWT = {"auth": "jwt", "jwt-issuer": "https://login.example.com/", "jwt-audience": ["modelfn"]}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("playground", [True, "iam", "jwt"])
def test_a_playground_on_an_iam_stage_is_refused(stage: str, playground: Any) -> None:
    # dev and staging once shipped `playground = true` with auth iam: the synth passed, printed
    # <Model>PlaygroundUrl, and API Gateway answered every browser 403.
    with pytest.raises(
        SettingsError,
        match=rf"modelfn:playground: .*cannot work on stage {stage} with auth iam: a browser "
        r"cannot SigV4-sign .*403.*set it to false, or switch the stage to auth jwt and "
        r'playground "jwt".*auth none and playground "none"',
    ):
        settings_for(stage, playground=playground)


def test_a_playground_names_the_auth_it_works_under() -> None:
    page = settings_for(playground="jwt", **JWT)
    assert page.playground == "jwt" and page.playground_on
    public = settings_for(playground="none", auth="none")
    assert public.playground == "none" and public.playground_on
    assert not settings_for(playground=False, **JWT).playground_on
    # `true` would open the page's files on whatever auth the stage moves to; it must say which.
    with pytest.raises(SettingsError, match=r'modelfn:playground: .*name the auth.*"jwt"'):
        settings_for(playground=True, **JWT)
    with pytest.raises(
        SettingsError, match=r'modelfn:playground: .*playground "none" on stage dev does not match '
        r'its auth jwt: set playground "jwt"'
    ):  # fmt: skip
        settings_for(playground="none", **JWT)
    with pytest.raises(SettingsError, match=r'playground "jwt" on stage dev does not match.*none'):
        settings_for(playground="jwt", auth="none")


def test_a_custom_domain_needs_its_certificate() -> None:
    with pytest.raises(SettingsError, match="domain-name and certificate-arn go together"):
        settings_for(**{"domain-name": "api.example.com"})


def test_alarm_email_is_optional_and_absent_by_default() -> None:
    assert "modelfn:alarm-email" not in cdk_json_context()
    assert settings_for().alarm_email is None
    assert settings_for(**{"alarm-email": "oncall@example.com"}).alarm_email == "oncall@example.com"


def test_python_311_is_refused_with_the_reason_before_any_pip_runs() -> None:
    # pip would fail later with no reason given, or not at all on the Docker fallback's image.
    with pytest.raises(
        SettingsError,
        match=r"modelfn:python-version: .*python3\.11 Lambda runtime runs on Amazon Linux 2 "
        r"\(glibc 2\.26\).*onnxruntime.*glibc >= 2\.27.*use 3\.12 \(Amazon Linux 2023, glibc 2\.34\)",
    ):
        settings_for(**{"python-version": "3.11"})


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_amazon_linux_2023_pythons_are_accepted(python: str) -> None:
    assert settings_for(**{"python-version": python}).python_version == python
