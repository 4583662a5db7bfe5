"""gunicorn settings for `make serve`: the access log goes to stdout with credentials
redacted (patient link and unsubscribe tokens, API keys, Authorization headers)."""

logger_class = "crm.core.redact.RedactingGunicornLogger"
accesslog = "-"
