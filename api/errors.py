"""Domain errors mapped to HTTP status codes in one place, with messages that name the bad field.

A 422 has FastAPI's shape, so clients written for FastAPI keep working: ``detail`` is a list of errors,
each with ``type``, ``loc`` (e.g. ``["body", "k"]``), ``msg`` and ``input``. Each also carries ``field``, the
dotted name of the request value (``k``, ``filters.colour``; ``body`` for the body as a whole), and the
service's own refusals (a filter on a field the collection lacks, an unknown branch or item) come in the
same list with type ``value_error``. A body that is not a JSON object sent as ``application/json`` (another
Content-Type, bytes that are not UTF-8, a syntax error, nesting too deep to read) is a 422 on ``body`` that
says so. What the client sent is echoed bounded and made writable as JSON (`api.echo`): a ``NaN`` or a lone
surrogate once made the error response itself fail with a 500.

Other errors (401, 403, 404, 405, 409, 413, 500) have a string ``detail``, as FastAPI's `HTTPException`
does; a path no route serves and a method a route does not take say which path and which methods.
A reload refused because a newly published version cannot be opened (`ReloadFailedError`) is a 500 whose
``detail`` names each collection, version and file, with the same per collection under ``failures`` and the
versions still served under ``versions``.
"""

from __future__ import annotations

import email.message
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.echo import echo, text
from api.reload_broadcast import ReloadIncompleteError
from retrieval.errors import RequestError, UnknownCollectionError, UnknownItemError, WritesUnavailableError
from retrieval.registry import ReloadFailedError

MESSAGE_CHARS = 1000  # a message or string detail is cut to this many characters
# What FastAPI answers when it could not read a body (it keeps the reason as the exception's cause).
UNREADABLE_BODY = "There was an error parsing the body"
FASTAPI_JSON_ERROR = "JSON decode error"  # FastAPI's message for a body json.loads refused
JSON_BODY = "the body must be a JSON object sent with Content-Type: application/json"


def _field(location: Sequence[Any], kind: str = "") -> str:
    """The dotted request field of a FastAPI error location, without where it came from (body, query)."""
    if kind == "json_invalid":  # FastAPI puts the character position after "body"
        return "body"
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


def _error(error: Mapping[str, Any], request: Request | None) -> dict[str, Any]:
    """One 422 error as it is sent: a clearer message for an unreadable body, the input echoed safely."""
    kind = str(error.get("type", "value_error"))
    location = [part if isinstance(part, int) else text(str(part), MESSAGE_CHARS) for part in error["loc"]]
    message = str(error.get("msg", ""))
    if kind == "json_invalid" and message == FASTAPI_JSON_ERROR:
        reason = (error.get("ctx") or {}).get("error")
        at = error["loc"][-1] if isinstance(error["loc"][-1], int) else None
        message = f"{JSON_BODY}; it is not valid JSON" + (f": {reason}" if reason else "")
        message += f" (at character {at})" if at is not None else ""
    elif location == ["body"] and request is not None:
        message = _body_message(kind, error.get("input"), request) or message
    shaped = {**error, "type": kind, "loc": location, "msg": text(message, MESSAGE_CHARS)}
    shaped["input"] = echo(error.get("input"))
    if "ctx" in error:
        shaped["ctx"] = echo(error["ctx"])
    shaped["field"] = _field(location, kind)
    return shaped


def _body_message(kind: str, given: Any, request: Request) -> str | None:
    """What is wrong with a body refused as a whole: not sent as JSON, absent, or JSON but no object."""
    if not _is_json(request):
        content_type = request.headers.get("content-type")
        got = f"this request's is {content_type!r}" if content_type else "this request has none"
        return f"{JSON_BODY}; {got}"
    if kind == "missing":
        return f"{JSON_BODY}; this request has no body"
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return f"{JSON_BODY}; this one is a JSON {_json_kind(given)}"
    return None


def _json_kind(value: Any) -> str:
    kinds = ((bool, "boolean"), (int | float, "number"), (str, "string"), (list, "array"))
    return next((name for types, name in kinds if isinstance(value, types)), "null")


def _is_json(request: Request) -> bool:
    """Whether the request says its body is JSON, as FastAPI decides it (application/json or ``+json``)."""
    header = email.message.Message()
    header["content-type"] = request.headers.get("content-type", "")
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def unprocessable(errors: Sequence[Mapping[str, Any]], request: Request | None = None) -> JSONResponse:
    """A 422 in FastAPI's shape, each error with its `field`."""
    detail = [_error(error, request) for error in errors]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


def message_response(status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error with a string `detail`, cut to `MESSAGE_CHARS` and writable as UTF-8."""
    content = {"detail": text(detail, MESSAGE_CHARS)}
    return JSONResponse(status_code=status_code, content=content, headers=dict(headers or {}))


def _unreadable_body(exc: StarletteHTTPException) -> JSONResponse | None:
    """A 422 on `body` for a body FastAPI could not read (its 400 says only that), else None."""
    cause = exc.__cause__
    if exc.status_code != 400 or exc.detail != UNREADABLE_BODY or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        reason = f"byte 0x{cause.object[cause.start]:02x} at position {cause.start} is not UTF-8"
    elif isinstance(cause, RecursionError):
        reason = "it is nested too deeply to read"
    else:
        reason = f"it could not be read: {str(cause).split(';')[0]}"
    error = {"type": "json_invalid", "loc": ["body"], "msg": f"{JSON_BODY}; {reason}", "input": None}
    return unprocessable([error])


def _routing_detail(request: Request, exc: StarletteHTTPException) -> str:
    """A routing refusal that says what was asked: the path no route serves, the methods a route takes."""
    path = text(request.url.path, 200)
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"no route serves {request.method} {path}; the API is described at /docs and /openapi.json"
    if exc.status_code == 405 and exc.detail == "Method Not Allowed":
        allowed = (exc.headers or {}).get("Allow", "")
        return f"{request.method} is not allowed on {path}; allowed: {allowed or 'none'}"
    return str(exc.detail)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return unprocessable(exc.errors(), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if (body_error := _unreadable_body(exc)) is not None:
            return body_error
        if exc.status_code in (204, 304) or not isinstance(exc.detail, str):  # FastAPI's own answer
            return await http_exception_handler(request, exc)
        return message_response(exc.status_code, _routing_detail(request, exc), exc.headers)

    @app.exception_handler(RequestError)
    async def unsupported_value(request: Request, exc: RequestError) -> JSONResponse:
        location = ["body", *exc.field.split(".")]
        error = {"type": "value_error", "loc": location, "msg": exc.message, "input": None}
        return unprocessable([error], request)

    @app.exception_handler(UnknownCollectionError)
    @app.exception_handler(UnknownItemError)
    async def not_found(_: Request, exc: LookupError) -> JSONResponse:
        return message_response(404, str(exc.args[0] if exc.args else exc))

    @app.exception_handler(WritesUnavailableError)
    async def writes_unavailable(_: Request, exc: WritesUnavailableError) -> JSONResponse:
        return message_response(409, str(exc))

    @app.exception_handler(ReloadIncompleteError)
    async def reload_incomplete(_: Request, exc: ReloadIncompleteError) -> JSONResponse:
        return message_response(500, str(exc))

    @app.exception_handler(ReloadFailedError)
    async def reload_refused(request: Request, exc: ReloadFailedError) -> JSONResponse:
        registry = request.app.state.registry
        content = {
            "detail": str(exc),
            "failures": [failure.as_dict() for failure in exc.failures],
            "versions": {name: service.version for name, service in registry.items()},
        }
        return JSONResponse(status_code=500, content=content)
