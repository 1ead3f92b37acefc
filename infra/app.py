"""The CDK app (`cdk.json` runs it): one modelfn stack for the models in models.toml."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import settings_from_context
from infra.stacks.modelfn_stack import ModelfnStack
from modelfn.registry import Registry, load_registry


def build(app: cdk.App, registry: Registry | None = None) -> ModelfnStack:
    """The modelfn stack on `app`, checked by cdk-nag when `app.synth()` runs.

    A cdk-nag finding that no `Validations.of(...).acknowledge(...)` covers fails the synth
    (`cdk synth`, `cdk deploy`): fix the resource, or acknowledge it beside the construct with a
    reason a security reviewer would accept.
    """
    settings = settings_from_context(app.node)
    stack = ModelfnStack(app, "Modelfn", registry=registry or load_registry(), settings=settings)
    cdk.Tags.of(app).add("project", "modelfn")
    cdk.Tags.of(app).add("stage", settings.stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> None:
    app = cdk.App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
