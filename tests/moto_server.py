"""moto's server for the end-to-end tests, with AWS's atomicity: one request at a time.

AWS applies a conditional write atomically (DynamoDB's `ConditionExpression`, an `attribute_not_exists`
put); moto's threaded server evaluates the condition and writes in two steps, so two concurrent requests can
both pass a condition only one of them should. Tests that race hubs against one table need the guarantee
AWS gives, so this server takes a lock around each request (connections are still served by threads, with
keep-alive). Usage: python moto_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_lock = threading.Lock()
_app = DomainDispatcherApplication(create_backend_app)


def serialized(environ, start_response):
    with _lock:
        result = _app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    return [body]


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialized, threaded=True)
