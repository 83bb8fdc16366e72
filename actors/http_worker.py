"""The gunicorn worker class of both HTTP ports: uvicorn, tuned for this service.

uvloop and httptools are pinned (not "auto", so a missing one fails loudly);
the per-request access log line and the proxy-headers middleware are off: they
cost a LogRecord and a header scan per request and nothing here reads them.
"""

from uvicorn_worker import UvicornWorker

__all__ = ["GradesWorker"]


class GradesWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
