"""The README is part of the product: its configuration table and commands stay true."""

import inspect
from importlib import import_module

from crm.config import SETTINGS
from crm.core.events import Event
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table():
    missing = [s.name for s in SETTINGS if f"`CRM_{s.name}`" not in README]
    assert not missing, f"add to README's configuration table: {missing}"


def test_the_readme_opens_with_the_two_commands():
    opening = README.split("\n## ", 1)[0]
    assert "make run" in opening
    assert "make test" in opening


def test_every_domain_event_is_in_the_event_table():
    names = set()
    for path in (ROOT / "crm").glob("*/events.py"):
        module = import_module(f"crm.{path.parent.name}.events")
        names |= {
            name
            for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, Event) and value is not Event
        }
    missing = sorted(name for name in names if f"`{name}`" not in README)
    assert not missing, f"add to README's event table: {missing}"
