"""Who may do what: every endpoint declares the least role it needs with ``@requires``.

``viewer`` sees pages; ``operator`` also runs, cancels, restores and verifies; ``admin`` also edits projects,
drives and tapes, users, keys and imports. ``@public`` marks the few endpoints anyone may reach (the sign-in
page, /healthz, the language switch). An endpoint with no declaration is refused for everyone
(``gate.py``), and tests/integration/test_roles.py walks the URL map so a new route without a decision
fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)  # each role can do everything the ones before it can
PUBLIC = "public"
ROLE_ATTRIBUTE = "stagebackup_role"
# Flask's own static files endpoint cannot be decorated: its decision is recorded here.
BUILT_IN_ENDPOINTS = {"static": PUBLIC}

View = TypeVar("View", bound=Callable)


def requires(role: str) -> Callable[[View], View]:
    """Declare the least role an endpoint needs. Put it directly under the route decorator."""
    if role not in ROLES and role != PUBLIC:
        raise ValueError(f"unknown role {role!r}")

    def declare(view: View) -> View:
        setattr(view, ROLE_ATTRIBUTE, role)
        return view

    return declare


public = requires(PUBLIC)


def declared_role(app: Flask, endpoint: str) -> str | None:
    """The endpoint's declared role, ``PUBLIC``, or None when it declares nothing."""
    if endpoint in BUILT_IN_ENDPOINTS:
        return BUILT_IN_ENDPOINTS[endpoint]
    return getattr(app.view_functions.get(endpoint), ROLE_ATTRIBUTE, None)


def allows(role: str | None, required: str) -> bool:
    """Whether a user with ``role`` may use an endpoint that requires ``required``."""
    if required == PUBLIC:
        return True
    return role in ROLES and ROLES.index(role) >= ROLES.index(required)
