"""Lag metrics count from the source's timestamp to ours and never go below 0 (a sender's clock ahead of
ours is skew, not negative lag: one negative value would pull every average and percentile down)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pssync.observability import elapsed_seconds

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_elapsed_seconds_is_the_time_from_the_source_stamp_to_now() -> None:
    assert elapsed_seconds(NOW - timedelta(minutes=2, milliseconds=500), NOW) == 120.5
    assert elapsed_seconds(NOW, NOW) == 0.0


def test_a_source_stamp_in_the_future_is_zero_lag_not_negative() -> None:
    assert elapsed_seconds(NOW + timedelta(days=155), NOW) == 0.0
