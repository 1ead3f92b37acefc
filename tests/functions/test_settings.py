from pathlib import Path

import pytest

from functions.settings import FunctionSettings, SettingsError

REQUIRED = {"MODELFN_MODEL": "cifar10-cnn", "MODELFN_STORE_URI": "s3://bucket/models"}


def test_defaults_apply_when_only_required_variables_are_set() -> None:
    settings = FunctionSettings.resolve(REQUIRED)
    assert settings.model == "cifar10-cnn"
    assert settings.store_uri == "s3://bucket/models"
    assert settings.alias == "latest"
    assert settings.cache_dir == Path("/tmp/modelfn")
    assert settings.s3_endpoint_url is None
    assert settings.load_retry_s == 15


def test_explicit_arguments_win_over_environment_variables() -> None:
    env = {**REQUIRED, "MODELFN_ALIAS": "prod", "MODELFN_CACHE_DIR": "/tmp/x"}
    settings = FunctionSettings.resolve(
        env, alias="canary", s3_endpoint_url="http://127.0.0.1:5000"
    )
    assert settings.alias == "canary"
    assert settings.cache_dir == Path("/tmp/x")
    assert settings.s3_endpoint_url == "http://127.0.0.1:5000"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELFN_MODEL", "cifar10-cnn")
    monkeypatch.setenv("MODELFN_STORE_URI", "/srv/artifacts")
    monkeypatch.setenv("MODELFN_LOAD_RETRY_S", "2.5")
    settings = FunctionSettings.resolve()
    assert (settings.store_uri, settings.load_retry_s) == ("/srv/artifacts", 2.5)


@pytest.mark.parametrize("missing", ["MODELFN_MODEL", "MODELFN_STORE_URI"])
def test_a_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        FunctionSettings.resolve(env)


def test_an_empty_variable_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="MODELFN_MODEL is not set"):
        FunctionSettings.resolve({**REQUIRED, "MODELFN_MODEL": ""})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELFN_MODEL", "../etc"),
        ("MODELFN_MODEL", "Cifar10_CNN"),  # the artifact contract's names: lower-case, hyphens
        ("MODELFN_MODEL", "m" * 64),
        ("MODELFN_ALIAS", "a/b"),
        ("MODELFN_ALIAS", "Prod"),
        ("MODELFN_ALIAS", "20260101T120000Z-XYZ"),
        ("MODELFN_LOAD_RETRY_S", "soon"),
    ],
)
def test_an_invalid_value_is_named_with_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        FunctionSettings.resolve({**REQUIRED, variable: value})


@pytest.mark.parametrize("alias", ["latest", "prod-eu", "20260101T120000Z-1a2b3c4d"])
def test_the_alias_may_be_an_alias_or_a_version(alias: str) -> None:
    assert FunctionSettings.resolve({**REQUIRED, "MODELFN_ALIAS": alias}).alias == alias
