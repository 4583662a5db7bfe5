import pytest

from tests.travel.support import use_core_guards


@pytest.fixture(autouse=True)
def _core_guards(monkeypatch):
    """These tests are about nudges; the review, plan and document guards have their own."""
    use_core_guards(monkeypatch)
