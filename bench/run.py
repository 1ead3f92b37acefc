"""`make bench` / `make bench-quick`: measure modelfn and its peers on the same artifacts, in one run.

    python -m bench [--quick] [--runs N] [--repeats N] [--store DIR] [--models A,B]

Servers: modelfn, the torch handler (bench/peers/torch_handler.py) and BentoML serving the ONNX
graph and the torch model (bench/peers/bentoml_service.py, bench/bentoml_peer.py; left out of
`--quick`). The models: those trained here, published in the store, and two imported with
`modelfn import`'s code at the start of the run (bench/peers/imported.py): a ResNet-18 torch
module, which the torch handler rebuilds with its user's factory, and a BERT classifier from a
Hugging Face folder, which it serves with transformers; BentoML is left out for both. Per model
(`--quick`: cifar10-cnn only, fewer runs; `--models` picks) it measures, interleaving the
servers run by run so a slow minute of the machine hits them all:
- cold start: a new process to the first correct response, (a) with the artifact in the
  function's cache and (b) fetched from S3 (the local deployment's moto server, an empty cache
  each run). modelfn runs as Lambda runs it: python3.12 importing only the built code asset and
  dependency layer as infra/ builds them for x86_64 (build/bench-package/) plus boto3 in place of the runtime's, with
  PYTHONDONTWRITEBYTECODE=1, so whatever the layer lacks in bytecode is compiled again each
  time. The torch handler runs in the project's venv (what its container image would carry).
  Both get the registry's memory size in AWS_LAMBDA_FUNCTION_MEMORY_SIZE, as Lambda sets it;
- warm latency for batch 1 and 16 (warm-ups excluded, and counted) through each Lambda handler,
  or over HTTP for BentoML, next to the bare onnxruntime `session.run` on the same graph
  inputs (tokenisation excluded, for the text models): the compute floor; with no other
  function process running;
- throughput through the local gateway with 1, 4 and 16 clients;
- peak RSS of each server; deployment size (modelfn: the code asset and the layer, tokenizers
  in it; the torch handler: what its image installs, transformers too for a Hugging Face model);
  cost per million predictions at the registry's memory size; training throughput from the
  version's own training record.

Writes bench/results/latest.json (and a dated copy), docs/benchmarks.md (with the size sweep's
section from bench/results/sweep.json, bench/sweep.py's, and bench/analysis.md, the hand-written
reading, appended) and PNG charts in docs/benchmarks/. A run of some models
(`--models`) or a quick one writes its figures to build/ instead: the published page holds every
model of one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any

from bench import bentoml_peer, cost
from bench.agreement import disagreement
from bench.peers.imported import IMPORTED, import_models
from bench.report import write_charts, write_markdown
from bench.results import TARGETS, model_result, targets
from modelfn.registry import REPO_ROOT, Registry, load_registry

PROBE = REPO_ROOT / "bench" / "probe.py"
RESULTS = REPO_ROOT / "bench" / "results"
SWEEP_JSON = RESULTS / "sweep.json"  # bench/sweep.py's; its section of the page is kept
BENCH_PACKAGE_DIR = REPO_ROOT / "build" / "bench-package"
LAMBDA_PYTHON = "3.12"
# Lambda's limits: 250 MB unzipped for a zip function with its layers, 10 GB for an image.
ZIP_LIMIT_MB, IMAGE_LIMIT_MB = 250, 10_240

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# What the torch handler's image would install: these and everything they require.
TORCH_HANDLER_REQUIREMENTS = (
    "torch",
    "fastapi",
    "mangum",
    "safetensors",
    "pillow",
    "numpy",
    "pydantic",
)
# What a Hugging Face model adds to it: transformers builds the model and runs the tokenizer.
HUGGING_FACE_REQUIREMENTS = ("transformers",)


# --- what is measured: the artifact, its inputs, the built assets ------------------------------


@functools.cache
def built_assets() -> tuple[Path, Path]:
    """(code asset, layer's python/ folder) as infra/ builds them, for this machine's CPU.

    Built by `build_package` (what `modelfn package MODEL --arch x86_64` builds: the same stack,
    code asset and layer builder as `cdk synth`), for x86_64 whatever models.toml deploys to:
    the benchmark runs the layer here, and aarch64 wheels would not load on this machine.
    """
    from infra.deployment_package import build_package

    registry = load_registry()
    zip_model = next(
        n for n in registry.names() if registry.get(n).serving.runtime == "onnxruntime"
    )
    package = build_package(
        zip_model, registry=registry, architecture="x86_64", out_dir=BENCH_PACKAGE_DIR
    )
    code, layer = (part.path for part in package.parts)
    return code, layer / "python"


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def layer_parts_mb(code: Path, layer: Path) -> dict[str, float]:
    """modelfn's deployment in parts: the code asset, the layer, and the `tokenizers` package in
    the layer (what an imported Hugging Face text model runs; issue 21 holds the whole at or
    under 150 MB with it). SystemExit if the layer lacks it: the figure would not be the size
    of a layer that serves those models."""
    tokenizers = layer / "tokenizers"
    if not tokenizers.is_dir():
        raise SystemExit(
            f"the dependency layer at {layer} has no tokenizers/: an imported Hugging Face text "
            "model could not be served from it; check pyproject.toml's dependencies"
        )
    return {"code": folder_mb(code), "layer": folder_mb(layer), "tokenizers": folder_mb(tokenizers)}


def package_mb(manifest: Any, package: dict[str, float]) -> dict[str, float]:
    """The deployment sizes for one model: a Hugging Face import's torch handler also installs
    transformers (it builds the model and runs the tokenizer)."""
    if manifest.imported is None or manifest.imported.source != "huggingface":
        return package
    requirements = (*TORCH_HANDLER_REQUIREMENTS, *HUGGING_FACE_REQUIREMENTS)
    return {**package, "torch-handler": installed_mb(requirements)}


def unpublished_name(args: argparse.Namespace) -> str:
    """The build/ file of a run that is not published: bench-quick.json, bench-<models>.json."""
    picked = f"-{args.models.replace(',', '+')}" if args.models else ""
    return f"bench-{'quick' if args.quick else 'full'}{picked}.json"


def installed_mb(requirements: tuple[str, ...]) -> float:
    """Installed size of `requirements` and their whole dependency closure in this environment."""
    seen: set[str] = set()
    todo = list(requirements)
    total = 0
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        total += sum(f.size or 0 for f in dist.files or [])
        for req in dist.requires or []:
            if "extra ==" not in req:  # optional extras are not installed by the plain name
                todo.append(_NAME.match(req).group(0))  # type: ignore[union-attr]
    return total / 1e6


def model_events(name: str, task: str, data_subdir: str | None = None) -> dict[str, Any]:
    """Payload-2.0 events of real test inputs: one input first, then batches of 1 and 16.

    `data_subdir` names the data set the inputs come from (default: the registry entry's)."""
    from tools.local.events import http_api_event

    inputs, parameters = real_inputs(name, task, data_subdir)

    def event(items: list[Any]) -> dict[str, Any]:
        body = json.dumps({"inputs": items, "parameters": parameters}).encode()
        return http_api_event(
            "POST", f"/models/{name}/predict", headers={"content-type": "application/json"},
            body=body, route_key="POST /models/{name}/predict", path_parameters={"name": name},
        )  # fmt: skip

    return {"first": event(inputs[:1]), "batch1": event(inputs[1:2]), "batch16": event(inputs[:16])}


def real_inputs(
    name: str, task: str, data_subdir: str | None = None
) -> tuple[list[Any], dict[str, Any]]:
    from training.data.location import data_root_for

    subdir = data_subdir or load_registry().get(name).trained().data_subdir
    folder = data_root_for(None, subdir) / subdir
    if task == "image-classification":
        from tools.evaluate import png_base64
        from training.data.cifar10 import load_cifar10

        return [png_base64(image) for image in load_cifar10(folder).test.images[:16]], {"top_k": 3}
    if task == "text-classification":
        from training.data.imdb import load_imdb

        return load_imdb(folder).test.texts[:16], {}
    from training.data.ptb import load_ptb

    return [" ".join(s[:12]) for s in load_ptb(folder).test[:16]], {"mode": "next", "top_k": 5}


# --- the processes -----------------------------------------------------------------------------


RUNTIME_PACKAGES = REPO_ROOT / "build" / "lambda-runtime" / LAMBDA_PYTHON


def runtime_packages() -> Path:
    """boto3 as the Lambda runtime provides it (the layer leaves it out): installed once for the
    runtime's Python under build/, with its bytecode, as the runtime image has it."""
    from infra.lambda_python import lambda_interpreter

    done = RUNTIME_PACKAGES / ".complete"
    if not done.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(RUNTIME_PACKAGES), "--python-version", LAMBDA_PYTHON,
             "--only-binary=:all:", "--no-compile", "boto3"],
            check=True,
        )  # fmt: skip
        command, env = lambda_interpreter(LAMBDA_PYTHON)
        subprocess.run(
            [*command, "-m", "compileall", "-q", str(RUNTIME_PACKAGES)], check=True, env=env
        )
        done.touch()
    return RUNTIME_PACKAGES


Command = tuple[list[str], dict[str, str]]


@functools.cache
def lambda_launch() -> tuple[list[str], dict[str, str], str]:
    """(python3.12 command, its extra environment, PYTHONPATH): found once per run, since the
    cold-start loop builds commands for every run (each interpreter check spawns a process)."""
    from infra.lambda_python import lambda_interpreter

    code, layer = built_assets()
    py312, py312_env = lambda_interpreter(LAMBDA_PYTHON)
    pyenv = {k: v for k, v in py312_env.items() if k == "PYENV_VERSION"}
    # Lambda's sys.path order: the function code, the layer, then the runtime's own boto3.
    return py312, pyenv, os.pathsep.join(map(str, (code, layer, runtime_packages())))


def commands(settings: dict[str, str], memory_mb: int) -> dict[str, Command]:
    """How each server starts, with the function settings (MODELFN_* variables) in `settings`,
    as a function of `memory_mb` (what Lambda tells each sandbox in its environment, and what
    modelfn sizes its engine's threads by: functions/threads.py)."""
    py312, pyenv, pythonpath = lambda_launch()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MODELFN_", "AWS_"))}
    lambda_env = {**settings, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}
    modelfn_env = {
        **base, **lambda_env, **pyenv, "PYTHONPATH": pythonpath,
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
    }  # fmt: skip
    torch_env = {**base, **lambda_env, "PYTHONPATH": str(REPO_ROOT)}
    # -P: the probe's own folder (bench/) is not put on sys.path; only the assets are.
    return {
        "modelfn": ([*py312, "-P", str(PROBE), "functions.handler:handler"], modelfn_env),
        "torch-handler": (
            [sys.executable, "-P", str(PROBE), "bench.peers.torch_lambda:handler"],
            torch_env,
        ),
    }


def probe(
    command: Command, events: Path, warmup: int, repeats: int
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """(seconds from spawn to the first response, that response's body, the probe's report)."""
    argv, env = command
    with tempfile.TemporaryFile(mode="w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*argv, str(events), str(warmup), str(repeats)], stdout=subprocess.PIPE, stderr=stderr,
            text=True, env=env, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        while line and not line.startswith("first "):  # the function's own log lines come first
            line = process.stdout.readline()
        cold = time.perf_counter() - started
        rest = process.stdout.read()  # the same buffered reader: nothing read ahead is lost
        process.wait(timeout=600)
        stderr.seek(0)
        err = stderr.read()
    if process.returncode != 0 or not line.startswith("first 200 "):
        raise SystemExit(
            f"{argv[-1]} failed ({process.returncode}): {line}{rest[-2000:]}{err[-3000:]}"
        )
    return (
        cold,
        json.loads(line.removeprefix("first 200 ")),
        json.loads(rest.strip().splitlines()[-1]),
    )


def gateway_throughput(url: str, name: str, body: str, *, requests: int) -> dict[str, float]:
    """Requests per second through the local gateway (HTTP, then a payload-2.0 event to the
    model's function process) with 1, 4 and 16 clients, `requests` batch-1 predictions each."""
    from concurrent.futures import ThreadPoolExecutor

    def call(_: int) -> None:
        bentoml_peer.post(f"{url}/models/{name}/predict", body)

    found = {}
    for clients in (1, 4, 16):
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(call, range(clients)))  # warm-up, not counted
            started = time.perf_counter()
            list(pool.map(call, range(requests)))
            found[f"c{clients}"] = requests / (time.perf_counter() - started)
    return found


# --- one run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One model under measurement: its published version fetched into a cache, its events."""

    name: str
    entry: Any
    manifest: Any
    work: Path
    events: Path  # the payload-2.0 events, as the probes read them
    requests: dict[str, Any]  # the same, loaded (the HTTP servers take their bodies)
    cached: dict[str, Command]  # each server, starting from the cache
    settings_cached: dict[str, str]  # the function settings (MODELFN_*) behind `cached`


def subject(
    name: str, store: Path, registry: Registry | None = None, data_subdir: str | None = None
) -> Subject:
    """`name` as published in `store` (`registry`: default models.toml), its events from
    `data_subdir` (default: the entry's data set)."""
    from modelfn.artifact import ArtifactError
    from modelfn.store import StoreError, open_store
    from modelfn.store.transfer import fetch_artifact

    store = store.resolve()  # the servers start in another folder
    entry = (registry or load_registry()).get(name)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    cache = work / "cache"
    try:
        manifest, _ = fetch_artifact(open_store(store), name, entry.serving.alias, cache)
    except (StoreError, ArtifactError) as exc:
        raise SystemExit(
            f"{name}: no version to measure at alias {entry.serving.alias!r} in {store} ({exc}); "
            f"`make demo` publishes all three models, `modelfn train {name}` one"
        ) from None
    events = work / "events.json"
    requests = model_events(name, entry.task, data_subdir)
    events.write_text(json.dumps(requests))
    settings = {"MODELFN_MODEL": name, "MODELFN_ALIAS": entry.serving.alias}
    settings_cached = {**settings, "MODELFN_STORE_URI": str(store), "MODELFN_CACHE_DIR": str(cache)}
    cached = commands(settings_cached, entry.serving.memory_mb)
    for target in TARGETS:  # one uncounted start each: page cache, the function's /tmp cache
        probe(cached[target], events, 0, 0)
    return Subject(name, entry, manifest, work, events, requests, cached, settings_cached)


def measure_warm(
    s: Subject, http_peers: tuple[str, ...], *, warmup: int, repeats: int
) -> dict[str, Any]:
    """Warm latency and peak RSS of each server, with no other function process running.

    Run before the local deployment starts, so its processes share no CPU with the probes.
    (The probe once reported 151 MB here with the deployment alive instead of 114: ru_maxrss,
    which it read then, carries the parent's peak into a spawned child; it reads VmHWM now.)"""
    found = {t: probe(s.cached[t], s.events, warmup, repeats)[2] for t in TARGETS}
    for peer in http_peers:
        server = bentoml_peer.Server(s.settings_cached, s.requests, peer)
        try:
            server.start()
            found[peer] = {**server.warm(warmup, repeats), "peak_rss_mb": server.peak_rss_mb()}
        finally:
            server.stop()
    return found


def measure_model(
    s: Subject,
    deployment: Any,
    warm: dict[str, Any],
    http_peers: tuple[str, ...],
    *,
    runs: int,
    repeats: int,
    log: Any,
) -> dict[str, Any]:
    """The cold starts (cached and from S3, interleaved) and the gateway, then every figure."""
    from tools.local.s3_server import FAKE_AWS_ENV, MOTO_STORE_ENV

    name, entry, manifest, work, events, cached = (
        s.name,
        s.entry,
        s.manifest,
        s.work,
        s.events,
        s.cached,
    )
    settings = {"MODELFN_MODEL": name, "MODELFN_ALIAS": entry.serving.alias}
    s3 = {
        **settings,
        **FAKE_AWS_ENV,
        **MOTO_STORE_ENV,
        "MODELFN_STORE_URI": deployment.store_uri,
        "MODELFN_S3_ENDPOINT_URL": deployment.s3_endpoint,
    }
    cold: dict[str, list[float]] = {t: [] for t in (*TARGETS, *http_peers)}
    cold_s3: dict[str, list[float]] = {t: [] for t in (*TARGETS, *http_peers)}
    bodies: dict[str, Any] = {}
    for run in range(runs):
        for target in TARGETS if run % 2 == 0 else reversed(TARGETS):  # interleaved, alternating
            seconds, body, _ = probe(cached[target], events, 0, 0)
            cold[target].append(seconds)
            bodies[target] = body
            # A new sandbox: an empty /tmp, so the version comes from S3 (the moto server).
            fresh = commands(
                {**s3, "MODELFN_CACHE_DIR": str(work / f"s3-{target}-{run}")},
                entry.serving.memory_mb,
            )
            seconds, body, _ = probe(fresh[target], events, 0, 0)
            cold_s3[target].append(seconds)
            differs = disagreement(body, bodies[target])
            if differs:
                raise SystemExit(f"{name}: {target} answered differently from S3: {differs}")
        for peer in http_peers:
            for where, found, server_settings in (
                ("cached", cold, s.settings_cached),
                ("from S3", cold_s3, {**s3, "MODELFN_CACHE_DIR": str(work / f"s3-{peer}-{run}")}),
            ):
                server = bentoml_peer.Server(server_settings, s.requests, peer)
                try:
                    seconds, body = server.start()
                finally:
                    server.stop()
                found[peer].append(seconds)
                differs = disagreement(body, bodies["modelfn"])
                if differs:
                    raise SystemExit(f"{name}: {peer} ({where}) answered differently: {differs}")
        log(
            f"{name}: cold run {run + 1}/{runs}: "
            + "".join(
                f"{p} {cold[p][-1]:.2f} s cached, {cold_s3[p][-1]:.2f} s from S3, "
                for p in http_peers
            )
            + ", ".join(
                f"{t} {cold[t][-1]:.2f} s cached, {cold_s3[t][-1]:.2f} s from S3" for t in TARGETS
            )
        )
    differs = disagreement(bodies["torch-handler"], bodies["modelfn"])
    if differs:
        raise SystemExit(f"{name}: the torch handler and modelfn disagree: {differs}")
    rps = gateway_throughput(
        deployment.url, name, s.requests["batch1"]["body"], requests=max(repeats, 48)
    )
    log(f"{name}: gateway throughput " + ", ".join(f"{k} {v:.0f}/s" for k, v in rps.items()))
    return model_result(
        manifest=manifest,
        memory_mb=entry.serving.memory_mb,
        cold=cold,
        cold_s3=cold_s3,
        rps=rps,
        warm=warm,
        repeats=repeats,
    )


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    versions = {}
    for package in ("onnxruntime", "torch", "fastapi", "mangum", "numpy", "pydantic"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return {
        "cpu": cpu, "cores": len(os.sched_getaffinity(0)), "load_avg_1m_start": os.getloadavg()[0],
        "python_modelfn": LAMBDA_PYTHON, "python_torch_handler": platform.python_version(),
        "os": platform.platform(), "packages": versions,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="cifar10-cnn only, 3 runs, no BentoML (under a minute)"
    )
    parser.add_argument("--runs", type=int, help="cold starts per server (default 7; quick 3)")
    parser.add_argument(
        "--repeats", type=int, help="timed warm requests per batch size (default 200; quick 30)"
    )
    parser.add_argument(
        "--store", default=str(REPO_ROOT / "model_artifacts"), help="published artifacts"
    )
    parser.add_argument(
        "--models",
        help=f"comma-separated: models trained here and/or {', '.join(IMPORTED)} (default: every "
        "trained model and the imported ones; --quick: cifar10-cnn)",
    )
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    repeats = args.repeats or (30 if args.quick else 200)
    warmup = 5 if args.quick else 20
    registry = load_registry()
    trained = [n for n in registry.names() if not registry.get(n).imported]
    # The models trained here (each fed its own test split) and the benchmark's own imported ones
    # (bench/peers/imported.py, fed their data sets' test inputs). Models a user imported into
    # models.toml have no data set here, so they are left out, by name.
    measurable = [*trained, *IMPORTED]
    if args.models:
        names = args.models.split(",")
    else:
        names = ["cifar10-cnn"] if args.quick else measurable
    for name in names:
        if name not in measurable:
            raise SystemExit(
                f"--models: {name} is not a model trained here nor one the benchmark imports; "
                f"measurable: {', '.join(measurable)}"
            )
    skipped = [n for n in registry.names() if registry.get(n).imported]
    if skipped and not args.quick:
        print(f"not measured (imported, no test data here): {', '.join(skipped)}")
    mach = machine()
    # BentoML's servers over HTTP (seconds to start each); the quick check leaves them out.
    http_peers = () if args.quick else tuple(bentoml_peer.SERVICES)
    if http_peers:
        bentoml_peer.bentoml_executable()  # its own venv under build/, made on the first run
        mach["packages"]["bentoml (own venv)"] = bentoml_peer.installed_version()
    code, layer = built_assets()
    package = {
        "modelfn": folder_mb(code) + folder_mb(layer),
        "torch-handler": installed_mb(TORCH_HANDLER_REQUIREMENTS),
    }
    layer_parts = layer_parts_mb(code, layer)
    started = time.perf_counter()
    models = {}
    from modelfn.store import open_store
    from tools.local.deployment import local_deployment

    # Each store with the registry that names its models: the published store with models.toml,
    # and the imported models' own store with models.toml plus their entries.
    groups: list[tuple[Registry, Path, list[str]]] = []
    if any(n not in IMPORTED for n in names):
        groups.append((registry, Path(args.store), [n for n in names if n not in IMPORTED]))
    if any(n in IMPORTED for n in names):
        imported = [n for n in names if n in IMPORTED]
        imported_registry, imported_store = import_models(imported, log=lambda x: print(f"  {x}"))
        groups.append((imported_registry, imported_store, imported))
    for group_registry, store, group in groups:
        # Each model's test inputs: its registry entry's data set, or an imported one's own.
        data = {name: IMPORTED[name].data_subdir if name in IMPORTED else None for name in group}
        subjects = {name: subject(name, store, group_registry, data[name]) for name in group}
        # BentoML's torch service rebuilds built-in architectures only: the imported models are
        # measured against the torch handler alone.
        peers = {name: () if name in IMPORTED else http_peers for name in group}
        warm = {
            name: measure_warm(s, peers[name], warmup=warmup, repeats=repeats)
            for name, s in subjects.items()
        }
        # The local deployment: the store seeded into a moto S3 server, a function process per
        # model and the gateway in front (what `modelfn serve` runs).
        with local_deployment(group_registry, open_store(store), models=group) as deployment:
            for name in group:
                models[name] = measure_model(
                    subjects[name],
                    deployment,
                    warm[name],
                    peers[name],
                    runs=runs,
                    repeats=repeats,
                    log=print,
                )
                models[name]["package_mb"] = package_mb(subjects[name].manifest, package)
                models[name]["targets"] = targets(name, models[name])
    mach["load_avg_1m_end"] = os.getloadavg()[0]
    results: dict[str, Any] = {
        "machine": mach,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "seconds": time.perf_counter() - started,
        # The make target first where it is what ran (the page names it), then the exact command.
        "commands": [
            *([] if args.models else ["make bench-quick" if args.quick else "make bench"]),
            "python -m bench " + " ".join(argv or sys.argv[1:]),
        ],
        "limits_mb": {"zip_unzipped": ZIP_LIMIT_MB, "image": IMAGE_LIMIT_MB},
        "package_parts_mb": layer_parts,
        "prices": {
            "source": cost.SOURCE,
            "read_on": cost.READ_ON,
            "usd_per_gb_s": cost.GB_SECOND_USD,
            "usd_per_request": cost.REQUEST_USD,
        },
        "models": models,
    }
    text = json.dumps(results, indent=2)
    # The quick smoke check's figures, and a run of some of the models, are not published: they
    # go to build/, so the page keeps every model of the last whole run.
    published = not args.quick and not args.models
    out = RESULTS / "latest.json" if published else REPO_ROOT / "build" / unpublished_name(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    if published:  # a dated copy beside latest.json, kept across runs
        (RESULTS / f"{results['date'][:10]}.json").write_text(text + "\n")
        sweep = json.loads(SWEEP_JSON.read_text()) if SWEEP_JSON.is_file() else None
        write_markdown(results, REPO_ROOT / "docs" / "benchmarks.md", sweep=sweep)
        write_charts(results, REPO_ROOT / "docs" / "benchmarks")
    print(f"wrote {out} in {results['seconds']:.0f} s")
    return 0
