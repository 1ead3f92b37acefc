"""What the function code asset's bytecode saves on a cold start, measured as Lambda starts it.

    python -m bench.code_bytecode [--runs N] [--store DIR]

The code asset and the layer are built as infra/ builds them for x86_64 (bench.run.built_assets,
as `make bench` builds them), and cifar10-cnn is served from its published version in --store,
else from one trained here with its `tiny` preset into a temporary store (a minute). Each run
starts the handler twice, the order alternating run by run: with the code asset as it ships,
bytecode included, and with a copy of it without its __pycache__ folders (the asset as it
shipped before). A start is bench/run.py's: python3.12 with PYTHONDONTWRITEBYTECODE=1 and only
the code asset, the layer and the runtime's boto3 on sys.path, the artifact already in the
function's cache. Two figures per start:
- cold start: from spawn to the first correct response (bench/probe.py, the clock of `make bench`);
- init: the same process started with `-X importtime` and importing the handler (Lambda's init
  phase: the app built, the model loaded), read from its report: the handler's cumulative import
  time, and the self time of the code asset's modules (functions.*, modelfn.*, less the handler,
  whose own time is building the app and loading the model), which is where compiling happens:
  less exposed to the noise of the rest of the start.
Prints the median and spread of each, and the median of the paired differences.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import stats
from bench.agreement import answers
from bench.run import Command, built_assets, commands, model_events, probe
from modelfn.registry import REPO_ROOT, load_registry

MODEL = "cifar10-cnn"
SHIPPED, BEFORE = "with bytecode", "without bytecode"
CODE_PACKAGES = ("functions", "modelfn")  # the code asset's top-level packages
# One line of `-X importtime`: "import time: <self us> | <cumulative us> | <indented name>".
_IMPORT_TIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def import_times(start: Command) -> tuple[float, float]:
    """(the handler's cumulative import seconds, the code asset's modules' own seconds) of one
    start importing `functions.handler` under `-X importtime`."""
    argv, env = start
    python = argv[: argv.index("-P")]
    result = subprocess.run(
        [*python, "-X", "importtime", "-P", "-c", "import functions.handler"],
        capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"importing the handler failed: {result.stderr[-3000:]}")
    return read_import_times(result.stderr)


def read_import_times(report: str) -> tuple[float, float]:
    """(functions.handler's cumulative seconds, the self seconds of the code asset's other
    modules) from a `-X importtime` report; SystemExit if the handler is not in it."""
    handler, own = None, 0
    for line in report.splitlines():
        if match := _IMPORT_TIME.match(line):
            self_us, cumulative_us, name = int(match[1]), int(match[2]), match[4]
            # The handler's own time is the init's work (the app built, the model loaded).
            if name.split(".")[0] in CODE_PACKAGES and name != "functions.handler":
                own += self_us
            if name == "functions.handler":
                handler = cumulative_us
    if handler is None:
        raise SystemExit(f"no import time of functions.handler in: {report[-2000:]}")
    return handler / 1e6, own / 1e6


def without_bytecode(code: Path, into: Path) -> Path:
    """A copy of the code asset `code` at `into`, its __pycache__ folders left out."""
    shutil.copytree(code, into, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def published_store(store: Path, work: Path) -> Path:
    """`store` if MODEL is published there under its serving alias, else a store in `work` holding
    a version trained now with the `tiny` preset."""
    from modelfn.store import LocalStore, publish_artifact

    alias = load_registry().get(MODEL).serving.alias
    if LocalStore(store).exists(f"{MODEL}/aliases/{alias}.json"):
        return store
    from training.pipeline import train_model

    print(f"{MODEL} is not published in {store}: training its tiny preset")
    folder = train_model(MODEL, preset="tiny", out_dir=work / "artifact", log=lambda _: None)
    if folder is None:  # only a torchrun rank other than 0 gets no artifact
        raise SystemExit(f"training {MODEL} wrote no artifact")
    publish_artifact(LocalStore(work / "store"), folder, aliases=(alias,))
    return work / "store"


def starts(store: Path, work: Path) -> dict[str, Command]:
    """The two ways to start the function, each with MODEL's artifact fetched into its cache."""
    from modelfn.store import open_store
    from modelfn.store.transfer import fetch_artifact

    serving = load_registry().get(MODEL).serving
    alias = serving.alias
    cache = work / "cache"
    fetch_artifact(open_store(store), MODEL, alias, cache)
    settings = {
        "MODELFN_MODEL": MODEL, "MODELFN_ALIAS": alias,
        "MODELFN_STORE_URI": str(store), "MODELFN_CACHE_DIR": str(cache),
    }  # fmt: skip
    argv, env = commands(settings, serving.memory_mb)["modelfn"]
    code, _ = built_assets()
    stripped = without_bytecode(code, work / "code-without-bytecode")
    before = {**env, "PYTHONPATH": env["PYTHONPATH"].replace(str(code), str(stripped), 1)}
    return {SHIPPED: (argv, env), BEFORE: (argv, before)}


def measure(runs: int, store: Path) -> dict[str, dict[str, list[float]]]:
    """Seconds per figure and variant, `runs` each, the variants interleaved."""
    work = Path(tempfile.mkdtemp(prefix="bench-code-bytecode-"))
    try:
        variants = starts(published_store(store, work), work)
        events = work / "events.json"
        events.write_text(json.dumps(model_events(MODEL, load_registry().get(MODEL).task)))
        first = {name: answers(probe(start, events, 0, 0)[1]) for name, start in variants.items()}
        assert first[SHIPPED] == first[BEFORE], first  # one uncounted start each, same answer
        figures = ("cold start", "init: handler import", "init: code asset's own modules")
        found: dict[str, dict[str, list[float]]] = {f: {v: [] for v in variants} for f in figures}
        for run in range(runs):
            order = list(variants) if run % 2 == 0 else list(reversed(variants))
            for name in order:
                seconds, body, _ = probe(variants[name], events, 0, 0)
                assert answers(body) == first[name]
                handler, own = import_times(variants[name])
                for figure, value in zip(figures, (seconds, handler, own), strict=True):
                    found[figure][name].append(value)
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ms(seconds: list[float], q: float) -> str:
    return f"{stats.percentile(seconds, q) * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.code_bytecode", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=15, help="cold starts per variant")
    parser.add_argument("--store", default=str(REPO_ROOT / "model_artifacts"))
    args = parser.parse_args(argv)
    for figure, variants in measure(args.runs, Path(args.store)).items():
        print(figure)
        for name, seconds in variants.items():
            print(f"  {name:17} median {ms(seconds, 50)}  (p25 {ms(seconds, 25)}, "
                  f"p75 {ms(seconds, 75)}, min {ms(seconds, 0)}, n={len(seconds)})")  # fmt: skip
        saved = [b - a for a, b in zip(variants[SHIPPED], variants[BEFORE], strict=True)]
        print(f"  {'saved':17} median {ms(saved, 50)}  (p25 {ms(saved, 25)}, p75 {ms(saved, 75)}; "
              "each run's two starts paired)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
