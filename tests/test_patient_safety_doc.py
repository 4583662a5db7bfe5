"""The hazard log (docs/patient-safety.md) names the tests that prove its controls: every
one must exist, so renaming or deleting a test cannot silently leave a control unproven."""

from __future__ import annotations

import re

from tests.conftest import ROOT

HAZARD_LOG = ROOT / "docs" / "patient-safety.md"
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _named_tests() -> list[tuple[str, str]]:
    return NAMED_TEST.findall(HAZARD_LOG.read_text(encoding="utf-8"))


def test_every_test_the_hazard_log_names_exists():
    missing = [
        f"{path}::{name}"
        for path, name in _named_tests()
        if not (ROOT / path).is_file()
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []


def test_every_hazard_names_at_least_one_test():
    text = HAZARD_LOG.read_text(encoding="utf-8")
    hazards = re.split(r"^### ", text, flags=re.M)[1:]
    assert len(hazards) == 12
    for hazard in hazards:
        title = hazard.splitlines()[0]
        assert NAMED_TEST.search(hazard), f"{title} names no test"
        for part in ("**Cause.**", "**Control.**", "**Residual risk.**", "**Rating.**"):
            assert part in hazard, f"{title} lacks {part}"
