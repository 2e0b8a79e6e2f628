"""The local runtime synthesizes with the context `cdk synth` would use, so `pssync local up` serves the
sources a user configured in cdk.json (it served only the built-in default)."""

from __future__ import annotations

from pathlib import Path

from pssync.local.template import project_context


def test_local_up_serves_the_sources_configured_in_cdk_json(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text(
        '{"app": "x", "context": {"pssync:sources": [{"name": "mine", "scheme": "standard-webhooks",'
        ' "system": "netsuite"}], "pssync:stage": "dev"}}'
    )
    merged = project_context(tmp_path, {"pssync:stage": "test"})
    assert merged["pssync:sources"][0]["name"] == "mine"  # cdk.json's, as `cdk synth` would read them
    assert merged["pssync:stage"] == "test"  # an explicit context wins, as `-c` does
    assert project_context(tmp_path / "missing") == {}
