"""gunicorn settings for `make serve`: the access log goes to stdout with credentials
redacted (patient link and unsubscribe tokens, API keys, Authorization headers). With
PROMETHEUS_MULTIPROC_DIR set, a dead worker's live gauges are dropped from /metrics."""

import os

logger_class = "crm.core.redact.RedactingGunicornLogger"
accesslog = "-"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
