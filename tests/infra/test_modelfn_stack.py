"""The synthesized CloudFormation template: bucket, functions, permissions, routes, outputs.

Three stacks are synthesized once each: the real models.toml as the prod stage deploys it, the
same as dev, and a two-model registry as staging with the other settings (x86_64 beside arm64,
KMS, access logs) to show the stack scales with the registry and honours every setting.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match
from constructs import Construct

from infra.constructs.canary_checker import HANDLER as CHECKER_HANDLER
from infra.stacks.modelfn_stack import model_construct_id
from modelfn.api_routes import PLAYGROUND_ROUTES
from modelfn.artifact import MODEL_NAME_PATTERN
from modelfn.registry import REPO_ROOT, Registry, load_registry
from tests.infra.conftest import Synthesized, cdk_json_context, registry_from, synthesize

TWO_MODELS = """
[models.zeta-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
serving = { alias = "prod", memory_mb = 2048, timeout_s = 29, cpu = "x86_64", ephemeral_storage_mb = 2048, reserved_concurrency = 20, log_retention_days = 7, precision = "int8" }

[models.alpha-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(REPO_ROOT / "models.toml")


@pytest.fixture(scope="module")
def synth(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), stage="prod")


@pytest.fixture(scope="module")
def synth_dev(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), stage="dev")


@pytest.fixture(scope="module")
def synth_page(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """dev with the playground on, which needs a stage a browser can call: JWT here."""
    return synthesize(
        registry,
        tmp_path_factory.mktemp("cdk.out"),
        auth="jwt",
        playground="jwt",
        **{"jwt-issuer": "https://login.example.com/", "jwt-audience": ["modelfn"]},
    )


@pytest.fixture(scope="module")
def two_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return registry_from(TWO_MODELS, tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def synth_two(two_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        two_registry,
        tmp_path_factory.mktemp("cdk.out"),
        stage="staging",
        **{"bucket-encryption": "kms", "bucket-access-logs": True},
    )


# --- helpers ---------------------------------------------------------------------------------


def logical_id(construct: Construct) -> str:
    stack = Stack.of(construct)
    element = construct.node.default_child or construct
    resolved: str = stack.resolve(stack.get_logical_id(element))  # type: ignore[arg-type]
    return resolved


def bucket_arn(bucket_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [bucket_id, "Arn"]}


def under_bucket(bucket_id: str, suffix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [bucket_arn(bucket_id), suffix]]}


def function_id(synth: Synthesized, model: str) -> str:
    return logical_id(synth.stack.functions[model].function)


def role_statements(synth: Synthesized, model: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to the model function's role."""
    function = synth.resources("AWS::Lambda::Function")[function_id(synth, model)]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def alias_function(synth: Synthesized, alias_id: str) -> str:
    """Logical id of the function a Lambda alias belongs to."""
    return synth.resources("AWS::Lambda::Alias")[alias_id]["Properties"]["FunctionName"]["Ref"]  # type: ignore[no-any-return]


def route_targets(synth: Synthesized) -> dict[str, str]:
    """Route key -> logical id of the Lambda function whose stage alias its integration invokes."""
    integrations = synth.resources("AWS::ApiGatewayV2::Integration")
    targets = {}
    for route in synth.resources("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        # Target is {"Fn::Join": ["", ["integrations/", {"Ref": <integration>}]]}
        integration_id = props["Target"]["Fn::Join"][1][1]["Ref"]
        uri = integrations[integration_id]["Properties"]["IntegrationUri"]
        targets[props["RouteKey"]] = alias_function(synth, uri["Ref"])
    return targets


def expected_routes(names: list[str]) -> set[str]:
    per_model = {
        f"{route} {model_path}"
        for name in names
        for route, model_path in [
            ("POST", f"/models/{name}/predict"),
            ("POST", f"/v2/models/{name}/infer"),
            ("GET", f"/v2/models/{name}"),
            ("GET", f"/v2/models/{name}/ready"),
            # The version stays a path parameter: one route per model serves every version.
            ("POST", f"/v2/models/{name}/versions/{{version}}/infer"),
            ("GET", f"/v2/models/{name}/versions/{{version}}"),
            ("GET", f"/v2/models/{name}/versions/{{version}}/ready"),
            # OpenAI's embeddings API: every model's (the route list has no per-task routes);
            # a function whose model is not a feature extractor answers it 404.
            ("POST", f"/models/{name}/v1/embeddings"),
        ]
    }
    return per_model | {"GET /v2", "GET /v2/health/live", "GET /v2/health/ready"}


# --- artifact bucket -------------------------------------------------------------------------


def test_artifact_bucket_is_versioned_s3_encrypted_private_and_retained(synth: Synthesized) -> None:
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    bucket = synth.resources("AWS::S3::Bucket")[bucket_id]
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
    # cdk.json: bucket-access-logs = true, so a second bucket receives the server access logs.
    assert synth.stack.artifacts.access_log_bucket is not None
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logical_id(synth.stack.artifacts.access_log_bucket)},
        "LogFilePrefix": "artifacts/",
    }
    # ...and, where the edge distribution is on (prod), a third takes its CloudFront logs.
    assert len(synth.resources("AWS::S3::Bucket")) == 2 + (synth.stack.edge is not None)


def test_artifact_bucket_expires_replaced_versions_and_aborts_stale_uploads(
    synth: Synthesized,
) -> None:
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    rules = synth.resources("AWS::S3::Bucket")[bucket_id]["Properties"]["LifecycleConfiguration"][
        "Rules"
    ]
    by_id = {rule["Id"]: rule for rule in rules}
    # Only replaced versions expire: a current object (a published model) never does.
    assert by_id["expire-replaced-versions"] == {
        "Id": "expire-replaced-versions",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90, "NewerNoncurrentVersions": 3},
        "Status": "Enabled",
    }
    assert by_id["abort-incomplete-uploads"] == {
        "Id": "abort-incomplete-uploads",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        "Status": "Enabled",
    }
    assert not [rule for rule in rules if "ExpirationInDays" in rule or "Transitions" in rule]


def test_artifact_bucket_policy_denies_every_request_without_tls(synth: Synthesized) -> None:
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    synth.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "s3:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Resource": [bucket_arn(bucket_id), under_bucket(bucket_id, "/*")],
                        }
                    ]
                )
            },
        },
    )


def test_kms_and_access_log_settings_reach_the_bucket(synth_two: Synthesized) -> None:
    bucket_id = logical_id(synth_two.stack.artifacts.bucket)
    assert synth_two.stack.artifacts.access_log_bucket is not None
    logs_id = logical_id(synth_two.stack.artifacts.access_log_bucket)
    buckets = synth_two.resources("AWS::S3::Bucket")
    rule = buckets[bucket_id]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    assert buckets[bucket_id]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": logs_id
    }
    # S3 writes access logs only to SSE-S3 buckets.
    logs_sse = buckets[logs_id]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert logs_sse[0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert buckets[logs_id]["DeletionPolicy"] == "Retain"
    # With KMS, reading an object needs kms:Decrypt on the bucket's key, granted with the read.
    actions = {a for s in role_statements(synth_two, "alpha-net") for a in as_list(s["Action"])}
    assert "kms:Decrypt" in actions


# --- model functions -------------------------------------------------------------------------


def model_functions(synth: Synthesized) -> dict[str, Any]:
    """The stack's model functions: every Lambda function but the canary checker."""
    return {
        k: v
        for k, v in synth.resources("AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") != CHECKER_HANDLER
    }


@pytest.mark.parametrize("which", ["synth", "synth_two"])
def test_one_function_per_registry_entry_configured_from_it(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    registry: Registry = request.getfixturevalue("registry" if which == "synth" else "two_registry")
    context = cdk_json_context()
    settings = synth.stack.settings
    functions = model_functions(synth)
    assert len(functions) == len(registry.names())
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    for name in registry.names():
        entry = registry.get(name)
        props = functions[function_id(synth, name)]["Properties"]
        layer = synth.stack.dependency_layers[entry.serving.lambda_cpu]
        assert props["Runtime"] == f"python{context['modelfn:python-version']}"
        assert props["Handler"] == "functions.handler.handler"
        assert props["MemorySize"] == entry.serving.memory_mb
        assert props["Timeout"] == entry.serving.timeout_s
        assert props["Architectures"] == [entry.serving.lambda_cpu]
        assert props["EphemeralStorage"] == {"Size": entry.serving.ephemeral_storage_mb}
        assert props.get("ReservedConcurrentExecutions") == entry.serving.reserved_concurrency
        assert props["Layers"] == [{"Ref": logical_id(layer.layer)}]
        assert props["Environment"]["Variables"] == {
            "MODELFN_MODEL": name,
            "MODELFN_STORE_URI": {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}]]},
            # The stage's alias if it names one (prod: "prod"), else the entry's own.
            "MODELFN_ALIAS": settings.model_alias or entry.serving.alias,
            "MODELFN_CACHE_DIR": "/tmp/modelfn",
            "POWERTOOLS_SERVICE_NAME": f"modelfn-{name}",
            **({"MODELFN_PLAYGROUND": "1"} if settings.playground_on else {}),
            # The int8 graph, where the entry serves it; unset, the function serves model.onnx.
            **({"MODELFN_PRECISION": "int8"} if entry.serving.precision == "int8" else {}),
        }
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = synth.resources("AWS::Logs::LogGroup")[log_group_id]
        assert log_group["Properties"]["RetentionInDays"] == (
            entry.serving.log_retention_days or settings.log_retention_days
        )


def test_two_model_registry_values_differ_per_function(synth_two: Synthesized) -> None:
    # Guards the loop above against checking one entry twice.
    functions = synth_two.resources("AWS::Lambda::Function")
    zeta = functions[function_id(synth_two, "zeta-net")]["Properties"]
    alpha = functions[function_id(synth_two, "alpha-net")]["Properties"]
    assert (zeta["MemorySize"], zeta["Timeout"]) == (2048, 29)
    assert (alpha["MemorySize"], alpha["Timeout"]) == (1024, 15)
    assert (zeta["Architectures"], alpha["Architectures"]) == (["x86_64"], ["arm64"])
    assert (zeta["ReservedConcurrentExecutions"], "ReservedConcurrentExecutions" in alpha) == (
        20,
        False,
    )
    # staging serves its own model alias, whatever the entries' serving.alias says.
    assert zeta["Environment"]["Variables"]["MODELFN_ALIAS"] == "staging"
    assert zeta["Environment"]["Variables"]["MODELFN_PRECISION"] == "int8"
    assert "MODELFN_PRECISION" not in alpha["Environment"]["Variables"]


@pytest.mark.parametrize(
    ("which", "model", "other"),
    [("synth", "cifar10-cnn", None), ("synth_two", "zeta-net", "alpha-net"),
     ("synth_two", "alpha-net", "zeta-net")],
)  # fmt: skip
def test_function_role_reads_only_its_own_model_prefix(
    which: str, model: str, other: str | None, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    s3_statements = [
        s
        for s in role_statements(synth, model)
        if any(a.startswith("s3:") for a in as_list(s["Action"]))
    ]
    assert s3_statements, f"{model}'s role has no S3 permission at all"
    object_resources = []
    for statement in s3_statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert action.startswith(("s3:Get", "s3:List")), f"{action} is not read-only"
        resources = as_list(statement["Resource"])
        assert "*" not in resources
        object_resources += [r for r in resources if r != bucket_arn(bucket_id)]
        if "s3:GetObject*" in as_list(statement["Action"]):
            assert under_bucket(bucket_id, f"/{model}/*") in resources
    # Objects are readable under this model's prefix only: not the bucket, not another model.
    assert object_resources == [under_bucket(bucket_id, f"/{model}/*")]
    if other is not None:
        assert under_bucket(bucket_id, f"/{other}/*") not in object_resources


@pytest.mark.parametrize(
    ("which", "model", "other"),
    [("synth", "cifar10-cnn", "ptb-lstm"), ("synth_two", "zeta-net", "alpha-net"),
     ("synth_two", "alpha-net", "zeta-net")],
)  # fmt: skip
def test_function_gets_and_lists_only_its_own_prefix_with_no_wildcard_action(
    which: str, model: str, other: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    statements = role_statements(synth, model)
    assert statements
    for statement in statements:
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{model}'s role allows the wildcard action {action}"
    s3_statements = [s for s in statements if as_list(s["Action"])[0].startswith("s3:")]
    assert sorted(s3_statements, key=lambda s: str(s["Action"])) == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": under_bucket(bucket_id, f"/{model}/*"),
        },
        {
            # Listing is what makes a missing key a 404; the condition keeps it to this model.
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": [f"{model}/*"]}},
            "Effect": "Allow",
            "Resource": bucket_arn(bucket_id),
        },
    ]
    assert other not in json.dumps(statements)


def test_every_function_policy_is_free_of_wildcard_actions(synth_two: Synthesized) -> None:
    # KMS too (synth_two's bucket uses a customer key): decrypt, not kms:*.
    for policy in synth_two.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not [a for a in as_list(statement["Action"]) if "*" in a], statement
    for role in synth_two.resources("AWS::IAM::Role").values():
        # No managed policy (AWSLambdaBasicExecutionRole writes to every log group).
        assert "ManagedPolicyArns" not in role["Properties"]


def test_each_cpu_gets_one_layer_built_for_it(synth_two: Synthesized, synth: Synthesized) -> None:
    # models.toml's three zip models default to arm64 and share one layer.
    assert list(synth.stack.dependency_layers) == ["arm64"]
    layers = synth_two.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for function in synth_two.resources("AWS::Lambda::Function").values():
        (layer_ref,) = function["Properties"]["Layers"]
        layer = layers[layer_ref["Ref"]]["Properties"]
        assert layer["CompatibleArchitectures"] == function["Properties"]["Architectures"]
        assert [function["Properties"]["Runtime"]] == layer["CompatibleRuntimes"]


def code_asset(synth: Synthesized) -> Path:
    # With bundling skipped the layer is not staged, so the one asset folder is the code.
    (asset,) = [p for p in synth.outdir.iterdir() if p.name.startswith("asset.")]
    return asset


def test_function_code_asset_holds_only_what_the_handler_imports(synth: Synthesized) -> None:
    asset = code_asset(synth)
    assert sorted(p.name for p in asset.iterdir()) == ["functions", "modelfn"]
    files = [p for p in asset.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")]
    # The handler string must resolve inside the zip.
    assert (asset / "functions" / "handler.py").is_file()
    shipped = {
        p.relative_to(asset / "modelfn").as_posix() for p in (asset / "modelfn").rglob("*.py")
    }
    in_repo = {
        p.relative_to(REPO_ROOT / "modelfn").as_posix()
        for p in (REPO_ROOT / "modelfn").rglob("*.py")
    }
    store = {name for name in in_repo if name.startswith("store/")}
    assert store and {"__init__.py", "artifact.py", "api_routes.py"} | store <= shipped
    # models.toml's reader and the stages are read at synth, not by the function.
    assert not {"registry.py", "stages.py"} & shipped
    # The inference function and the core, nothing of the floors beside or above it.
    assert sorted(p.name for p in asset.iterdir()) == ["functions", "modelfn"]
    code = synth.resources("AWS::Lambda::Function")[function_id(synth, "cifar10-cnn")]
    assert code["Properties"]["Code"]["S3Key"] == asset.name.removeprefix("asset.") + ".zip"


LAMBDA_BYTECODE = """
import importlib.util, sys
print(sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex())
"""


def test_function_code_asset_ships_bytecode_for_the_lambdas_python(synth: Synthesized) -> None:
    """Every module has its .pyc for the runtime's Python, hash-based and unchecked (PEP 552), as
    the layer's: /var/task is read-only, so Lambda would compile the code on every cold start."""
    from infra.lambda_python import lambda_interpreter

    command, env = lambda_interpreter(cdk_json_context()["modelfn:python-version"])
    tag, magic = subprocess.run(
        [*command, "-c", LAMBDA_BYTECODE], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    asset = code_asset(synth)
    sources = sorted(asset.rglob("*.py"))
    assert len(sources) > 20
    expected = {p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc" for p in sources}
    assert set(asset.rglob("*.pyc")) == expected  # one each, and none of another Python
    for pyc in expected:
        header = pyc.read_bytes()[:16]
        assert header[:4].hex() == magic, pyc
        assert int.from_bytes(header[4:8], "little") == 0b01, pyc  # hash-based, unchecked


def test_function_code_is_staged_once_and_the_same_bytes_anywhere(tmp_path: Path) -> None:
    # Two stagings from two copies of the sources in different folders: the same fingerprint
    # folder name, the same files, byte for byte (bytecode names /var/task, not the build folder).
    import shutil

    from infra.function_code import function_files, stage_function_code
    from infra.packaging import FUNCTION_SOURCES

    python = cdk_json_context()["modelfn:python-version"]
    staged = []
    for name in ("one", "two"):
        root = tmp_path / name / "checkout"
        for source in FUNCTION_SOURCES:
            origin = REPO_ROOT / source
            (root / source).parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, root / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(origin, root / source)
        staged.append(stage_function_code(python, root, tmp_path / name / "cache"))
    assert staged[0].name == staged[1].name
    contents = [
        {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        for folder in staged
    ]
    assert contents[0] == contents[1]
    assert function_files(REPO_ROOT) == sorted(n for n in contents[0] if "__pycache__" not in n)
    # Staged again from the same sources: the folder is reused, not compiled anew.
    again = stage_function_code(python, tmp_path / "one" / "checkout", tmp_path / "one" / "cache")
    assert again == staged[0] and len(list((tmp_path / "one" / "cache").iterdir())) == 1


IMPORT_FROM_ASSET = """
import importlib, json, pkgutil, sys
asset, site_packages = sys.argv[1], sys.argv[2:]
sys.path[:0] = [asset]
sys.path += site_packages  # after the asset: the third-party packages the layer provides
import functions, functions.handler
for module in pkgutil.walk_packages(functions.__path__, "functions."):
    importlib.import_module(module.name)
ours = {name: m.__file__ for name, m in sys.modules.items() if name.split(".")[0] in ("functions", "modelfn")}
print(json.dumps(ours))
"""


def test_handler_imports_from_the_code_asset_alone(synth: Synthesized, tmp_path: Path) -> None:
    """Import the handler, as Lambda's init does, with the asset and the third-party packages only.

    `-S` skips site, so the repository (on sys.path through the editable install's .pth) is
    unreachable; a module the asset lacks fails the import. The model load fails (empty store),
    which the handler survives by design.
    """
    asset = code_asset(synth)
    site_packages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "MODELFN_MODEL": "cifar10-cnn",
        "MODELFN_STORE_URI": str(tmp_path / "empty-store"),
        "MODELFN_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONDONTWRITEBYTECODE": "1",  # as on Lambda's read-only /var/task: the asset stays
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", IMPORT_FROM_ASSET, str(asset), *site_packages],
        capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: dict[str, str] = json.loads(result.stdout.splitlines()[-1])
    assert "functions.handler" in loaded and "modelfn.store" in loaded
    outside = {name: path for name, path in loaded.items() if not path.startswith(str(asset))}
    assert not outside, f"imported from outside the asset: {outside}"


def valid_model_names(alphabet: str, max_length: int) -> list[str]:
    words = ("".join(chars) for n in range(1, max_length + 1)
             for chars in itertools.product(alphabet, repeat=n))  # fmt: skip
    return [word for word in words if re.fullmatch(MODEL_NAME_PATTERN, word)]


def test_construct_ids_of_different_model_names_differ() -> None:
    # A hyphen before a digit cannot be marked by a capital: 'a1-b' and 'a-1-b' both read 'A1B'
    # when parts are only capitalised, and CDK refuses two sibling constructs with one id.
    assert model_construct_id("a1-b") != model_construct_id("a-1-b")
    assert model_construct_id("a1-b") != model_construct_id("a-1b")
    names = valid_model_names("a1b-", max_length=6)
    assert len(names) > 500
    ids = {model_construct_id(name) for name in names}
    assert len(ids) == len(names)
    # Names without a hyphen-digit keep their ids, and so their logical ids on redeploy.
    assert model_construct_id("cifar10-cnn") == "Cifar10Cnn"


# --- HTTP API --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "registry_fixture"), [("synth", "registry"), ("synth_two", "two_registry")]
)
def test_route_keys_are_exactly_the_model_and_health_routes(
    which: str, registry_fixture: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    registry: Registry = request.getfixturevalue(registry_fixture)
    expected = expected_routes(registry.names())
    if synth.stack.settings.playground_on:  # no shipped stage shows the pages (auth iam)
        expected |= {
            f"GET {route.for_model(name).path}"
            for name in registry.names()
            for route in PLAYGROUND_ROUTES
        }
    assert set(route_targets(synth)) == expected
    assert len(synth.resources("AWS::ApiGatewayV2::Route")) == len(expected)


def test_the_playground_is_routed_and_switched_on_only_where_the_stage_asks(
    synth: Synthesized, synth_page: Synthesized
) -> None:
    assert synth_page.stack.settings.playground_on and not synth.stack.settings.playground_on
    for synthesized, on in [(synth_page, True), (synth, False)]:
        keys = set(route_targets(synthesized))
        assert ("GET /models/cifar10-cnn/page" in keys) is on
        assert ("GET /models/cifar10-cnn/card.json" in keys) is on
        for function in synthesized.resources("AWS::Lambda::Function").values():
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            if "MODELFN_MODEL" in variables:
                assert (variables.get("MODELFN_PLAYGROUND") == "1") is on
    synth_page.template.has_output("Cifar10CnnPlaygroundUrl", {})
    # Who may call each page route: tests/infra/test_api_access.py.


def test_the_shipped_registry_deploys_the_three_reference_models(synth: Synthesized) -> None:
    # The founding brief's three models: each its own function, with every model route.
    models = ["cifar10-cnn", "ptb-lstm", "imdb-sentiment"]
    assert {function_id(synth, name) for name in models} == set(model_functions(synth))
    targets = route_targets(synth)
    for name in models:
        own = {key for key in targets if name in key.split("/")}
        # predict, OIP infer, metadata and ready, the last three under /versions/{version}, and
        # OpenAI's embeddings
        assert own == {key for key in expected_routes([name]) if name in key.split("/")}
        assert len(own) == 8
        assert {targets[key] for key in own} == {function_id(synth, name)}


def test_each_model_route_invokes_that_models_function(synth_two: Synthesized) -> None:
    targets = route_targets(synth_two)
    for name in ("zeta-net", "alpha-net"):
        own = {key for key in expected_routes([name]) if f"/{name}" in key}
        assert {targets[key] for key in own} == {function_id(synth_two, name)}


def test_health_routes_go_to_the_first_registry_entry(synth_two: Synthesized) -> None:
    # zeta-net is first in the file (not alphabetically): file order decides.
    targets = route_targets(synth_two)
    assert targets["GET /v2/health/live"] == function_id(synth_two, "zeta-net")
    assert targets["GET /v2/health/ready"] == function_id(synth_two, "zeta-net")
    assert targets["GET /v2"] == function_id(synth_two, "zeta-net")


def test_api_is_http_api_and_every_route_may_invoke_its_function(synth: Synthesized) -> None:
    synth.template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP"})
    synth.template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0"},
    )
    api_id = logical_id(synth.stack.api.http_api)
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        # the canary checker's schedule has its own (tests/infra/test_canary_checker.py)
        if p["Properties"]["Principal"] != "events.amazonaws.com"
    ]
    # One per function's stage alias, for any route of this API: a route's SourceArn would
    # carry "{version}".
    assert sorted(alias_function(synth, p["FunctionName"]["Ref"]) for p in permissions) == sorted(
        set(route_targets(synth).values())
    )
    for permission in permissions:
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["Principal"] == "apigateway.amazonaws.com"
        arn = permission["SourceArn"]["Fn::Join"][1]
        assert arn[-2:] == [{"Ref": api_id}, "/*/*/*"]


def test_outputs_give_the_api_url_and_the_store_uri(synth: Synthesized) -> None:
    api_id = logical_id(synth.stack.api.http_api)
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    synth.template.has_output("ApiUrl", {"Value": {"Fn::GetAtt": [api_id, "ApiEndpoint"]}})
    synth.template.has_output(
        "StoreUri", {"Value": {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}]]}}
    )


def test_stack_name_comes_from_the_stages_table(synth: Synthesized, synth_dev: Synthesized) -> None:
    stages = cdk_json_context()["modelfn:stages"]
    assert synth.stack.stack_name == stages["prod"]["stack-name"]
    assert synth_dev.stack.stack_name == stages["dev"]["stack-name"]


def test_prod_protects_its_data_and_dev_cleans_up(
    synth: Synthesized, synth_dev: Synthesized
) -> None:
    assert synth.stack.termination_protection and not synth_dev.stack.termination_protection
    for synthesized, policy in [(synth, "Retain"), (synth_dev, "Delete")]:
        kept = synthesized.resources("AWS::S3::Bucket") | synthesized.resources(
            "AWS::Logs::LogGroup"
        )
        assert {resource["DeletionPolicy"] for resource in kept.values()} == {policy}
    # dev empties its buckets before deleting them (CloudFormation cannot delete a full one).
    assert synth_dev.resources("Custom::S3AutoDeleteObjects")
    assert not synth.resources("Custom::S3AutoDeleteObjects")


@pytest.mark.parametrize("which", ["synth", "synth_dev"])
def test_the_api_calls_each_function_through_its_stage_alias(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    stage = synth.stack.settings.stage
    aliases = synth.resources("AWS::Lambda::Alias")
    versions = synth.resources("AWS::Lambda::Version")
    assert len(aliases) == len(versions) == len(synth.stack.functions)
    for alias in aliases.values():
        props = alias["Properties"]
        assert props["Name"] == stage
        # The version this deployment published, of the alias's own function.
        version_id = props["FunctionVersion"]["Fn::GetAtt"][0]
        assert versions[version_id]["Properties"]["FunctionName"] == props["FunctionName"]
    integrations = synth.resources("AWS::ApiGatewayV2::Integration")
    assert {i["Properties"]["IntegrationUri"]["Ref"] for i in integrations.values()} == set(aliases)
