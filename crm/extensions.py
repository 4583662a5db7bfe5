"""Extension handles; bound to an app in create_app() (the Api is made per app there)."""

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from crm.core.db import Base

db = SQLAlchemy(model_class=Base, disable_autonaming=True)
migrate = Migrate(compare_type=True, render_as_batch=True)


class ProblemApi(Api):
    """flask-smorest's Api whose HTTP errors are problem+json like every other error."""

    def handle_http_exception(self, error):
        from crm.core.errors import http_problem

        return http_problem(error)
