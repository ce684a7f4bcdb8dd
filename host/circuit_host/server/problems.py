"""Every error as RFC 9457 problem details (``application/problem+json``), mapped in one place."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..connectors.crm.api import CrmError
from ..errors import CircuitError, DmlError, QueryError, Rejected
from ..platform import Conflict, NotFound

log = structlog.get_logger("circuit.server")


class Problem(Exception):
    """An error with an HTTP status, raised by routes and dependencies."""

    def __init__(self, status: int, title: str, detail: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def problem_response(status: int, title: str, detail: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


_STATUS_OF: tuple[tuple[type[CircuitError], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (QueryError, 400, "Invalid query"),
    (DmlError, 422, "DML failed"),
    (Rejected, 422, "Rejected"),
    (CrmError, 502, "The CRM did not answer"),  # the system of record is unreachable or refused our token
)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}" for err in exc.errors()
        )
        return problem_response(422, "Invalid request", details)

    @app.exception_handler(CircuitError)
    async def on_circuit_error(request: Request, exc: CircuitError) -> JSONResponse:
        for kind, status, title in _STATUS_OF:
            if isinstance(exc, kind):
                return problem_response(status, title, str(exc))
        return problem_response(422, "Request failed", str(exc))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "Internal error", "the error was logged; nothing of the request was applied")
