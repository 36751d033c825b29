"""An authorization function for ``mlflow server --app-name basic-auth`` in the tests.

MLflow's client sends ``MLFLOW_TRACKING_TOKEN`` as ``Authorization: Bearer <token>``; MLflow's
basic-auth app checks only user names and passwords, and lets a deployment plug in its own
check (``authorization_function`` in the auth config). This one accepts the bearer token in
``WORKBENCH_TEST_MLFLOW_TOKEN`` as the admin user and hands every other request to MLflow's own
basic-auth check, so one server tests both ways of signing in.
"""

from __future__ import annotations

import hmac
import os

from flask import request
from mlflow.server.auth import authenticate_request_basic_auth, make_basic_auth_response
from werkzeug.datastructures import Authorization


def authenticate():
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return authenticate_request_basic_auth()
    if hmac.compare_digest(header[len("bearer ") :], os.environ["WORKBENCH_TEST_MLFLOW_TOKEN"]):
        return Authorization("basic", {"username": os.environ["WORKBENCH_TEST_MLFLOW_ADMIN"]})
    return make_basic_auth_response()
