"""Add an imported model's entry to models.toml (`modelfn import`).

The entry is appended as text, so the file's comments and order stay as they are, and the whole
new text is validated by the registry's own loader before the file is replaced (atomically), so a
bad entry never reaches disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelfn.registry import ServingEntry, parse_registry


def imported_entry(name: str, task: str, description: str, serving: ServingEntry) -> str:
    """The TOML of `[models.NAME]` (imported) and its `[models.NAME.serving]` table."""
    defaults = ServingEntry()
    lines = [
        f"[models.{name}]",
        f"description = {_string(description)}",
        f'task = "{task}"',
        "imported = true                         # brought in by modelfn import, not trained here",
        "",
        f"[models.{name}.serving]",
        f'runtime = "{serving.runtime}"',
        f'alias = "{serving.alias}"',
        f"memory_mb = {serving.memory_mb}",
        f"timeout_s = {serving.timeout_s}",
    ]
    if serving.ephemeral_storage_mb != defaults.ephemeral_storage_mb:
        lines.append(f"ephemeral_storage_mb = {serving.ephemeral_storage_mb}")
    return "\n".join(lines) + "\n"


def add_imported_entry(
    path: Path, name: str, task: str, description: str, serving: ServingEntry
) -> None:
    """Append the entry to the registry file at `path`; RegistryError (nothing written) if the
    result would not load."""
    text = path.read_text(encoding="utf-8")
    updated = text.rstrip("\n") + "\n\n" + imported_entry(name, task, description, serving)
    parse_registry(updated, source=str(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, path)


def _string(text: str) -> str:
    # A JSON string (ASCII, \u escapes) is a valid TOML basic string.
    return json.dumps(text)
