import pytest

from tests.messaging.support import NO_QUIET_HOURS
from tests.travel.support import use_core_guards


@pytest.fixture(autouse=True)
def _core_guards(monkeypatch):
    use_core_guards(monkeypatch)


@pytest.fixture(autouse=True)
def _no_quiet_hours(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
