"""A pytest plugin: no secret, credential or request body in anything the suite logged.

Every test's captured stdout, stderr and log records (pytest keeps them in each phase's report,
passed or failed) and every local function log written during the session (build/logs/) are
scanned when the session ends; a match turns the run red, naming the pattern and where it was.
tests/reliability/test_log_hygiene.py sends requests that carry each kind of secret and a canary
body through the handler and the local gateway, so the scan has something to miss.
"""

from __future__ import annotations

import re
import time

import pytest

from modelfn.registry import REPO_ROOT

# A phrase that only ever appears inside request bodies the tests send (never in code paths that
# log): if it reaches a log, a body was logged.
CANARY_TEXT = "canary-body-q7v2 a wonderful film that no log should ever repeat"

SECRET_PATTERNS = {
    "SigV4 signature": re.compile(r"Signature=[0-9a-f]{64}"),
    "bearer token (JWT)": re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    "AWS secret key setting": re.compile(r"(?i)aws_secret_access_key\W{1,4}[A-Za-z0-9/+]{16,}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----"),
    "session token header": re.compile(r"(?i)x-amz-security-token\W{1,4}[A-Za-z0-9/+=]{16,}"),
    "request body (canary text)": re.compile(re.escape(CANARY_TEXT)),
    "request body (base64 PNG)": re.compile(r"iVBORw0KGgoAAAANSUhEUg"),
}
FUNCTION_LOGS = REPO_ROOT / "build" / "logs"


def findings(text: str, where: str) -> list[str]:
    return [
        f"{name} in {where}" for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)
    ]


class LogHygiene:
    def __init__(self) -> None:
        self.started = time.time()
        self.found: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, content in report.sections:
            self.found += findings(content, f"{report.nodeid} ({title})")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for log in sorted(FUNCTION_LOGS.glob("*.log")):
            if log.stat().st_mtime >= self.started:
                self.found += findings(log.read_text(encoding="utf-8", errors="replace"), str(log))
        if self.found:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            lines = "\n".join(f"  {f}" for f in dict.fromkeys(self.found))
            if reporter is not None:
                reporter.write_line(
                    f"\nlog hygiene: secrets or request bodies were logged:\n{lines}", red=True
                )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LogHygiene(), "modelfn-log-hygiene")
