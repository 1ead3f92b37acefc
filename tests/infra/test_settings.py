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
     ("bucket-encryption", "none")],
)  # fmt: skip
def test_bad_setting_names_its_context_key(key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=f"modelfn:{key}"):
        settings_with(**{key: value})
