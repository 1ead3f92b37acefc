"""The stage's canary checker over CloudWatch: the queries name the series the functions write
during a canary, and its decisions move the alias and reach the alarm topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.canary_checker import check_stage, cloudwatch_stats
from functions.observability import NAMESPACE, RequestRecord, request_line
from modelfn.store import LocalStore, publish_artifact, read_alias, set_alias
from tests.support.manifests import write_artifact

MODEL, SERVICE = "cifar10-cnn", "modelfn-cifar10-cnn"
TOPIC = "arn:aws:sns:us-east-1:123456789012:modelfn-alarms"


class FakeCloudWatch:
    """GetMetricData as boto3 returns it, from per-version figures; records the queries."""

    def __init__(self, figures: dict[str, tuple[int, int, float, float]]) -> None:
        self.figures = figures  # version -> (requests, server errors, p50, p99)
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        results = []
        for query in kwargs["MetricDataQueries"]:
            stat = query["MetricStat"]
            dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
            requests, errors, p50, p99 = self.figures.get(dims["version"], (0, 0, 0.0, 0.0))
            value = {
                ("Requests", "Sum"): requests,
                ("ServerErrors", "Sum"): errors,
                ("Latency", "p50"): p50,
                ("Latency", "p99"): p99,
            }[(stat["Metric"]["MetricName"], stat["Stat"])]
            # A series with no data point comes back with empty lists, as CloudWatch answers.
            values = [float(value)] if requests else []
            results.append(
                {
                    "Id": query["Id"],
                    "Label": stat["Metric"]["MetricName"],
                    "Timestamps": [kwargs["StartTime"]] * len(values),
                    "Values": values,
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}


class FakeTopic:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.messages.append(kwargs)
        return {"MessageId": str(len(self.messages))}


@pytest.fixture
def canary_alias(tmp_path: Path) -> tuple[LocalStore, str, str]:
    store = LocalStore(tmp_path / "store")
    stable = publish_artifact(store, write_artifact(tmp_path / "a", weights=b"a")).version
    canary = publish_artifact(store, write_artifact(tmp_path / "b", weights=b"b"), aliases=())
    set_alias(store, MODEL, "prod", stable, canary=canary.version, weight=10)
    return store, stable, canary.version


def test_the_queries_name_the_series_a_function_writes_during_a_canary(
    canary_alias: tuple[LocalStore, str, str],
) -> None:
    store, stable, canary = canary_alias
    record = read_alias(store, MODEL, "prod")
    line = request_line(
        MODEL, 500, 12.0, RequestRecord(version=canary, canary_live=True), False, "r"
    )
    written = {
        (metric["Name"], tuple(dimensions))
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        for dimensions in directive["Dimensions"]
    }
    cloudwatch = FakeCloudWatch({canary: (10, 1, 5.0, 9.0)})
    cloudwatch_stats(cloudwatch, SERVICE, record, record.updated_at + timedelta(minutes=7))
    (call,) = cloudwatch.calls
    for query in call["MetricDataQueries"]:
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == NAMESPACE
        names = tuple(d["Name"] for d in metric["Dimensions"])
        assert (metric["MetricName"], names) in written
        assert query["MetricStat"]["Period"] == 420  # the whole rollout so far, whole minutes
    versions = {d["Value"] for q in call["MetricDataQueries"] for d in q["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "version"}  # fmt: skip
    assert versions == {stable, canary}


@pytest.mark.parametrize(
    ("canary_figures", "minutes", "action"),
    [
        ((400, 40, 20.0, 80.0), 10, "rollback"),  # 10% server errors, over 1%
        ((400, 0, 20.0, 80.0), 31, "promote"),  # clean through its 30 min bake
        ((400, 0, 20.0, 80.0), 10, "hold"),  # clean, baking
        ((20, 20, 20.0, 80.0), 60, "hold"),  # too few requests to judge
    ],
)
def test_the_stage_checker_moves_the_alias_and_tells_the_alarm_topic(
    canary_alias: tuple[LocalStore, str, str],
    canary_figures: tuple[int, int, float, float],
    minutes: int,
    action: str,
) -> None:
    store, stable, canary = canary_alias
    began = read_alias(store, MODEL, "prod").updated_at
    cloudwatch = FakeCloudWatch({stable: (3600, 0, 18.0, 70.0), canary: canary_figures})
    topic = FakeTopic()
    models = {MODEL: {"alias": "prod", "service": SERVICE, "limits": {"bake_minutes": 30}}}

    (line,) = check_stage(
        str(store.root), models, cloudwatch, topic, TOPIC, began + timedelta(minutes=minutes)
    )
    assert line["action"] == action
    record = read_alias(store, MODEL, "prod")
    served = {"rollback": (stable, None), "promote": (canary, None)}
    if action == "hold":
        assert record.canary is not None and record.version == stable
        assert topic.messages == []
    else:
        assert (record.version, record.canary) == served[action]
        (message,) = topic.messages
        assert message["TopicArn"] == TOPIC
        assert json.loads(message["Message"])["action"] == action
        assert action in message["Subject"] and canary in message["Subject"]


def test_an_alias_without_a_canary_reads_no_metrics(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish_artifact(store, write_artifact(tmp_path / "a"), aliases=("prod",))
    cloudwatch, topic = FakeCloudWatch({}), FakeTopic()
    models = {MODEL: {"alias": "prod", "service": SERVICE}}
    (line,) = check_stage(str(store.root), models, cloudwatch, topic, TOPIC, datetime.now(UTC))
    assert line["action"] == "hold"
    assert cloudwatch.calls == [] and topic.messages == []
