"""Shared fixtures: the example contract and signing helpers."""

from __future__ import annotations

import json

import pytest

from pssync.model import examples

WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTMyLWJ5dGVzLWxvbmc="
PREVIOUS_SECRET = "whsec_" + "cHJldmlvdXMtc2VjcmV0LWR1cmluZy1yb3RhdGlvbg=="


@pytest.fixture
def booked_body() -> bytes:
    return json.dumps(examples.contract_booked_webhook()).encode()
