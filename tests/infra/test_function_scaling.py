"""Cold starts and concurrency per model: SnapStart, provisioned concurrency, reserved capacity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.stacks.modelfn_stack import ModelfnStack
from modelfn.registry import Registry
from tests.infra.conftest import (
    MIXED,
    Synthesized,
    registry_from,
    settings_for,
    stage_context,
    synthesize,
)
from tests.infra.test_modelfn_stack import function_id, logical_id


@pytest.fixture(scope="module")
def synth(mixed_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(mixed_registry, tmp_path_factory.mktemp("cdk.out"), stage="prod")


def function_props(synth: Synthesized, model: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.resources("AWS::Lambda::Function")[function_id(synth, model)][
        "Properties"
    ]
    return props


def alias_props(synth: Synthesized, model: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.resources("AWS::Lambda::Alias")[
        logical_id(synth.stack.functions[model].alias)
    ]["Properties"]
    return props


def test_snapstart_is_on_for_published_versions_only_where_asked(synth: Synthesized) -> None:
    assert function_props(synth, "zip-net")["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "SnapStart" not in function_props(synth, "torch-net")
    # SnapStart snapshots a published version: the API must call the alias, never $LATEST.
    assert alias_props(synth, "zip-net")["Name"] == "prod"
    assert "ProvisionedConcurrencyConfig" not in alias_props(synth, "zip-net")


def test_provisioned_concurrency_sits_on_the_alias_and_tracks_utilisation(
    synth: Synthesized,
) -> None:
    alias = alias_props(synth, "torch-net")
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 1}
    (target,) = synth.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    props = target["Properties"]
    assert (props["MinCapacity"], props["MaxCapacity"]) == (1, 4)
    assert props["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert props["ServiceNamespace"] == "lambda"
    (policy,) = synth.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 0.7
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "LambdaProvisionedConcurrencyUtilization"
    )


def test_snapstart_on_a_python_without_it_is_refused_at_synth(tmp_path: Path) -> None:
    registry = registry_from(MIXED, tmp_path)
    app = cdk.App(context=stage_context("dev") | {"aws:cdk:bundling-stacks": []})
    # Every Python the settings accept (3.12, 3.13) has SnapStart; 3.11, which they refuse for
    # the layer's sake, has not, so it is slipped past them to reach the stack's own check.
    settings = settings_for("dev").model_copy(update={"python_version": "3.11"})
    with pytest.raises(
        ValueError, match=r"zip-net: serving.snapstart needs a Lambda Python with SnapStart"
    ):
        ModelfnStack(app, "Refused", registry=registry, settings=settings)
