"""The published versions' budgets, checked at synth: a version that would not fit its function
fails `cdk synth` (and so `cdk deploy`), not the first cold start at 3 a.m.

A synth has no artifact of its own: versions are published to a store and served through an
alias, so the check reads the manifest the stage's alias names (every function of a stage
serves `model-alias`, else each entry's `serving.alias`) in the store `modelfn:budget-store`
names, and computes modelfn/budget.py's budget of it against the entry's serving settings. The
default is the local store, `model_artifacts/`, where `modelfn train` and `modelfn import`
publish before `modelfn promote --from` copies a version to a stage: the version that will be
served is the one checked. `-c modelfn:budget-store=s3://BUCKET` checks a stage's own bucket
(it needs credentials that can read it); `none` turns the check off.

A model with no version under the alias, or a torch image (whose session is eager torch, not
computed), is noted and passed; a store that cannot be read is a warning, never a failed synth:
the check must not make an offline synth depend on the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelfn.artifact import ArtifactError
from modelfn.budget import version_budget
from modelfn.registry import REPO_ROOT, ModelEntry
from modelfn.store import NotFound, StoreError, open_store, read_published_manifest

OFF = "none"  # modelfn:budget-store's value that turns the check off


class BudgetRefused(ValueError):
    """A published version does not fit its function; the message names each model, the setting
    and the value that would work."""


@dataclass(frozen=True)
class BudgetCheck:
    """The check's outcome (refusals raise BudgetRefused)."""

    store: str | None  # the store read, None where the check is off
    checked: dict[str, str] = field(default_factory=dict)  # model -> its budget's summary
    notes: list[str] = field(default_factory=list)  # models passed unchecked, and why
    warnings: list[str] = field(default_factory=list)


def store_uri(setting: str) -> str | None:
    """The store `modelfn:budget-store` names: a relative folder is the repository's, as
    `cdk synth` runs from its root; None where the setting is `none`."""
    if setting == OFF:
        return None
    if "://" in setting or Path(setting).is_absolute():
        return setting
    return str(REPO_ROOT / setting)


def check_budgets(
    entries: Sequence[ModelEntry], *, setting: str, stage: str, model_alias: str | None
) -> BudgetCheck:
    """Every entry's served version against its serving settings; BudgetRefused lists every
    version that does not fit, after all were checked."""
    uri = store_uri(setting)
    if uri is None:
        return BudgetCheck(store=None)
    store = open_store(uri)
    result = BudgetCheck(store=store.uri)
    refusals: list[str] = []
    for entry in entries:
        alias = model_alias or entry.serving.alias
        if entry.serving.runtime != "onnxruntime":
            result.notes.append(
                f"{entry.name}: budget not computed for runtime {entry.serving.runtime} "
                "(onnxruntime sessions only)"
            )
            continue
        try:
            manifest = read_published_manifest(store, entry.name, alias)
        except NotFound:
            result.notes.append(
                f"{entry.name}: no version under alias {alias!r} in {store.uri}, so its budget "
                "is checked when one is published (modelfn import, modelfn package --store)"
            )
            continue
        except (StoreError, ArtifactError) as exc:
            result.warnings.append(
                f"stage {stage}: the budget of {entry.name} (alias {alias!r} in {store.uri}) "
                f"went unchecked: {exc}"
            )
            continue
        budget = version_budget({name: f.size for name, f in manifest.files.items()}, entry.serving)
        what = f"{entry.name} {manifest.version} (alias {alias} in {store.uri})"
        result.checked[entry.name] = f"{what}: {budget.summary()}"
        refusals += [f"{what}: {f.message}" for f in budget.refusals]
        result.warnings.extend(f"stage {stage}: {what}: {f.message}" for f in budget.warnings)
    if refusals:
        raise BudgetRefused(
            f"stage {stage}: {len(refusals)} served version(s) would not fit their functions "
            "(modelfn/budget.py; docs/serving.md, 'Sizing a large model'):\n- "
            + "\n- ".join(refusals)
        )
    return result
