"""`modelfn promote`: moving a stage's alias, copying between stage stores, finding the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfn.artifact import MANIFEST_FILE, ONNX_FILE, alias_key, file_key
from modelfn.registry import load_registry
from modelfn.stages import StageError, stage_target
from modelfn.store import (
    ArtifactStore,
    LocalStore,
    NotFound,
    S3Store,
    list_published,
    publish_artifact,
    read_alias,
)
from tests.support.aws import fake_aws_env
from tests.support.manifests import write_artifact
from tools.cli import main
from tools.promote import promote

MODEL = "cifar10-cnn"


def _publish(
    store: ArtifactStore, build: Path, weights: bytes, aliases: tuple[str, ...] = ("latest",)
) -> str:
    """Publish a tiny artifact whose version differs by `weights`; return its version."""
    return publish_artifact(store, write_artifact(build, weights=weights), aliases=aliases).version


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS, with fake credentials and no endpoint or store overrides."""
    fake_aws_env(monkeypatch, unset=("MODELFN_STORE_URI",))
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "prod-store")


def test_promote_moves_the_stage_alias_and_prints_a_rollback(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _publish(local, tmp_path / "b1", b"one")
    v2 = _publish(local, tmp_path / "b2", b"two")
    argv = ["promote", MODEL, "--stage", "prod", "--store", str(local.root)]

    assert main([*argv[:2], v1, *argv[2:]]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL}: prod (none) -> {v1} in {local.uri} (stage prod)" in out
    assert "roll back" not in out  # nothing to roll back to

    assert main([*argv[:2], v2, *argv[2:]]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL}: prod {v1} -> {v2} in {local.uri} (stage prod)" in out
    assert f"modelfn promote {MODEL} {v1} --stage prod --store {local.root}" in out
    assert read_alias(local, MODEL, "prod").version == v2
    assert read_alias(local, MODEL, "latest").version == v2  # other aliases untouched

    # the printed rollback is itself a promote
    assert main([*argv[:2], v1, *argv[2:]]) == 0
    assert read_alias(local, MODEL, "prod").version == v1


def test_a_stage_without_model_alias_moves_the_registry_alias(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _publish(local, tmp_path / "b1", b"one", aliases=())
    served = load_registry().get(MODEL).serving.alias
    assert stage_target("dev").model_alias is None
    assert main(["promote", MODEL, v1, "--stage", "dev", "--store", str(local.root)]) == 0
    assert read_alias(local, MODEL, served).version == v1
    assert f"{MODEL}: {served} (none) -> {v1}" in capsys.readouterr().out


def test_re_promoting_the_served_version_writes_nothing(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _publish(local, tmp_path / "b1", b"one")
    argv = ["promote", MODEL, v1, "--stage", "staging", "--store", str(local.root)]
    assert main(argv) == 0
    record = local.get_bytes(alias_key(MODEL, "staging"))
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{MODEL}: staging already at {v1}" in out and "roll back" not in out
    # Same bytes: a warm function's conditional GET sees no change and reloads nothing.
    assert local.get_bytes(alias_key(MODEL, "staging")) == record


def test_promote_on_s3(aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket="prod-artifacts")
    store = S3Store("prod-artifacts", "models")
    v1 = _publish(store, tmp_path / "b1", b"one")
    v2 = _publish(store, tmp_path / "b2", b"two", aliases=())
    argv = ["promote", MODEL, "--stage", "prod", "--store", "s3://prod-artifacts/models"]
    assert main([*argv[:2], v1, *argv[2:]]) == 0
    assert main([*argv[:2], v2, *argv[2:]]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL}: prod {v1} -> {v2} in s3://prod-artifacts/models (stage prod)" in out
    assert read_alias(store, MODEL, "prod").version == v2


def test_from_copies_a_verified_version_without_moving_other_aliases(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket="staging-artifacts")
    dev = LocalStore(tmp_path / "dev-store")
    staging = S3Store("staging-artifacts")
    v1 = _publish(dev, tmp_path / "b1", b"one")  # dev's latest
    argv = [
        "promote",
        MODEL,
        v1,
        "--stage",
        "staging",
        "--store",
        staging.uri,
        "--from",
        str(dev.root),
    ]

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"copied {MODEL} {v1} from {dev.uri}" in out
    assert f"{MODEL}: staging (none) -> {v1} in s3://staging-artifacts (stage staging)" in out
    [published] = list_published(staging)
    assert published.versions == [v1]
    assert published.aliases == {"staging": v1}  # the copy brought no `latest` along
    assert staging.get_bytes(file_key(MODEL, v1, MANIFEST_FILE)) == dev.get_bytes(
        file_key(MODEL, v1, MANIFEST_FILE)
    )

    # Already there: not copied again (publishing twice would be refused as immutable).
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "copied" not in out and "already at" in out


def test_a_tampered_source_is_refused_and_nothing_is_copied(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = LocalStore(tmp_path / "dev-store")
    v1 = _publish(dev, tmp_path / "b1", b"one")
    dev.put_bytes(file_key(MODEL, v1, ONNX_FILE), b"not the graph the manifest describes")
    argv = [
        "promote",
        MODEL,
        v1,
        "--stage",
        "prod",
        "--store",
        str(local.root),
        "--from",
        str(dev.root),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert ONNX_FILE in err and "Traceback" not in err
    assert local.list_keys("") == []


def test_a_missing_version_names_both_fixes(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "20990101T000000Z-00000000"
    assert main(["promote", MODEL, missing, "--stage", "prod", "--store", str(local.root)]) == 2
    err = capsys.readouterr().err
    assert f"version {missing} is not published in {local.uri}" in err
    assert "--from SOURCE_URI" in err and f"modelfn train {MODEL} --publish" in err

    dev = LocalStore(tmp_path / "dev-store")
    argv = [
        "promote",
        MODEL,
        missing,
        "--stage",
        "prod",
        "--store",
        str(local.root),
        "--from",
        str(dev.root),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"published neither in {local.uri} nor in {dev.uri}" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["promote", MODEL, "20990101T000000Z-00000000", "--stage", "qa"],
            "unknown stage 'qa'; cdk.json describes: dev, staging, prod",
        ),
        (
            ["promote", "no-such-model", "20990101T000000Z-00000000", "--stage", "prod"],
            "unknown model 'no-such-model'",
        ),
        (["promote", MODEL, "latest", "--stage", "prod"], "'latest' is not a version"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    argv: list[str], message: str, local: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--store", str(local.root)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_stage_table_with_a_bad_alias_is_a_stage_error() -> None:
    context = {
        "modelfn:stages": {"prod": {"stack-name": "modelfn-prod", "model-alias": "Prod/../x"}}
    }
    with pytest.raises(StageError, match="model-alias"):
        stage_target("prod", context)
    with pytest.raises(StageError, match="stack-name"):
        stage_target("prod", {"modelfn:stages": {"prod": {}}})


# --- finding the stage's store ----------------------------------------------------------------

# What infra/ deploys, reduced to the two parts the lookup reads: the bucket and its output.
STACK_TEMPLATE = {
    "Resources": {
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": "modelfn-prod-artifacts"},
        }
    },
    "Outputs": {"StoreUri": {"Value": {"Fn::Join": ["", ["s3://", {"Ref": "Bucket"}]]}}},
}


def test_the_store_is_the_stage_stacks_store_uri_output(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    boto3.client("cloudformation").create_stack(
        StackName="modelfn-prod", TemplateBody=json.dumps(STACK_TEMPLATE)
    )
    store = S3Store("modelfn-prod-artifacts")  # the stack created the bucket
    v1 = _publish(store, tmp_path / "b1", b"one")
    assert main(["promote", MODEL, v1, "--stage", "prod"]) == 0
    assert f"-> {v1} in s3://modelfn-prod-artifacts (stage prod)" in capsys.readouterr().out
    assert read_alias(store, MODEL, "prod").version == v1


def test_modelfn_store_uri_is_not_taken_for_a_stage_store(
    aws: None, local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # $MODELFN_STORE_URI is often the dev or local store: promoting "prod" there would move an
    # alias no prod function serves, so only --store or the stage's own stack name the store.
    v1 = _publish(local, tmp_path / "b1", b"one")
    monkeypatch.setenv("MODELFN_STORE_URI", str(local.root))
    assert main(["promote", MODEL, v1, "--stage", "prod"]) == 2  # no prod stack exists
    with pytest.raises(NotFound):
        read_alias(local, MODEL, "prod")


@pytest.mark.parametrize(
    "template", [None, {**STACK_TEMPLATE, "Outputs": {}}], ids=["no-stack", "no-output"]
)
def test_no_store_found_says_pass_store_or_deploy(
    template: dict[str, object] | None, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    if template is not None:
        boto3.client("cloudformation").create_stack(
            StackName="modelfn-staging", TemplateBody=json.dumps(template)
        )
    assert main(["promote", MODEL, "20990101T000000Z-00000000", "--stage", "staging"]) == 2
    err = capsys.readouterr().err
    assert "modelfn-staging" in err and "--store" in err and "cdk deploy -c stage=staging" in err
    assert "Traceback" not in err


def test_promote_returns_what_it_did(local: LocalStore, tmp_path: Path) -> None:
    v1 = _publish(local, tmp_path / "b1", b"one")
    v2 = _publish(local, tmp_path / "b2", b"two")
    entry, target = load_registry().get(MODEL), stage_target("prod")
    first = promote(local, entry, v1, target)
    second = promote(local, entry, v2, target)
    assert (first.previous, first.version, first.moved) == (None, v1, True)
    assert (second.previous, second.version, second.moved, second.copied_from) == (
        v1,
        v2,
        True,
        None,
    )
    assert not promote(local, entry, v2, target).moved


# --- canary rollouts ---------------------------------------------------------------------------


def test_promote_with_a_canary_keeps_the_stable_and_promote_or_rollback_ends_it(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _publish(local, tmp_path / "b1", b"one")
    v2 = _publish(local, tmp_path / "b2", b"two", aliases=())
    flags = ["--stage", "prod", "--store", str(local.root)]
    assert main(["promote", MODEL, v1, *flags]) == 0

    assert main(["promote", MODEL, v2, *flags, "--canary", "10"]) == 0
    out = capsys.readouterr().out
    assert f"prod {v1} -> {v1} + canary {v2} at 10%" in out
    assert f"roll it back: modelfn promote {MODEL} {v1} --stage prod" in out
    record = read_alias(local, MODEL, "prod")
    assert record.version == v1
    assert record.canary is not None and (record.canary.version, record.canary.weight) == (v2, 10)
    assert main(["list", "--store", str(local.root)]) == 0
    assert f"prod -> {v1} + canary {v2}" in capsys.readouterr().out

    assert main(["promote", MODEL, v2, *flags, "--canary", "50"]) == 0  # a larger share
    assert read_alias(local, MODEL, "prod").canary.weight == 50  # type: ignore[union-attr]

    # Promoting the stable version is the rollback: the canary ends, though the version is the same.
    assert main(["promote", MODEL, v1, *flags]) == 0
    assert f"prod {v1} + canary {v2} at 50% -> {v1}" in capsys.readouterr().out
    record = read_alias(local, MODEL, "prod")
    assert (record.version, record.canary) == (v1, None)
    assert b"canary" not in local.get_bytes(alias_key(MODEL, "prod"))  # a plain alias again

    # ... and promoting the canary completes it.
    assert main(["promote", MODEL, v2, *flags, "--canary", "10"]) == 0
    assert main(["promote", MODEL, v2, *flags]) == 0
    record = read_alias(local, MODEL, "prod")
    assert (record.version, record.canary) == (v2, None)


def test_a_canary_needs_a_stable_version_and_another_version(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _publish(local, tmp_path / "b1", b"one", aliases=())
    flags = ["--stage", "prod", "--store", str(local.root), "--canary", "10"]
    assert main(["promote", MODEL, v1, *flags]) == 2
    assert "serves no version yet" in capsys.readouterr().err
    assert main(["promote", MODEL, v1, "--stage", "prod", "--store", str(local.root)]) == 0
    assert main(["promote", MODEL, v1, *flags]) == 2
    assert "a canary is another version" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["promote", MODEL, v1, *flags[:-1], "100"])


def test_a_canary_the_function_memory_cannot_hold_is_refused_with_the_figures(
    local: LocalStore, tmp_path: Path
) -> None:
    # Two versions whose graphs of 40 MB each need 140 + 2 x 4 x 40 MB: over memory_mb = 256.
    graph = b"\0" * (40 << 20)
    v1 = _publish(local, tmp_path / "b1", b"one", aliases=("prod",))
    v2 = publish_artifact(
        local, write_artifact(tmp_path / "b2", weights=b"two", onnx=graph), aliases=()
    ).version
    entry = load_registry().get(MODEL)
    small = entry.model_copy(
        update={"serving": entry.serving.model_copy(update={"memory_mb": 256})}
    )
    from tools.promote import CanaryRefused

    with pytest.raises(
        CanaryRefused, match=r"need about \d+ MB of memory .* serving.memory_mb = 256"
    ):
        promote(local, small, v2, stage_target("prod"), canary=10)
    assert read_alias(local, MODEL, "prod").version == v1  # nothing written
    assert read_alias(local, MODEL, "prod").canary is None
