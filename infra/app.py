"""The CDK app (`cdk.json` runs it): one modelfn stack for the models in models.toml."""

from __future__ import annotations

import aws_cdk as cdk

from infra.settings import settings_from_context
from infra.stacks.modelfn_stack import ModelfnStack
from modelfn.registry import load_registry


def main() -> None:
    app = cdk.App()
    settings = settings_from_context(app.node)
    ModelfnStack(app, "Modelfn", registry=load_registry(), settings=settings)
    cdk.Tags.of(app).add("project", "modelfn")
    cdk.Tags.of(app).add("stage", settings.stage)
    app.synth()


if __name__ == "__main__":
    main()
