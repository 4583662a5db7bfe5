"""The layout keeps its promises: the pipeline imports no feature, packages form no loop,
and only the request boundary and the jobs commit."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

CRM = Path(__file__).resolve().parent.parent / "crm"
FEATURES = {
    "documents",
    "reviews",
    "plans",
    "travel",
    "followup",
    "tasks",
    "nudges",
    "portal",
    "conversation",
    "commission",
}
# Where a commit may be: the request boundary, the CLI, the jobs, and the dispatcher's
# claim / send / record protocol (it must commit before it calls a provider).
MAY_COMMIT = {
    "core/http.py",
    "cli.py",
    "messaging/delivery/dispatcher.py",
    "webhooks/dispatcher.py",
}


def _imports_by_package() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in CRM.rglob("*.py"):
        parts = path.relative_to(CRM).parts
        if len(parts) < 2:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crm."):
                target = node.module.split(".")[1]
                if target != parts[0] and (CRM / target).is_dir():
                    graph[parts[0]].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            if found := visit(target):
                return found
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if found := visit(start):
            return found
    return None


def test_the_pipeline_core_imports_no_feature_package():
    assert _imports_by_package()["referrals"] & FEATURES == set()


def test_the_packages_import_each_other_without_a_loop():
    assert _cycle(_imports_by_package()) is None


def test_only_the_request_boundary_the_cli_and_the_jobs_commit():
    committing = {
        str(path.relative_to(CRM)) for path in CRM.rglob("*.py") if ".commit()" in path.read_text()
    }
    allowed = {name for name in committing if name.endswith("jobs.py")} | MAY_COMMIT
    assert committing <= allowed, committing - allowed
