"""What the online side refuses, as domain errors; `api.errors` maps each to its HTTP status in one place."""

from __future__ import annotations


class RequestError(ValueError):
    """A request value the collection cannot honour; `field` names it for the 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownItemError(LookupError):
    """An item id the collection does not hold (a path parameter: 404)."""

    def __init__(self, collection: str, item_id: str) -> None:
        super().__init__(f"collection {collection!r} has no item {item_id!r}")


class UnknownCollectionError(LookupError):
    """A collection name the service does not serve."""


class WritesUnavailableError(RuntimeError):
    """The collection takes no writes as it is served (409)."""
