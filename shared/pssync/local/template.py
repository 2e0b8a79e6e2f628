"""Synthesize the real CDK app (bundling skipped) and cache the template by the hash of its inputs."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path
from typing import Any


def find_project_root(start: Path | None = None) -> Path:
    """The checkout that holds infra/app.py (the local runtime runs the repository's own wiring)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "infra" / "app.py").is_file() and (candidate / "functions").is_dir():
            return candidate
    raise FileNotFoundError(
        "run from inside a pssync checkout (no infra/app.py found above the current directory)"
    )


def project_context(root: Path, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CDK context `cdk synth` would use: cdk.json's `context` (the user's sources), then `context`."""
    cdk_json = root / "cdk.json"
    configured = json.loads(cdk_json.read_text()).get("context", {}) if cdk_json.is_file() else {}
    return {**configured, **(context or {})}


def _inputs_digest(root: Path, context: dict[str, Any] | None = None) -> str:
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in (*(root / "infra").rglob("*.py"), *(root / "infra").rglob("*.json"), root / "cdk.json")
        if p.is_file() and "__pycache__" not in p.parts
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update(importlib.metadata.version("aws-cdk-lib").encode())
    if context:  # another context is another app: its template is cached apart
        digest.update(b"context:" + json.dumps(context, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]


def load_template(
    root: Path, *, use_cache: bool = True, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The stack template as `cdk synth` would produce it, without asset bundling.

    The context is cdk.json's (the sources a user configured), overridden by `context` (e.g. Event Relay and
    Kantata sources in tests); both are part of the cache key (cdk.json's bytes, `context` itself).
    """
    local_node = root / "node_modules" / ".bin" / "node"
    if local_node.exists():  # jsii on the project-local Node 22 (see the Makefile); read at import
        os.environ.setdefault("JSII_NODE", str(local_node))
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    cache_dir = root / "build" / "local"
    cache_file = cache_dir / f"template-{_inputs_digest(root, context)}.json"
    if use_cache and cache_file.is_file():
        return dict(json.loads(cache_file.read_text()))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from infra.app import build_app

    assembly = build_app(bundle=False, context=project_context(root, context) or None).synth()
    stacks = assembly.stacks
    if len(stacks) != 1:
        raise RuntimeError(f"expected one stack in the CDK app, found {len(stacks)}")
    template: dict[str, Any] = stacks[0].template
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(template, indent=1, sort_keys=True))
    return template
