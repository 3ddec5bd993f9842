"""moto's server for the end-to-end tests, made to behave as AWS does where the tests rely on it.

- Atomicity: AWS applies a conditional write atomically (DynamoDB's `ConditionExpression`, an
  `attribute_not_exists` put); moto's threaded server evaluates the condition and writes in two steps, so two
  concurrent requests can both pass a condition only one of them should. Tests that race hubs against one
  table need the guarantee AWS gives, so this server takes a lock around each request (connections are still
  served by threads, with keep-alive).
- Stack deletion: CloudFormation deletes an `AWS::IAM::ManagedPolicy` with its stack; moto keeps it (the
  resource has no delete there), so a test could not see a permission boundary go with its stack.

Usage: python moto_server.py HOST PORT
"""

import sys
import threading

from moto.iam.models import ManagedPolicy, iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.utilities.utils import get_partition
from werkzeug.serving import run_simple


def _delete_managed_policy(self, account_id, region_name):
    """What CloudFormation does for a managed policy on stack deletion: detach it, then delete it."""
    backend = iam_backends[account_id][get_partition(region_name)]
    for role in backend.roles.values():
        role.managed_policies.pop(self.arn, None)
    backend.delete_policy(self.arn)


ManagedPolicy.delete = _delete_managed_policy

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
