"""Storage URLs in messages never show a password."""

from __future__ import annotations

import pytest

from dropkit.advisor.tuning.storage import hide_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://bob:s3cret@db.example:5432/study",
            "postgresql://bob:***@db.example:5432/study",
        ),
        ("postgresql+psycopg2://bob:p%40ss@db/x", "postgresql+psycopg2://bob:***@db/x"),
        ("postgresql://bob:pa@ss@db/x", "postgresql://bob:***@db/x"),
        ("postgresql://bob:@db/x", "postgresql://bob:***@db/x"),
        ("postgresql://db/x?user=bob&password=s3cret", "postgresql://db/x?password=***&user=bob"),
        ("postgresql://bob@db/x", "postgresql://bob@db/x"),
        ("sqlite:///tmp/dropkit-tune.db", "sqlite:///tmp/dropkit-tune.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_the_password_is_hidden(url: str, shown: str) -> None:
    assert hide_password(url) == shown


@pytest.mark.parametrize("url", ["not a url at all:s3cret", "://bob:s3cret@db"])
def test_an_unparseable_url_shows_no_credentials(url: str) -> None:
    assert "s3cret" not in hide_password(url)
