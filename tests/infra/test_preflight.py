"""Region checks at synth (infra/preflight.py): what the region a stage deploys to would refuse
or silently break is refused or warned about before anything is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match

from infra.preflight import PreflightError, deploy_region, preflight
from modelfn.registry import ModelEntry, Registry, load_registry
from tests.infra.conftest import synthesize

CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234"


def entries(snapstart: bool = False) -> list[ModelEntry]:
    registry = load_registry()
    found = [registry.get(name) for name in registry.names()]
    if snapstart:
        serving = found[0].serving.model_copy(update={"snapstart": True})
        found[0] = found[0].model_copy(update={"serving": serving})
    return found


def check(region: str | None, **keys: object) -> list[str]:
    arguments: dict[str, object] = {
        "certificate_arn": None,
        "edge_distribution": False,
        "entries": entries(),
    } | keys
    return preflight(stage="prod", region=region, **arguments).warnings  # type: ignore[arg-type]


def test_the_region_is_the_one_the_cdk_cli_resolved() -> None:
    assert deploy_region({"CDK_DEFAULT_REGION": "eu-west-1"}) == "eu-west-1"
    assert deploy_region({}) is None


def test_a_certificate_from_another_region_is_refused_naming_both() -> None:
    with pytest.raises(
        PreflightError, match=r"certificate-arn is in eu-west-1, but the stack deploys to us-east-1"
    ):
        check("us-east-1", certificate_arn=CERT)
    assert check("eu-west-1", certificate_arn=CERT) == []


def test_edge_logs_in_an_opt_in_region_are_refused() -> None:
    with pytest.raises(PreflightError, match=r"af-south-1 is an opt-in region.*standard logs"):
        check("af-south-1", edge_distribution=True)
    assert check("eu-west-1", edge_distribution=True) == []
    assert check("af-south-1", edge_distribution=False) == []  # no distribution, no logs


def test_snapstart_outside_its_launch_regions_is_a_warning() -> None:
    (warning,) = check("sa-east-1", entries=entries(snapstart=True))
    assert "serving.snapstart" in warning and "sa-east-1" in warning
    assert check("eu-west-1", entries=entries(snapstart=True)) == []


def test_without_a_region_the_synth_says_what_went_unchecked() -> None:
    (warning,) = check(None, certificate_arn=CERT, edge_distribution=True)
    assert "CDK_DEFAULT_REGION is unset" in warning and "certificate region" in warning
    assert check(None) == []  # nothing region-bound to check: nothing to say


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def test_the_synth_fails_on_a_certificate_from_another_region(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDK_DEFAULT_REGION", "us-east-1")
    with pytest.raises(PreflightError, match="certificate-arn is in eu-west-1"):
        synthesize(
            registry,
            tmp_path,
            "prod",
            **{"domain-name": "api.example.com", "certificate-arn": CERT},
        )


def test_the_synth_prints_the_warnings(registry: Registry, tmp_path: Path) -> None:
    synth = synthesize(
        registry, tmp_path, "prod", **{"domain-name": "api.example.com", "certificate-arn": CERT}
    )
    found = Annotations.from_stack(synth.stack).find_warning(
        "*", Match.string_like_regexp("certificate region.*went unchecked")
    )
    assert found
