"""The stage's canary checker (issue 23 item 2), by synthesis: a function on a schedule, told every
model's alias and [canary] limits, that may read metrics, write only the model aliases and publish
to the alarm topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.canary_checker import CHECK_EVERY_MINUTES, HANDLER
from modelfn.canary import MODELS_ENV, TOPIC_ENV
from modelfn.registry import REPO_ROOT, Registry, load_registry, service_name
from tests.infra.conftest import Synthesized, synthesize

STAGES = ("dev", "prod")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(REPO_ROOT / "models.toml")


@pytest.fixture(scope="module", params=STAGES)
def synth(
    request: pytest.FixtureRequest, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), request.param)


def checker(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    [(logical, function)] = [
        (k, v)
        for k, v in synth.resources("AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == HANDLER
    ]
    return logical, function["Properties"]


def statements(synth: Synthesized, role: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        props = policy["Properties"]
        if {"Ref": role} in props["Roles"]:
            found += props["PolicyDocument"]["Statement"]
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def test_the_checker_is_told_every_models_alias_and_limits(
    synth: Synthesized, registry: Registry
) -> None:
    _, props = checker(synth)
    env = props["Environment"]["Variables"]
    models = json.loads(env[MODELS_ENV])
    assert set(models) == set(registry.names())
    for name in registry.names():
        entry = registry.get(name)
        assert models[name]["service"] == service_name(name)
        assert models[name]["limits"] == entry.canary.model_dump()
        alias = synth.stack.settings.model_alias or entry.serving.alias
        assert models[name]["alias"] == alias
    assert "Ref" in env[TOPIC_ENV]  # the stage's alarm topic


def test_the_checker_runs_on_a_schedule(synth: Synthesized) -> None:
    logical, _ = checker(synth)
    [rule] = synth.resources("AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == f"rate({CHECK_EVERY_MINUTES} minutes)"
    [target] = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [logical, "Arn"]}
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert [p["FunctionName"] for p in permissions] == [{"Fn::GetAtt": [logical, "Arn"]}]


def test_the_checker_writes_only_the_aliases_and_reads_metrics(
    synth: Synthesized, registry: Registry
) -> None:
    _, props = checker(synth)
    role = props["Role"]["Fn::GetAtt"][0]
    found = statements(synth, role)
    writes = [s for s in found if any(a.startswith("s3:Put") for a in actions(s))]
    assert writes
    for statement in writes:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        for resource in resources:
            key = resource["Fn::Join"][1][-1]
            assert key.endswith("/aliases/*"), key
    written = {r["Fn::Join"][1][-1] for s in writes for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}  # fmt: skip
    assert written == {f"/{name}/aliases/*" for name in registry.names()}
    assert any(actions(s) == {"cloudwatch:GetMetricData"} and s["Resource"] == "*" for s in found)
    assert any("sns:Publish" in actions(s) for s in found)
    assert not any(a.startswith("s3:Delete") for s in found for a in actions(s))
