"""A pytest plugin: no secret, credential or request body in anything the suite logged.

Every test's captured stdout, stderr and log records (pytest keeps them in each phase's report,
passed or failed) and every local function log written during the session (build/logs/) are
scanned when the session ends; a match turns the run red, naming the pattern and where it was.
tests/reliability/test_log_hygiene.py sends requests that carry each kind of secret and a canary
body through the handler and the local gateway, so the scan has something to miss, and feeds
every form a secret takes in a log (a header line, JSON, a dict's repr, the ASGI scope's byte
pairs) to `findings`, so the scan itself is tested.

Two nets: patterns for the shapes of secrets (a SigV4 signature, a JWT, a named key or token
followed by its value, however quoted), and the literal values the tests send, which a test
registers with `remember_secret` (generated keys included), found in whatever form they appear.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from modelfn.registry import REPO_ROOT

# A phrase that only ever appears inside request bodies the tests send (never in code paths that
# log): if it reaches a log, a body was logged.
CANARY_TEXT = "canary-body-q7v2 a wonderful film that no log should ever repeat"

# A name, then its value: `name: v`, `name=v`, `"name": "v"`, `'name': 'v'`, and the ASGI
# scope's byte pairs `(b'name', b'v')` (what a middleware printing its headers writes), and any
# of these escaped once more inside a JSON string.
_THEN_VALUE = r"""[\\'"]*\s*[:=,]\s*b?[\\'"]*"""

SECRET_PATTERNS = {
    "SigV4 signature": re.compile(r"Signature=[0-9a-f]{64}"),
    "bearer token (JWT)": re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    "AWS secret key setting": re.compile(
        rf"(?i)(?:aws_)?secret_(?:access_)?key{_THEN_VALUE}[A-Za-z0-9/+_-]{{16,}}"
    ),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----"),
    "session token header": re.compile(
        rf"(?i)(?:x-amz-security-token|aws_session_token){_THEN_VALUE}[A-Za-z0-9/+=_-]{{16,}}"
    ),
    "authorization header": re.compile(rf"(?i)authorization{_THEN_VALUE}(?:AWS4-HMAC|Bearer )"),
    "request body (canary text)": re.compile(re.escape(CANARY_TEXT)),
    "request body (base64 PNG)": re.compile(r"iVBORw0KGgoAAAANSUhEUg"),
}
# The literal secrets tests send (name -> value); `findings` looks for each as it is and as JSON
# and repr() escape it.
SECRETS: dict[str, str] = {}


def remember_secret(name: str, value: str) -> str:
    """Have the scan look for `value` itself in everything logged from now on; returns it."""
    if len(value) < 8:
        raise ValueError(f"secret {name!r} is too short to search for without false alarms")
    SECRETS[name] = value
    return value


FUNCTION_LOGS = REPO_ROOT / "build" / "logs"


def _forms(value: str) -> set[str]:
    # As written, JSON-escaped ("/" may become "\/") and repr-escaped (inside b'...' or '...').
    return {value, json.dumps(value)[1:-1], value.replace("/", "\\/"), repr(value)[1:-1]}


def findings(text: str, where: str) -> list[str]:
    found = [
        f"{name} in {where}" for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)
    ]
    found += [
        f"{name} (its value) in {where}"
        for name, value in SECRETS.items()
        if any(form in text for form in _forms(value))
    ]
    return found


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
