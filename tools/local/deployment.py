"""A whole modelfn deployment on this machine: local S3, one function process per model, gateway.

`local_deployment()` is what `modelfn serve`, the demo and the end-to-end tests run:

    local store (model_artifacts/) --seed--> S3 (moto server, or a given endpoint)
        --fetch at init--> function process per model --> gateway on 127.0.0.1
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from modelfn.api_routes import IAM_PAGE_PROBLEM, PAGE_AUTH_MODES, route_table
from modelfn.capture import RAW_ENV, SAMPLE_RATE_ENV
from modelfn.registry import Registry
from modelfn.store import ArtifactStore, S3Store, StoreError, list_published
from tools.local.auth import Authorizer
from tools.local.capture_delivery import CaptureDelivery
from tools.local.gateway import Gateway
from tools.local.s3_server import (
    FAKE_AWS_ENV,
    FAKE_CREDENTIALS,
    LOCAL_BUCKET,
    MOTO_STORE_ENV,
    moto_s3_server,
    seed,
)
from tools.local.worker import LocalFunction
from tools.paths import LOG_DIR


class NothingToServe(StoreError):
    """No registry model has its serving alias published in the store."""


DEFAULT_LOG_DIR = LOG_DIR


@dataclass
class LocalDeployment:
    url: str
    s3_endpoint: str
    store_uri: str
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    seeded_objects: int = 0
    authorizer: Authorizer | None = None

    def pids(self) -> dict[str, int]:
        """Each running function's process id, by model (for RSS readings under load)."""
        return {name: fn.pid for name, fn in self.functions.items() if fn.pid is not None}


@contextmanager
def local_deployment(
    registry: Registry,
    source: ArtifactStore,
    *,
    port: int = 0,
    s3_endpoint: str | None = None,
    bucket: str = LOCAL_BUCKET,
    models: list[str] | None = None,
    log_dir: Path | None = DEFAULT_LOG_DIR,
    authorizer: Authorizer | None = None,
    playground: bool = True,
    cors_origins: Sequence[str] = (),
) -> Iterator[LocalDeployment]:
    """Seed S3 from `source`, start a function per published model and the gateway; stop all on exit.

    With `s3_endpoint` unset, a moto server on 127.0.0.1 is the S3; otherwise that endpoint (MinIO,
    LocalStack, ...) is used with the caller's credentials. Each function's output (one JSON log
    and metrics line per request) is appended to `log_dir/<model>.log`, as Lambda sends it to
    CloudWatch; with `log_dir` None it goes to this process's own stdout and stderr. With an
    `authorizer` (tools/local/auth.py) the gateway authorizes every route as the deployed API
    does; None leaves them open. With `playground` (the default here; a deployed function's is off)
    each function serves its model's page and card, and the gateway an index of them at `/`; an
    IAM authorizer refuses it, as the synth refuses an IAM stage's playground. `cors_origins`
    turns CORS on as a stage's `cors-origins` does (tools/local/cors.py). A model whose entry
    turns capture on has its records delivered from its log to `source` as a deployed stage's
    Firehose stream delivers them to its bucket (tools/local/capture_delivery.py).
    """
    if playground and authorizer is not None and authorizer.mode not in PAGE_AUTH_MODES:
        raise ValueError(
            f"the playground cannot work behind auth {authorizer.mode}: {IAM_PAGE_PROBLEM}; "
            "pass playground=False, or a JWT authorizer or none"
        )
    published = {m.name: m for m in list_published(source)}

    def is_published(name: str) -> bool:
        return name in published and registry.get(name).serving.alias in published[name].aliases

    if models is not None:
        for name in models:
            registry.get(name)  # an unknown name fails here, listing the known ones
        missing = [name for name in models if not is_published(name)]
        if missing:
            raise NothingToServe(
                f"{', '.join(missing)}: not published under the serving alias in {source.uri}; "
                f"train first: modelfn train {missing[0]} --preset smoke"
            )
    wanted = models if models is not None else registry.names()
    serve = [name for name in wanted if is_published(name)]
    if not serve:
        raise NothingToServe(
            f"no model of {', '.join(wanted)} is published in {source.uri}; "
            "train one first: modelfn train cifar10-cnn --preset smoke"
        )

    with ExitStack() as stack:
        fake_credentials = s3_endpoint is None
        endpoint = s3_endpoint or stack.enter_context(moto_s3_server())
        target = S3Store(
            bucket,
            endpoint_url=endpoint,
            credentials=FAKE_CREDENTIALS if fake_credentials else None,
        )
        target.ensure_bucket()
        seeded = seed(source, target)

        cache_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modelfn-tmp-")))
        functions = {}
        for name in serve:
            entry = registry.get(name)
            env = {
                "MODELFN_MODEL": name,
                "MODELFN_STORE_URI": target.uri,
                "MODELFN_ALIAS": entry.serving.alias,
                "MODELFN_PRECISION": entry.serving.precision,
                # Each sandbox has its own /tmp, so each process gets its own cache folder.
                "MODELFN_CACHE_DIR": str(cache_root / name),
                "MODELFN_S3_ENDPOINT_URL": endpoint,
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(entry.serving.memory_mb),
                "POWERTOOLS_SERVICE_NAME": f"modelfn-{name}",
                "MODELFN_PLAYGROUND": "1" if playground else "0",
            }
            if fake_credentials:  # our own moto server
                env.update({**FAKE_AWS_ENV, **MOTO_STORE_ENV})
            if entry.capture.enabled:
                env[SAMPLE_RATE_ENV] = str(entry.capture.sample_rate)
                env[RAW_ENV] = "1" if entry.capture.raw else "0"
            log_path = None
            if log_dir is not None:
                log_dir.mkdir(parents=True, exist_ok=True)
                log_path = log_dir / f"{name}.log"
            fn = LocalFunction(
                name, env, entry.serving.memory_mb, entry.serving.timeout_s, log_path=log_path
            )
            functions[name] = fn
            stack.callback(fn.stop)
            fn.start()
        captured = [
            fn.log_path
            for name, fn in functions.items()
            if registry.get(name).capture.enabled and fn.log_path is not None
        ]
        if captured:
            delivery = CaptureDelivery(source, captured)
            delivery.start()
            stack.callback(delivery.stop)
        # Cold starts overlap, as they would for separate Lambda functions.
        with ThreadPoolExecutor(max_workers=len(functions)) as pool:
            list(pool.map(lambda f: f.wait_ready(), functions.values()))

        gateway = Gateway(
            route_table(serve, playground=playground),
            functions,
            port=port,
            authorizer=authorizer,
            cors_origins=cors_origins,
        )
        gateway.start()
        stack.callback(gateway.stop)
        yield LocalDeployment(
            url=gateway.url,
            s3_endpoint=endpoint,
            store_uri=target.uri,
            functions=functions,
            seeded_objects=seeded,
            authorizer=authorizer,
        )
