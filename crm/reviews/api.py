from flask_smorest import Blueprint

blp = Blueprint("reviews", __name__, description="Specialist review queue and decisions")
