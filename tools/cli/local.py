"""`modelfn serve`, `evaluate` and `demo`: the functions run on this machine, through the same
Lambda handler the deployment runs."""

from __future__ import annotations

import argparse
import sys

from modelfn.artifact import ArtifactError, is_version
from modelfn.registry import load_registry
from modelfn.store import ArtifactStore, open_store
from tools.cli.arguments import DATA_HELP, Subparsers, positive_int
from tools.paths import SERVE_PORT


def register(sub: Subparsers) -> None:
    """Add `serve`, `evaluate`, `demo` to the `modelfn` command."""
    serve = sub.add_parser(
        "serve", help="serve published models locally behind an HTTP API gateway"
    )
    serve.add_argument("--port", type=int, default=SERVE_PORT)
    serve.add_argument(
        "--store", help="store to seed the local S3 from (default: model_artifacts/)"
    )
    serve.add_argument(
        "--s3-endpoint", help="use this S3 endpoint instead of starting a moto server"
    )
    serve.add_argument("--models", help="comma-separated model names (default: all published)")
    serve.add_argument(
        "--auth", choices=("iam", "jwt", "none"), default="none",  # tools.local.auth.AUTH_MODES
        help="authorize every route as the deployed API can: iam (SigV4, a key pair printed at start "
        "or MODELFN_GATEWAY_ACCESS_KEY_ID/_SECRET_ACCESS_KEY), jwt (RS256 against a local key; a "
        "token is printed), none (default)",
    )  # fmt: skip
    serve.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN", dest="cors_origins",
        help="answer CORS for this browser origin as a stage with it in cdk.json's cors-origins "
        "does (repeat for more; * for any); default: no CORS, as cdk.json ships",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)

    evaluate = sub.add_parser(
        "evaluate", help="recompute a published version's test figures through the Lambda handler"
    )
    evaluate.add_argument("model", help="a model name from models.toml")
    evaluate.add_argument("--version", help="a published version (default: the alias's)")
    evaluate.add_argument("--alias", default="latest", help="alias to evaluate (default: latest)")
    evaluate.add_argument("--store", help="store URI (default: model_artifacts/)")
    evaluate.add_argument(
        "--data",
        help="a trained model: its data root (default: $MODELFN_DATA_DIR, then ../shared/data); "
        "an imported model: your labelled data, PATH/<label>/*.png|jpg|jpeg for an image "
        "classifier or a CSV of texts and labels for a text classifier",
    )
    evaluate.add_argument(
        "--text-column", default="text", help="--data CSV: the column of texts (default: text)"
    )
    evaluate.add_argument(
        "--label-column",
        default="label",
        help="--data CSV: the column of label names (default: label)",
    )
    evaluate.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser(
        "demo", help="train the three models (smoke), serve them locally, query them"
    )
    demo.add_argument(
        "--images", type=positive_int, default=12, help="CIFAR-10 test images to send"
    )
    demo.add_argument("--reviews", type=positive_int, default=8, help="IMDB test reviews to send")
    demo.add_argument(
        "--sentences", type=positive_int, default=64, help="PTB test sentences to score"
    )
    demo.add_argument("--data", help=DATA_HELP)
    demo.add_argument("--port", type=int, default=0, help="gateway port (default: any free port)")
    demo.add_argument(
        "--epochs", type=positive_int, help="override the smoke presets' epoch counts"
    )
    demo.add_argument("--store", help="local store to publish into (default: model_artifacts/)")
    demo.set_defaults(func=cmd_demo)


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from modelfn.api_routes import IAM_PAGE_PROBLEM, PAGE_AUTH_MODES
    from tools.local.auth import local_authorizer
    from tools.local.deployment import local_deployment
    from tools.local.playground import page_url, playground_url

    registry = load_registry()
    source = open_store(args.store)
    models = args.models.split(",") if args.models else None
    authorizer, auth_lines = local_authorizer(args.auth)
    # As the synth decides for a stage: no page where a browser cannot call the API (iam).
    playground = args.auth in PAGE_AUTH_MODES
    with local_deployment(
        registry,
        source,
        port=args.port,
        s3_endpoint=args.s3_endpoint,
        models=models,
        authorizer=authorizer,
        playground=playground,
        cors_origins=args.cors_origins,
    ) as deployment:
        print(
            f"local S3: {deployment.s3_endpoint} ({deployment.store_uri}, {deployment.seeded_objects} objects)"
        )
        for name, fn in deployment.functions.items():
            print(f"function {name}: cold start {fn.init_ms:.0f} ms, log {fn.log_path}")
            print(f"  POST {deployment.url}/models/{name}/predict")
            print(f"  POST {deployment.url}/v2/models/{name}/infer")
            if playground:
                print(f"  page {page_url(deployment.url, name)}")
            capture = registry.get(name).capture
            if capture.enabled:  # delivered to the local store as a stage's stream delivers them
                raw = ", raw inputs" if capture.raw else ""
                print(
                    f"  capture: {capture.sample_rate:.0%} of answered requests{raw} -> "
                    f"{source.uri}/capture/{name}/ (modelfn drift {name})"
                )
        print(f"API docs: {deployment.url}/docs (OpenAPI: {deployment.url}/openapi.json)")
        if not playground:
            print(
                f"playground: off with --auth {args.auth}, as on a deployed stage: {IAM_PAGE_PROBLEM}"
            )
            print("  (--auth jwt or none serve it)")
        else:
            print(
                f"playground: {playground_url(deployment.url)} (each model's page, form and model card)"
            )
            if args.auth == "jwt":
                print(
                    '  (as on a playground "jwt" stage, its pages open without a token; each page '
                    "asks for the token below and sends it on every call)"
                )
        print(
            "\n".join(auth_lines)
            or "auth none: every route open (the deployed API uses cdk.json's modelfn:auth)"
        )
        print(f"gateway listening on {deployment.url} (Ctrl-C to stop)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    print("stopped")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tools.evaluate import served_metrics

    entry = load_registry().get(args.model)
    if args.version and not is_version(args.version):
        raise ArtifactError(f"--version {args.version!r} is not a version (see modelfn list)")
    store = open_store(args.store)
    which = args.version or args.alias
    if entry.imported:
        return _evaluate_user_data(args, store, which)
    figures = served_metrics(args.model, store, alias=which, data=args.data)
    print(f"{args.model} ({which}), test split through the Lambda handler:")
    print(f"  {'metric':<26} {'recorded':>12} {'recomputed':>12}  relative difference")
    worst = 0.0
    for metric, (trained, served) in figures.items():
        difference = abs(served - trained) / max(abs(trained), 1e-12)
        worst = max(worst, difference)
        print(f"  {metric:<26} {trained:>12.6g} {served:>12.6g}  {difference:.1e}")
    # float32 graphs and a different summation order: agreement to 1e-4 is "the same".
    print("served equals trained" if worst <= 1e-4 else f"MISMATCH: up to {worst:.1e} relative")
    return 0 if worst <= 1e-4 else 1


def _evaluate_user_data(args: argparse.Namespace, store: ArtifactStore, which: str) -> int:
    """An imported model's figures on the user's labelled data, beside whatever it recorded."""
    from tools.user_data import UserDataError
    from tools.user_evaluation import user_data_metrics

    if not args.data:
        print(
            f"error: {args.model} was imported, so modelfn holds no test data for it: give your "
            "labelled data with --data PATH (a folder per label of .png/.jpg/.jpeg images for an "
            "image classifier, a CSV of texts and labels for a text classifier)",
            file=sys.stderr,
        )
        return 2
    try:
        result = user_data_metrics(
            args.model, store, args.data, alias=which,
            text_column=args.text_column, label_column=args.label_column,
        )  # fmt: skip
    except UserDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model} ({result.manifest.version}) on {result.data}, through the Lambda handler:")
    recorded = result.manifest.metrics
    print(f"  {'metric':<16} {'your data':>10} {'recorded':>10}")
    for metric in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
        value = result.figures()[metric]
        before = f"{recorded[metric]:>10.4f}" if metric in recorded else f"{'-':>10}"
        print(f"  {metric:<16} {value:>10.4f} {before}")
    report = result.report
    print(f"  {'label':<16} {'examples':>8} {'precision':>10} {'recall':>10} {'f1':>10}")
    for i, label in enumerate(result.manifest.labels):
        if report.support[i] or report.confusion[:, i].sum():
            print(
                f"  {label:<16} {int(report.support[i]):>8} {report.precision[i]:>10.4f} "
                f"{report.recall[i]:>10.4f} {report.f1[i]:>10.4f}"
            )
    if result.absent:
        shown = ", ".join(result.absent[:10]) + (" ..." if len(result.absent) > 10 else "")
        print(
            f"  {len(result.absent)} of the model's {len(result.manifest.labels)} labels have no "
            f"example here ({shown}); the macro figures count their recall as 0, as training's do; "
            f"macro F1 over the {len(result.manifest.labels) - len(result.absent)} labels present: "
            f"{result.present_macro_f1():.4f}"
        )
    if not recorded:
        print(
            "  recorded: nothing; an imported version records no test figures (its manifest "
            "holds the import's parity check), so these are its first"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tools.demo import run_demo

    return run_demo(
        images=args.images,
        reviews=args.reviews,
        sentences=args.sentences,
        data=args.data,
        port=args.port,
        epochs=args.epochs,
        store_uri=args.store,
    )
