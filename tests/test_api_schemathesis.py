"""Property-based run over the service's own OpenAPI schema: no request, valid or not, gets a 500, and
every documented answer matches its schema.

Runs against PostgreSQL when CI provides it (the stricter backend: it refuses NUL in text), else SQLite.
"""

import contextlib
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.main import create_app
from tests.api_helpers import POSTGRES_URL, Service, database, settings_for

_stack = contextlib.ExitStack()
_url = _stack.enter_context(database("postgresql" if POSTGRES_URL else "sqlite",
                                    Path(tempfile.mkdtemp(prefix="duijie-schemathesis-"))))
APP = create_app(settings_for(_url))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
KEYS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def running_service():
    with TestClient(APP) as client:
        svc = Service(client)
        svc.load_lists()
        svc.match("n-food")
        KEYS.update(svc.keys)
        yield
    _stack.close()


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_schema_no_server_errors(case):
    response = case.call(headers={"Authorization": f"Bearer {KEYS['admin']}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
    # Every answer whose status the schema documents has the documented shape and content type.
    case.validate_response(response, checks=[response_schema_conformance, content_type_conformance])
