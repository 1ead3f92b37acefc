"""A stage's canary checker: modelfn/canary.py's `check_alias` over CloudWatch's per-version figures.

While a canary is live, each model function writes its request metrics by service, model and
version too (functions/observability.py); `cloudwatch_stats` reads them back for the versions an
alias names, over the time since the alias was written: `Requests` and `ServerErrors` (Sum) and
`Latency` (p50, p99), in one GetMetricData call. `modelfn rollout MODEL --stage STAGE` prints
them, and `handler` is meant to run on a schedule, once per stage, over every model it is told of
(`MODELFN_CANARY_MODELS`), publishing each rollback or promotion to the stage's alarm topic.

boto3 is imported inside `handler` only: the readers take the clients they are given, so tests
pass recorded-shape fakes and nothing here reaches AWS on import.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from functions.log import logger
from functions.observability import NAMESPACE
from modelfn.artifact import Alias
from modelfn.canary import (
    MODELS_ENV,
    STORE_ENV,
    TOPIC_ENV,
    CanaryEntry,
    VersionStats,
    check_alias,
    decision_line,
)
from modelfn.store import open_store

# GetMetricData periods are whole minutes; one period spans the whole rollout so far.
PERIOD_STEP_S = 60


class CloudWatch(Protocol):
    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]: ...


class Topic(Protocol):
    def publish(self, **kwargs: Any) -> dict[str, Any]: ...


def metric_queries(
    service: str, model: str, versions: list[str], period_s: int
) -> list[dict[str, Any]]:
    """GetMetricData queries for each version's requests, server errors, p50 and p99."""
    queries = []
    for i, version in enumerate(versions):
        dimensions = [
            {"Name": "service", "Value": service},
            {"Name": "model", "Value": model},
            {"Name": "version", "Value": version},
        ]
        for key, metric, stat in (
            ("requests", "Requests", "Sum"),
            ("errors", "ServerErrors", "Sum"),
            ("p50", "Latency", "p50"),
            ("p99", "Latency", "p99"),
        ):
            queries.append(
                {
                    "Id": f"{key}{i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": dimensions,
                        },
                        "Period": period_s,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries


def cloudwatch_stats(
    cloudwatch: CloudWatch, service: str, record: Alias, now: datetime
) -> dict[str, VersionStats]:
    """Each version `record` names, as CloudWatch counted it since the record was written."""
    versions = [record.version] + ([record.canary.version] if record.canary else [])
    seconds = max((now - record.updated_at).total_seconds(), 1.0)
    period = PERIOD_STEP_S * math.ceil(seconds / PERIOD_STEP_S)
    values: dict[str, list[float]] = {}
    token: str | None = None
    while True:
        page = cloudwatch.get_metric_data(
            MetricDataQueries=metric_queries(service, record.model, versions, period),
            StartTime=record.updated_at,
            EndTime=now,
            **({"NextToken": token} if token else {}),
        )
        for result in page["MetricDataResults"]:
            values.setdefault(result["Id"], []).extend(result.get("Values", []))
        token = page.get("NextToken")
        if not token:
            break

    def total(key: str) -> float:
        return float(sum(values.get(key, [])))

    def worst(key: str) -> float:  # a percentile over more than one period: the highest
        return float(max(values.get(key, []), default=0.0))

    return {
        version: VersionStats(
            version,
            int(total(f"requests{i}")),
            int(total(f"errors{i}")),
            worst(f"p50{i}"),
            worst(f"p99{i}"),
        )
        for i, version in enumerate(versions)
    }


def check_stage(
    store_uri: str,
    models: Mapping[str, Mapping[str, Any]],
    cloudwatch: CloudWatch,
    topic: Topic | None,
    topic_arn: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Check every model's canary; log each decision, and publish each move to the alarm topic."""
    store = open_store(store_uri)
    lines = []
    for model, spec in models.items():
        limits = CanaryEntry.model_validate(spec.get("limits", {}))

        def from_cloudwatch(
            record: Alias, service: str = spec["service"]
        ) -> dict[str, VersionStats]:
            return cloudwatch_stats(cloudwatch, service, record, now)

        try:
            record, decision = check_alias(
                store, model, spec["alias"], limits, from_cloudwatch, now
            )
        except Exception:  # noqa: BLE001 - one model's failure must not stop the others' checks
            logger.exception("canary check failed", extra={"model": model})
            continue
        line = decision_line(record, decision, now)
        lines.append(line)
        fields = {k: v for k, v in line.items() if k != "message"}  # the log record's own
        if decision.action == "hold":
            logger.info("canary decision", extra=fields)
            continue
        logger.warning("canary decision", extra=fields)
        if topic is not None and topic_arn:
            topic.publish(
                TopicArn=topic_arn,
                Subject=f"modelfn canary {decision.action}: {model} {line['canary']}"[:100],
                Message=json.dumps(line),
            )
    return lines


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled entry point: check every model's canary in the stage's store."""
    import boto3

    topic_arn = os.environ.get(TOPIC_ENV)
    lines = check_stage(
        os.environ[STORE_ENV],
        json.loads(os.environ.get(MODELS_ENV, "{}")),
        boto3.client("cloudwatch"),
        boto3.client("sns") if topic_arn else None,
        topic_arn,
        datetime.now(UTC),
    )
    return {"decisions": lines}
