"""CDK entry point: `cdk synth` runs this file (cdk.json); tests and the local runtime call `build_app`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # `python infra/app.py` puts infra/ first on sys.path, where infra/constructs would shadow the
    # `constructs` library that aws_cdk imports. Import from the repository root instead.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO_ROOT / "infra"]
    sys.path.insert(0, str(_REPO_ROOT))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.sources import (  # noqa: E402
    EVENT_RELAY_CONTEXT_KEY,
    KANTATA_CONTEXT_KEY,
    SOURCES_CONTEXT_KEY,
    parse_event_relay,
    parse_kantata,
    parse_sources,
)
from infra.stack import PssyncStack  # noqa: E402

STAGE_CONTEXT_KEY = "pssync:stage"
# Skips asset bundling (no pip downloads): the layer asset is then the unbundled shared/ directory.
NO_BUNDLING_CONTEXT = {"aws:cdk:bundling-stacks": []}


def build_app(*, bundle: bool = True, stage: str = "dev", context: dict[str, Any] | None = None) -> cdk.App:
    """The whole pssync app with AwsSolutions checks; `app.synth()` raises on any unacknowledged finding.

    `-c pssync:stage=<name>` on the CDK command line overrides `stage`; `context` adds context values
    (tests and the local runtime configure Event Relay and Kantata sources this way).
    """
    # post_cli_context wins over the CLI's own `aws:cdk:bundling-stacks` (which defaults to all stacks).
    app = cdk.App(context=context, post_cli_context=None if bundle else NO_BUNDLING_CONTEXT)
    stage = str(app.node.try_get_context(STAGE_CONTEXT_KEY) or stage)
    sources = parse_sources(app.node.try_get_context(SOURCES_CONTEXT_KEY), stage)
    PssyncStack(
        app,
        f"pssync-{stage}",
        stage=stage,
        sources=sources,
        event_relay=parse_event_relay(app.node.try_get_context(EVENT_RELAY_CONTEXT_KEY), sources),
        kantata=parse_kantata(app.node.try_get_context(KANTATA_CONTEXT_KEY), sources),
        description=f"pssync ({stage}): CRM / PSA / ERP / revenue sync",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
