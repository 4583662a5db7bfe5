"""gunicorn settings for `make serve`.

Logs: gunicorn's own lines (starting, booting workers, a worker timeout, an error handling
a request) are JSON like the app's, credentials redacted (crm.core.logs.JsonGunicornLogger).
There is no gunicorn access log: the app writes one JSON line per request with its id,
route, actor, status and duration (README "Logs"). A request cut off by the timeout still
gets a line (the worker_abort hook below).

With PROMETHEUS_MULTIPROC_DIR set, a dead worker's live gauges are dropped from /metrics.
"""

import os

logger_class = "crm.core.logs.JsonGunicornLogger"
accesslog = None
errorlog = "-"


def worker_abort(worker):
    from crm.core.logs import request_cut_off

    request_cut_off()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
