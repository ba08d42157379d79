"""Dependency aliases for the routes: the registry the lifespan loaded into `app.state`, and its services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import Metrics
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


Registry = Annotated[CollectionRegistry, Depends(registry)]
DefaultCollection = Annotated[CollectionService, Depends(default_collection)]
NamedCollection = Annotated[CollectionService, Depends(named_collection)]
AppMetrics = Annotated[Metrics, Depends(metrics)]
