"""Extension handles; bound to an app in create_app() (the Api is made per app there)."""

import http

from apispec import BasePlugin
from flask_babel import Babel
from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from flask_sqlalchemy import SQLAlchemy

from crm.core.db import Base
from crm.core.errors import PROBLEM_MEDIA_TYPE
from crm.core.schemas import ProblemSchema

db = SQLAlchemy(model_class=Base, disable_autonaming=True)
migrate = Migrate(compare_type=True, render_as_batch=True)
babel = Babel()


RATE_LIMIT_HEADERS = {
    "Retry-After": "seconds until the window resets and a request is counted again",
    "X-RateLimit-Limit": "requests the window allows (the limit nearest to refusal)",
    "X-RateLimit-Remaining": "requests left in the window",
    "X-RateLimit-Reset": "when the window resets, epoch seconds",
}


class RateLimitDocs(BasePlugin):
    """Every operation may answer 429 (crm/auth/rate_limits.py): the OpenAPI document says
    so once, as a shared response with its headers."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            operation.setdefault("responses", {}).setdefault(
                "429", http.HTTPStatus.TOO_MANY_REQUESTS.name
            )


class ProblemApi(Api):
    """flask-smorest's Api whose HTTP errors are problem+json like every other error,
    and whose OpenAPI document says so: every error response is a `Problem` sent as
    application/problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        from crm.core.errors import http_problem

        return http_problem(error)

    def _register_responses(self):
        """flask-smorest's, with the media type errors are really sent with."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status == http.HTTPStatus.TOO_MANY_REQUESTS:
                response["description"] = "Over a rate limit (README: Rate limits)"
                response["headers"] = {
                    name: {"description": text, "schema": {"type": "integer"}}
                    for name, text in RATE_LIMIT_HEADERS.items()
                }
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
