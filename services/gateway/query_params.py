"""The one rule for query parameters: a request that names a parameter its route does not declare
is a 422 naming it and the allowed ones. Without it FastAPI ignores unknown names, so a typo
(``?stauts=running``) silently changes what a caller gets: the query counterpart of the bodies'
``extra="forbid"``.

Applied to every route as an app-level dependency (``create_app``), because the route, and with
it the parameters it declares, is known only after routing; a middleware would match routes again.
Routes left out of the OpenAPI document (the /ui page shells, whose scripts read the query in the
browser) are not part of the contract and keep any query.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.routing import APIRoute

from shared.errors import InvalidInput

__all__ = ["declared_query_params", "reject_unknown_query_params"]


def declared_query_params(route: APIRoute) -> frozenset[str]:
    """The query names ``route`` declares, its dependencies' included. Walked per request, but
    only for requests that send query parameters: submissions and polls send none."""
    return frozenset(p.alias for p in get_flat_dependant(route.dependant).query_params)


async def reject_unknown_query_params(request: Request) -> None:
    """Dependency: InvalidInput (422) for the first query name the route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema or not request.query_params:
        return
    allowed = declared_query_params(route)
    for name in request.query_params:
        if name not in allowed:
            raise InvalidInput(
                f"{name}: not a query parameter of {request.method} {route.path}; allowed: "
                + (", ".join(sorted(allowed)) or "none"),
                param=name,
            )
