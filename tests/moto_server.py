"""moto's server for the end-to-end tests, made to behave as AWS does where the tests rely on it.

- Atomicity: AWS applies a conditional write atomically (DynamoDB's `ConditionExpression`, an
  `attribute_not_exists` put); moto's threaded server evaluates the condition and writes in two steps, so two
  concurrent requests can both pass a condition only one of them should. Tests that race hubs against one
  table need the guarantee AWS gives, so this server takes a lock around each request (connections are still
  served by threads, with keep-alive).
- PartiQL `INSERT` with parameters: DynamoDB's `ExecuteStatement` inserts an item unless one with its key
  exists (then `DuplicateItemException`), taking each `?` from `Parameters` in order. moto's parser ignores
  parameters and replaces an existing item; this server implements the statement form the hub's audit store
  sends (`INSERT INTO "table" VALUE {'name': ?, ...}`) as DynamoDB documents it, and hands every other
  statement to moto.
- Stack deletion: CloudFormation deletes an `AWS::IAM::ManagedPolicy` with its stack; moto keeps it (the
  resource has no delete there), so a test could not see a permission boundary go with its stack.

Usage: python moto_server.py HOST PORT
"""

import re
import sys
import threading

from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    ConditionalCheckFailed,
    DynamodbException,
    MockValidationException,
)
from moto.dynamodb.models import DynamoDBBackend
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


class DuplicateItemException(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "DuplicateItemException"

    def __init__(self):
        super().__init__(self.error_type, "Duplicate primary key exists in table")


_INSERT = re.compile(r'\s*INSERT\s+INTO\s+"([^"]+)"\s+VALUE\s+\{(.*)\}\s*', re.IGNORECASE | re.DOTALL)
_FIELD = re.compile(r"\s*'([^']+)'\s*:\s*\?\s*")
_execute_statement = DynamoDBBackend.execute_statement


def _execute_statement_with_insert(self, statement, parameters):
    insert = _INSERT.fullmatch(statement)
    if insert is None or not parameters:
        return _execute_statement(self, statement, parameters)
    fields = [_FIELD.fullmatch(field) for field in insert.group(2).split(",")]
    if any(field is None for field in fields) or len(fields) != len(parameters):
        raise MockValidationException("the statement's values and its parameters do not match")
    table = self.get_table(insert.group(1))
    item = {field.group(1): value for field, value in zip(fields, parameters)}
    try:
        table.put_item(
            item,
            condition_expression="attribute_not_exists(#key)",
            expression_attribute_names={"#key": table.hash_key_attr},
        )
    except ConditionalCheckFailed:
        raise DuplicateItemException() from None
    return []


DynamoDBBackend.execute_statement = _execute_statement_with_insert

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
