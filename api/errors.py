"""Domain errors mapped to HTTP status codes in one place, with messages that name the bad field."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.reload_broadcast import ReloadIncompleteError
from retrieval.registry import UnknownCollectionError
from retrieval.service import RequestError, UnknownItemError


def _describe(error: dict) -> dict:
    location = ".".join(str(part) for part in error["loc"] if part != "body")
    return {"field": location or "body", "message": error["msg"], "input": error.get("input")}


def _unprocessable(errors: list[dict]) -> JSONResponse:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _unprocessable([_describe(e) for e in exc.errors()])

    @app.exception_handler(RequestError)
    async def unsupported_value(_: Request, exc: RequestError) -> JSONResponse:
        return _unprocessable([{"field": exc.field, "message": exc.message, "input": None}])

    @app.exception_handler(UnknownCollectionError)
    @app.exception_handler(UnknownItemError)
    async def not_found(_: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc.args[0] if exc.args else exc)})

    @app.exception_handler(ReloadIncompleteError)
    async def reload_incomplete(_: Request, exc: ReloadIncompleteError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(exc)})
