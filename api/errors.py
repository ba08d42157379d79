"""Domain errors mapped to HTTP status codes in one place, with messages that name the bad field.

A 422 has FastAPI's shape, so clients written for FastAPI keep working: ``detail`` is a list of errors,
each with ``type``, ``loc`` (e.g. ``["body", "k"]``), ``msg`` and ``input``. Each also carries ``field``, the
dotted name of the request value (``k``, ``filters.colour``), and the service's own refusals (a filter on a
field the collection lacks, an unknown branch or item) come in the same list with type ``value_error``.
Other errors (404, 409, 500) have a string ``detail``, as FastAPI's `HTTPException` does. A reload refused
because a newly published version cannot be opened (`ReloadFailedError`) is a 500 whose ``detail`` names each
collection, version and file, with the same per collection under ``failures`` and the versions still served
under ``versions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.reload_broadcast import ReloadIncompleteError
from retrieval.errors import RequestError, UnknownCollectionError, UnknownItemError, WritesUnavailableError
from retrieval.registry import ReloadFailedError


def _field(location: Sequence[Any]) -> str:
    """The dotted request field of a FastAPI error location, without where it came from (body, query)."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


def _unprocessable(errors: Sequence[dict[str, Any]]) -> JSONResponse:
    detail = [{**error, "field": _field(error["loc"])} for error in errors]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _unprocessable(exc.errors())

    @app.exception_handler(RequestError)
    async def unsupported_value(_: Request, exc: RequestError) -> JSONResponse:
        location = ["body", *exc.field.split(".")]
        return _unprocessable([{"type": "value_error", "loc": location, "msg": exc.message, "input": None}])

    @app.exception_handler(UnknownCollectionError)
    @app.exception_handler(UnknownItemError)
    async def not_found(_: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc.args[0] if exc.args else exc)})

    @app.exception_handler(WritesUnavailableError)
    async def writes_unavailable(_: Request, exc: WritesUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(ReloadIncompleteError)
    async def reload_incomplete(_: Request, exc: ReloadIncompleteError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(exc)})

    @app.exception_handler(ReloadFailedError)
    async def reload_refused(request: Request, exc: ReloadFailedError) -> JSONResponse:
        registry = request.app.state.registry
        content = {
            "detail": str(exc),
            "failures": [failure.as_dict() for failure in exc.failures],
            "versions": {name: service.version for name, service in registry.items()},
        }
        return JSONResponse(status_code=500, content=content)
