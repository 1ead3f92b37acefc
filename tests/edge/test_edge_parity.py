"""The parity report and the threshold: int8 ships only within the model's registry limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge import parity
from edge.bundle import INT8_GRAPH, read_bundle, verify_bundle
from edge.export import ExportResult, latency_record, parity_report
from modelfn.registry import EdgeEntry, parse_registry
from tests.edge.conftest import export


def test_refusal_names_the_loss_and_the_limit() -> None:
    limits = EdgeEntry()
    assert (
        parity.refusal("image-classification", {"accuracy": 0.80}, {"accuracy": 0.795}, limits)
        is None
    )
    reason = parity.refusal("image-classification", {"accuracy": 0.80}, {"accuracy": 0.785}, limits)
    assert reason is not None and "1.50 points below" in reason and "limit of 1.00 points" in reason
    assert (
        parity.refusal("language-modeling", {"perplexity": 100.0}, {"perplexity": 101.9}, limits)
        is None
    )
    reason = parity.refusal(
        "language-modeling", {"perplexity": 100.0}, {"perplexity": 102.5}, limits
    )
    assert reason is not None and "+2.50%" in reason and "+2.00%" in reason


def test_registry_edge_thresholds_default_and_validate() -> None:
    body = '[models.m]\ntask = "language-modeling"\narchitecture = "a"\ndataset = "d"\ndata_subdir = "s"\n'
    body += '[models.m.training]\nconfig = "c.toml"\n'
    assert parse_registry(body).get("m").edge == EdgeEntry(
        max_accuracy_drop=0.01, max_perplexity_increase=0.02
    )
    with pytest.raises(ValueError, match="models.m.edge.max_accuracy_drop"):
        parse_registry(body + "[models.m.edge]\nmax_accuracy_drop = -1\n")


def test_every_bundle_reports_parity(
    cifar_bundle: ExportResult, imdb_bundle: ExportResult, ptb_bundle: ExportResult
) -> None:
    for result, headline in (
        (cifar_bundle, "accuracy"),
        (imdb_bundle, "accuracy"),
        (ptb_bundle, "perplexity"),
    ):
        figures = result.manifest.parity
        assert {f"fp32_{headline}", f"int8_{headline}", "size_ratio"} <= set(figures)
        assert 0 < figures["size_ratio"] < 1
        # Latency is reported beside the bundle (it varies by machine), never in it: the bundle
        # must stay byte-identical on re-export. The record beside it holds exactly these figures.
        record = json.loads(latency_record(result))
        fp32, int8 = result.latency_ms["fp32"], result.latency_ms["int8"]
        assert (record["fp32_ms"], record["int8_ms"]) == (fp32, int8)
        assert record["ratio"] == pytest.approx(int8 / fp32)
        assert "latency" not in result.manifest.model_dump_json()
        report = parity_report(result)
        assert "latency_ms fp32/int8" in report and result.manifest.quantization.threshold in report
    assert {"label_agreement", "test_examples"} <= set(cifar_bundle.manifest.parity)


def test_an_int8_graph_over_the_threshold_ships_fp32_alone(
    imdb_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tiny model's int8 graph is as accurate as fp32, so the loss is made real: the int8 graph
    # is scored on labels it gets wrong half the time.
    real_score = parity.score

    def harsh(bundle: object, data: parity.TestData) -> tuple[dict[str, float], object]:
        figures, labels = real_score(bundle, data)  # type: ignore[arg-type]
        if bundle.precision == "int8":
            figures = {"accuracy": figures["accuracy"] - 0.05}
        return figures, labels

    monkeypatch.setattr(parity, "score", harsh)
    result = export("imdb-sentiment", imdb_artifact, tmp_path)
    manifest, members = read_bundle(result.path)
    assert not manifest.quantization.shipped and manifest.graphs.int8 is None
    assert "5.00 points below" in manifest.quantization.reason
    assert INT8_GRAPH not in members
    assert "REFUSED, fp32 only" in parity_report(result)
    _, report = verify_bundle(result.path)
    assert "self-test (fp32)" in report
