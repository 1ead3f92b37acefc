"""Starting, timing and measuring the BentoML peer (bench/peers/bentoml_service.py) over HTTP.

BentoML is installed into its own virtual environment under build/, with what modelfn's task
adapters import, so its pins never touch the project's. `bentoml serve` starts a supervisor and
its worker processes; cold start is the spawn to the first correct HTTP answer, warm latency is
timed by this process around each HTTP request (so it includes the loopback round trip, which
the Lambda handlers do not pay), and peak RSS is summed over the server's process tree.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from modelfn.registry import REPO_ROOT

VENV = REPO_ROOT / "build" / "bentoml-venv"
# BentoML and the imports of modelfn's loader and task adapters (functions/, modelfn/), boto3
# for a version fetched from S3.
# torch is pinned as in the project (the CPU build on this machine's disk) for the second row.
REQUIREMENTS = ("bentoml", "onnxruntime", "numpy", "pillow", "pydantic", "fastapi", "aws-lambda-powertools", "boto3",
                "torch==2.13.0", "safetensors")  # fmt: skip
# server name in the results -> the service `bentoml serve` starts
SERVICES = {
    "bentoml": "bench.peers.bentoml_service:OnnxService",
    "bentoml-torch": "bench.peers.bentoml_service:TorchService",
}


def bentoml_executable() -> Path:
    done = VENV / ".complete"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [
                str(VENV / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *REQUIREMENTS,
            ],
            check=True,
        )
        done.touch()
    return VENV / "bin" / "bentoml"


def installed_version() -> str:
    result = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import bentoml; print(bentoml.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def post(url: str, body: str, timeout: float = 60) -> dict[str, Any]:
    """POST a JSON body, return the JSON answer; anything but 200 raises (urllib's HTTPError
    for 4xx and 5xx)."""
    request = urllib.request.Request(
        url, data=body.encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status}")
        result: dict[str, Any] = json.loads(response.read())
        return result


class Server:
    """One `bentoml serve` process tree; `start` returns when it answered the first request."""

    def __init__(
        self, settings: dict[str, str], events: dict[str, Any], service: str = "bentoml"
    ) -> None:
        self.settings, self.events, self.service = settings, events, SERVICES[service]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/predict"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)

    def start(self, timeout: float = 180) -> tuple[float, dict[str, Any]]:
        """(seconds from spawn to the first correct answer, that answer)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "MODELFN_", "VIRTUAL_ENV"))
        }
        env.update(self.settings, PYTHONPATH=str(REPO_ROOT), BENTOML_DO_NOT_TRACK="True")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(bentoml_executable()), "serve", self.service, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        body = self.events["first"]["body"]
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                break
            try:
                answer = post(self.url, body)
                return time.perf_counter() - started, answer
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.02)
        self.log.seek(0)
        raise SystemExit(
            f"bentoml serve did not answer: {self.log.read()[-3000:].decode(errors='replace')}"
        )

    def warm(self, warmup: int, repeats: int) -> dict[str, list[float]]:
        found = {}
        for key in ("batch1", "batch16"):
            body = self.events[key]["body"]
            for _ in range(warmup):
                post(self.url, body)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                post(self.url, body)
                times.append((time.perf_counter() - started) * 1000)
            found[key] = times
        return found

    def peak_rss_mb(self) -> float:
        """VmHWM (peak resident set) summed over the server and every process under it."""
        assert self.process is not None
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        total, todo = 0, [self.process.pid]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
