"""Dependency aliases for the routes: the services the lifespan loaded into `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from retrieval.service import CollectionService


def default_collection(request: Request) -> CollectionService:
    return request.app.state.default


DefaultCollection = Annotated[CollectionService, Depends(default_collection)]
