from pathlib import Path

import pytest
from pydantic import ValidationError

from modelfn.registry import (
    RegistryError,
    ServingEntry,
    UnknownModelError,
    load_registry,
    parse_registry,
)

GOOD = """
[models.m1]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
"""


def test_repo_registry_is_valid_and_names_cifar10() -> None:
    registry = load_registry()
    entry = registry.get("cifar10-cnn")
    assert entry.task == "image-classification"
    assert entry.training_config_path().is_file(), (
        "the training config named in models.toml must exist"
    )
    assert registry.names()[0] == "cifar10-cnn"


def test_defaults_fill_the_serving_section() -> None:
    entry = parse_registry(GOOD).get("m1")
    assert (entry.serving.alias, entry.serving.memory_mb, entry.serving.timeout_s) == (
        "latest",
        1024,
        15,
    )


def test_unknown_key_is_named() -> None:
    with pytest.raises(RegistryError, match=r"models\.m1\.colour"):
        parse_registry(GOOD + 'colour = "blue"\n')


def test_out_of_range_memory_is_named() -> None:
    bad = GOOD + "[models.m1.serving]\nmemory_mb = 64\n"
    with pytest.raises(RegistryError, match=r"models\.m1\.serving\.memory_mb"):
        parse_registry(bad)


def test_bad_model_name_is_refused() -> None:
    with pytest.raises(RegistryError, match="Bad_Name"):
        parse_registry(GOOD.replace("m1", "Bad_Name"))


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="m1"):
        parse_registry(GOOD).get("nope")


def test_missing_file_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELFN_REGISTRY", str(tmp_path / "absent.toml"))
    with pytest.raises(RegistryError, match="MODELFN_REGISTRY"):
        load_registry()


def test_invalid_toml_is_reported() -> None:
    with pytest.raises(RegistryError, match="not valid TOML"):
        parse_registry("[models.m1\n")


# --- deployment settings per model (issue 10) ----------------------------------------------------


def serving(**keys: object) -> ServingEntry:
    return ServingEntry.model_validate(keys)


def test_zip_models_default_to_arm64_and_torch_to_x86_64() -> None:
    assert serving().lambda_cpu == "arm64"
    assert serving(runtime="torch").lambda_cpu == "x86_64"
    assert serving(runtime="torch", cpu="arm64").lambda_cpu == "arm64"


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"snapstart": True, "provisioned_concurrency": {"min": 1, "max": 2}},
         "snapstart and provisioned_concurrency cannot be combined: AWS Lambda does not support"),
        ({"snapstart": True, "runtime": "torch"}, "SnapStart does not support container images"),
        ({"snapstart": True, "ephemeral_storage_mb": 1024}, "snapstart needs ephemeral_storage_mb <= 512"),
        ({"reserved_concurrency": 2, "provisioned_concurrency": {"min": 1, "max": 3}},
         r"provisioned_concurrency.max \(3\) exceeds reserved_concurrency \(2\)"),
        ({"provisioned_concurrency": {"min": 3, "max": 2}}, r"max \(2\) must be at least min \(3\)"),
        ({"log_retention_days": 31}, "31 is not a CloudWatch retention period"),
        ({"ephemeral_storage_mb": 256}, "greater than or equal to 512"),
        ({"cpu": "aarch64"}, "'x86_64' or 'arm64'"),
        # The HTTP API gives up after 30 s; a 60 s function would run on, billed, for nobody.
        ({"timeout_s": 30}, r"timeout_s = 30: the function is served through an API Gateway HTTP API, which waits at most 30 s"),
        ({"timeout_s": 900}, r"Set timeout_s <= 29"),
    ],
)  # fmt: skip
def test_undeployable_serving_settings_are_refused_with_the_reason(
    keys: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        serving(**keys)


def test_the_longest_timeout_the_api_can_wait_for_is_accepted() -> None:
    assert serving(timeout_s=29).timeout_s == 29


def test_a_refused_combination_names_the_model_in_models_toml() -> None:
    text = (
        GOOD
        + "[models.m1.serving]\nsnapstart = true\nprovisioned_concurrency = { min = 1, max = 2 }\n"
    )
    with pytest.raises(
        RegistryError, match=r"models\.m1\.serving: Value error, snapstart and provisioned"
    ):
        parse_registry(text)


IMPORTED = """
[models.my-net]
task = "tensor"
imported = true
"""


def test_an_imported_model_needs_no_training_table() -> None:
    entry = parse_registry(IMPORTED).get("my-net")
    assert entry.imported and entry.training is None and entry.serving.runtime == "onnxruntime"
    with pytest.raises(
        RegistryError, match="was imported .* import a new version with modelfn import"
    ):
        entry.trained()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (IMPORTED + 'dataset = "cifar10"\n', r"an imported model is not trained here: remove dataset"),
        (IMPORTED.replace('"tensor"', '"language-modeling"'), "task language-modeling cannot be imported"),
        (GOOD.replace('training = { config = "training/configs/cifar10-cnn.toml" }\n', ""),
         r"a model trained here needs training \(or imported = true"),
    ],
)  # fmt: skip
def test_trained_and_imported_entries_are_told_apart(text: str, reason: str) -> None:
    with pytest.raises(RegistryError, match=reason):
        parse_registry(text)


def test_precision_defaults_to_fp32_and_int8_is_for_the_zip_function() -> None:
    assert parse_registry(GOOD).get("m1").serving.precision == "fp32"
    int8 = parse_registry(GOOD + '[models.m1.serving]\nprecision = "int8"\n').get("m1")
    assert int8.serving.precision == "int8"
    with pytest.raises(RegistryError, match=r"models\.m1\.serving\.precision"):
        parse_registry(GOOD + '[models.m1.serving]\nprecision = "fp16"\n')
    with pytest.raises(RegistryError, match="precision int8 is served by the onnxruntime zip"):
        parse_registry(GOOD + '[models.m1.serving]\nprecision = "int8"\nruntime = "torch"\n')
    # A tensor model has no pre-processing to feed the test data through: nothing to score int8 on.
    with pytest.raises(RegistryError, match="a tensor model declares no pre-processing"):
        parse_registry(IMPORTED + '[models.my-net.serving]\nprecision = "int8"\n')
