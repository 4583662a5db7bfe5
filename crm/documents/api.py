from flask_smorest import Blueprint

blp = Blueprint("documents", __name__, description="Documents: MRI studies, reports, passports")
