from flask_smorest import Blueprint

blp = Blueprint("plans", __name__, description="Treatment plans (versioned quotes)")
