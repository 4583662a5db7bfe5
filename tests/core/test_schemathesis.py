"""The whole API fuzzed against its own OpenAPI document (schemathesis), as three callers.

Every documented operation is called by an agency (API key), a coordinator and an admin
(staff tokens), with the checks `not_a_server_error`, `response_schema_conformance`,
`status_code_conformance` and `content_type_conformance`; then a stateful phase chains
operations through links (see `test_the_api_holds_through_chains_of_calls`).
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.stateful import initialize
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm import create_app
from crm.extensions import db
from tests.factories import Caller, Factory
from tests.helpers import API

ROLES = ("agency", "coordinator", "admin")


def _openapi_document() -> dict:
    """The document as the app serves it. Building an app does no I/O (create_app's rule), so
    this runs at collection, where `@schema.parametrize()` needs it; a test below proves it is
    the document the test app serves."""
    app = create_app({"ENV": "test", "DATABASE_URL": "sqlite://", "SECRET_KEY": "x" * 40})
    return app.test_client().get(f"{API}/openapi.json").get_json()


DOCUMENT = _openapi_document()

# A resumable upload's chunk (tus PATCH) is raw bytes, which schemathesis does not make
# by itself.
schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=256))

schema = schemathesis.openapi.from_dict(
    copy.deepcopy(DOCUMENT),  # schemathesis resolves and adds links in place
    config=schemathesis.Config.from_dict(
        {
            "phases": {
                # Coverage generates every boundary of every parameter: hundreds of cases
                # per operation. Fuzzing stays; the stateful phase is its own test below
                # (it must stay enabled here: link inference only runs when it is).
                # CRM_FUZZ_COVERAGE=1 turns it on for a deeper local run.
                "coverage": {"enabled": os.environ.get("CRM_FUZZ_COVERAGE") == "1"},
                # Chains are for reaching deep states: valid inputs only (the test above
                # sends invalid ones to every operation).
                "stateful": {"generation": {"mode": "positive"}},
            },
            "generation": {
                "deterministic": True,
                # The caller's credential is sent by the test; generated Authorization
                # headers (or their removal) would make most calls a 401 and test nothing.
                "with-security-parameters": False,
            },
        }
    ),
)

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]

# Examples per operation and caller: 123 tests (41 operations, 3 callers). Raise it locally
# to dig deeper (CRM_FUZZ_EXAMPLES=200); CI keeps the default.
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "25"))

HEALTH_CHECKS = [
    # The callers, the seeded referral and the savepoint fixture are per test on purpose:
    # every example runs in a savepoint of its own (see `isolated`), so nothing leaks.
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
]

SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run and machine: a failure reproduces
    database=None,
    # No shrinking: a failure's first example (schemathesis prints its curl line) is
    # enough to start from, and shrinking would cost CI minutes.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=HEALTH_CHECKS,
)


@pytest.fixture
def caller(request, factory: Factory) -> Caller:
    role = request.param
    return factory.agency() if role == "agency" else factory.staff(role)


@pytest.fixture
def seeded_referral(caller: Caller, factory: Factory) -> int:
    """A referral this caller may see: the agency's own, or another agency's for staff.

    Generated ids almost never exist, so without one every call past authentication
    would be a 404 and no success response would be checked against its schema."""
    return _seed_referral(factory, caller)


def _seed_referral(factory: Factory, caller: Caller) -> int:
    owner = caller if caller.actor.kind == "agency" else factory.agency()
    return factory.referral(owner).id


@pytest.fixture
def isolated(connection) -> Callable[[], AbstractContextManager[None]]:
    """Each example (or scenario) in a savepoint rolled back after it.

    Hypothesis runs many examples in one test and so in one transaction: without this a
    row, an Idempotency-Key or a unique value one example wrote would change what the
    next one sees, and the order of examples would decide the outcome."""

    @contextmanager
    def example() -> Iterator[None]:
        # The session may hold a savepoint of its own (a factory's row read after commit);
        # end it first, or ours would nest inside it and the request's commit release both.
        db.session.remove()
        savepoint = connection.begin_nested()
        try:
            yield
        finally:
            db.session.remove()
            if savepoint.is_active:
                savepoint.rollback()

    return example


def test_the_fuzzed_document_is_the_one_the_app_serves(client):
    assert client.get(f"{API}/openapi.json").get_json() == DOCUMENT


@pytest.mark.parametrize("caller", ROLES, indirect=True)
@schema.parametrize()
@SETTINGS
def test_every_operation_answers_as_documented(case, app, caller, seeded_referral, isolated):
    generated = (case.path_parameters or {}).get("referral_id")
    if isinstance(generated, int) and generated % 2 == 0:
        # About half the cases, chosen by the generated id so a run replays exactly:
        # `@schema.given` would do it too but switches off the coverage phase.
        case.path_parameters["referral_id"] = seeded_referral
    with isolated():
        case.call_and_validate(app=app, headers=caller.headers(), checks=CHECKS)


# The stateful phase. The document declares no OpenAPI links; schemathesis infers them
# from it ("dependency-analysis": an `id` in a referral response feeds every
# `{referral_id}` path and query parameter, a plan's `id` feeds `{plan_id}`, and so on;
# about 380 links). Declaring them by hand in every `api.py` would say the same with
# more to keep in step. Inference links POST /referrals to nothing (its response schema
# is `ReferralDetail`, not `Referral`), so each chain starts from the caller's list.
Workflow = schema.as_state_machine()

SCENARIOS = int(os.environ.get("CRM_FUZZ_SCENARIOS", "25"))


@pytest.mark.parametrize("caller", ROLES, indirect=True)
def test_the_api_holds_through_chains_of_calls(app, caller, factory, isolated):
    keys = itertools.count(1)

    class CallerWorkflow(Workflow):
        def setup(self) -> None:
            self._scenario = isolated()
            self._scenario.__enter__()
            _seed_referral(factory, caller)

        def teardown(self) -> None:
            self._scenario.__exit__(None, None, None)

        @initialize(target=Workflow.bundles["GET /api/v1/referrals -> 200"])
        def list_referrals(self) -> StepOutput:
            """Chains start from the caller's list, which holds a referral made in
            `setup`: a generated referral is almost never valid (phone, country and time
            zone must agree), and the list's links reach every `{referral_id}` operation."""
            case = self.schema["/api/v1/referrals"]["GET"].Case(query={})
            self.recorder.record_case(case=case)  # as schemathesis's own root steps do
            return self.step(StepInput.initial(case))

        def before_call(self, case) -> None:
            # A fresh key per call: a generated one repeats across a chain ("0", "") and
            # would replay or refuse the step instead of running it. Keys themselves are
            # fuzzed by the test above.
            if case.method.upper() == "POST":
                case.headers = {**(case.headers or {}), "Idempotency-Key": f"chain-{next(keys)}"}

        def get_call_kwargs(self, case) -> dict:
            return {"app": app, "headers": caller.headers()}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs, recorder=self.recorder
            )

    CallerWorkflow.run(
        settings=hypothesis.settings(
            max_examples=SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
