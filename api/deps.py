"""Dependency aliases for the routes: the registry the lifespan loaded into `app.state`, and its services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Request

from api.metrics import Metrics
from api.reload_broadcast import ReloadBroadcast
from retrieval.registry import CollectionRegistry
from retrieval.service import CollectionService


def registry(request: Request) -> CollectionRegistry:
    return request.app.state.registry


def default_collection(request: Request) -> CollectionService:
    return request.app.state.registry.default


def named_collection(name: str, request: Request) -> CollectionService:
    return request.app.state.registry.get(name)


def metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def broadcast(request: Request) -> ReloadBroadcast | None:
    return request.app.state.broadcast


def max_query_chars(request: Request) -> int:
    return request.app.state.max_query_chars


def request_id(
    x_request_id: Annotated[
        str | None,
        Header(
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Your id for this request (printable ASCII, at most 128); one is made up otherwise. "
            "The response and the ranker's feature log carry it.",
        ),
    ] = None,
) -> str:
    return x_request_id or uuid.uuid4().hex


Registry = Annotated[CollectionRegistry, Depends(registry)]
DefaultCollection = Annotated[CollectionService, Depends(default_collection)]
NamedCollection = Annotated[CollectionService, Depends(named_collection)]
AppMetrics = Annotated[Metrics, Depends(metrics)]
RequestId = Annotated[str, Depends(request_id)]
MaxQueryChars = Annotated[int, Depends(max_query_chars)]
Broadcast = Annotated[ReloadBroadcast | None, Depends(broadcast)]
