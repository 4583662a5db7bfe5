from flask_smorest import Blueprint

blp = Blueprint("followup", __name__, description="Follow-up check-ins")
