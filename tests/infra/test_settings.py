"""Deployment settings from the CDK context: cdk.json is complete, bad values name their key."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs

from infra.settings import SettingsError, settings_from_context
from tests.infra.conftest import cdk_json_context


def settings_with(**changes: Any) -> Any:
    context = cdk_json_context()
    for key, value in changes.items():
        if value is None:
            context.pop(f"modelfn:{key}")
        else:
            context[f"modelfn:{key}"] = value
    return settings_from_context(cdk.App(context=context).node)


def test_cdk_json_holds_every_setting() -> None:
    settings = settings_with()
    assert settings.stage == cdk_json_context()["modelfn:stage"]
    assert settings.log_retention == logs.RetentionDays.ONE_MONTH  # 30 in cdk.json


def test_command_line_strings_are_parsed() -> None:
    # `cdk synth -c modelfn:bucket-access-logs=true` hands every value over as a string.
    settings = settings_with(**{"bucket-access-logs": "true", "log-retention-days": "90"})
    assert settings.bucket_access_logs is True
    assert settings.log_retention == logs.RetentionDays.THREE_MONTHS


@pytest.mark.parametrize("key", ["stage", "stack-name", "log-retention-days"])
def test_missing_setting_names_its_context_key(key: str) -> None:
    with pytest.raises(SettingsError, match=rf"modelfn:{key}: Field required.*cdk\.json"):
        settings_with(**{key: None})


@pytest.mark.parametrize(
    ("key", "value"),
    [("log-retention-days", 31), ("python-version", "3.10"), ("architecture", "aarch64"),
     ("bucket-encryption", "none"), ("alarm-email", "oncall")],
)  # fmt: skip
def test_bad_setting_names_its_context_key(key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=f"modelfn:{key}"):
        settings_with(**{key: value})


def test_alarm_email_is_optional_and_absent_by_default() -> None:
    assert "modelfn:alarm-email" not in cdk_json_context()
    assert settings_with().alarm_email is None
    assert (
        settings_with(**{"alarm-email": "oncall@example.com"}).alarm_email == "oncall@example.com"
    )


def test_python_311_is_refused_with_the_reason_before_any_pip_runs() -> None:
    # pip would fail later with no reason given, or not at all on the Docker fallback's image.
    with pytest.raises(
        SettingsError,
        match=r"modelfn:python-version: .*python3\.11 Lambda runtime runs on Amazon Linux 2 "
        r"\(glibc 2\.26\).*onnxruntime.*glibc >= 2\.27.*use 3\.12 \(Amazon Linux 2023, glibc 2\.34\)",
    ):
        settings_with(**{"python-version": "3.11"})


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_amazon_linux_2023_pythons_are_accepted(python: str) -> None:
    assert settings_with(**{"python-version": python}).python_version == python
