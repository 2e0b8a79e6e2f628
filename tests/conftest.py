"""Shared fixtures: the example contract and signing helpers."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import settings

from pssync.model import examples

# CI draws the same examples on every run, so a red CI is never a rare draw; development explores freshly
# each run, which is where a rare counterexample should be found. No example database in either.
settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None, database=None)
settings.register_profile("dev", deadline=None, database=None)
HYPOTHESIS_PROFILE = "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(HYPOTHESIS_PROFILE)

WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTMyLWJ5dGVzLWxvbmc="
PREVIOUS_SECRET = "whsec_" + "cHJldmlvdXMtc2VjcmV0LWR1cmluZy1yb3RhdGlvbg=="


@pytest.fixture
def booked_body() -> bytes:
    return json.dumps(examples.contract_booked_webhook()).encode()
