"""Fixtures of the account tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from calchub.db.tables import password_reset_attempts
from tests.api.accounts.helpers import SECRETS, MakeUser, new_password
from tests.conftest import User
from tests.harness import Database


@pytest.fixture
def new_user(make_user: MakeUser) -> MakeUser:
    """make_user with a fresh password per account, remembered as a secret."""

    def make(**kwargs: Any) -> User:
        kwargs.setdefault("password", new_password())
        user = make_user(**kwargs)
        SECRETS.update({user.api_key, user.password})
        return user

    return make


@pytest.fixture
def reset_limits(db: Database) -> Iterator[None]:
    """Every test shares one client IP: start and leave the attempt counters empty."""
    db.execute(delete(password_reset_attempts))
    yield
    db.execute(delete(password_reset_attempts))
