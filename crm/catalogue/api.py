from crm.auth.guards import any_caller
from crm.catalogue import queries
from crm.catalogue.schemas import ProcedureSchema
from crm.core.blueprint import Blueprint

blp = Blueprint("catalogue", __name__, description="The procedure catalogue")


@blp.get("/procedures")
@any_caller
@blp.response(200, ProcedureSchema(many=True))
def list_procedures():
    """Every procedure a referral can be made for, with its facts."""
    return queries.active_procedures()


@blp.get("/procedures/<string:code>")
@any_caller
@blp.response(200, ProcedureSchema)
def get_procedure(code: str):
    return queries.procedure_by_code(code)
