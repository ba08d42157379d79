"""The collections a service answers for, and hot reload of newly published versions.

A request takes a reference to a collection's service once, at its start, and keeps using it. Reload opens the
new version beside the old one, swaps the reference, and closes the old one only after a grace period, so
requests in flight finish on the version they started with and none fails. One lock is held from each
collection's version check to its swap, so concurrent reloads (the admin route, the watch thread) never both
open the same new version. A collection served with a ranker also reloads when the ranker's root publishes
a new version (a retrained ranker).

A new version that cannot be opened (a file fails its checksum, the manifest is unreadable, ...) is refused:
the collection keeps serving the version it had, the refusal is kept in `reload_failures` (what `/readyz`
shows) until a later reload of that collection succeeds or its root publishes the served version again, and
`reload` raises `ReloadFailedError` naming each refused collection, version and file after trying the other
collections. So is a new version whose ranker is refused when the previous version's ranker was serving:
the service keeps its learned ranker rather than falling back to the fusion order.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from indexer.artifact import MANIFEST, ArtifactError
from indexer.encoders import AUTO
from indexer.manifests import read_collection_params
from indexer.versions import VersionStore, resolve_artifact
from retrieval.collection import ShardOpener
from retrieval.errors import UnknownCollectionError
from retrieval.ranker_status import RankerStatus
from retrieval.service import CollectionService

log = logging.getLogger(__name__)

RETIRE_AFTER_S = 60.0
FOLLOW_WRITES_S = 0.05  # how often each process looks for writes other processes logged


def return_freed_memory() -> None:
    """Give the heap pages a retired version freed back to the OS (glibc's `malloc_trim`; nothing elsewhere).
    Without it a long-running worker's memory crept up by tens of MB per reload (`bench/soak.py`): the freed
    pages stayed in malloc's arenas, fragmented by what requests allocated meanwhile."""
    gc.collect()
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def collection_name(root: Path) -> str:
    """What the collection at `root` (an index root or a version directory) is called when the service is
    given no name for it: the name its build recorded (`build --name`), else the root's folder name.
    `ArtifactError` when `root` holds no published collection."""
    recorded = read_collection_params(resolve_artifact(root), verify=False).name  # loading verifies
    return recorded or Path(root).resolve().name


def service_opener(
    rankers: dict[str, Path] | None = None,
    feature_log: Path | None = None,
    query_encoders: dict[str, str] | None = None,
    shard_opener: ShardOpener | None = None,
) -> Callable[[Path, str, CollectionService | None], CollectionService]:
    """Opens a collection's current version (with its ranker, if one is named for it), reusing the previous
    version's loaded encoder when it fits. A ranker root is read again at each reload, so a newly trained
    ranker version is picked up with the next collection version. `query_encoders`: collection name ->
    `query_encoder` setting (``auto`` for a collection not named). `shard_opener` opens sharded versions'
    shards (`retrieval.collection.Collection.load`)."""

    def open_service(root: Path, name: str, previous: CollectionService | None) -> CollectionService:
        encoder = previous.collection.encoder if previous is not None else None
        ranker = (rankers or {}).get(name)
        return CollectionService.open(
            root,
            name=name,
            encoder=encoder,
            ranker=ranker,
            feature_log=feature_log if ranker else None,
            query_encoder=(query_encoders or {}).get(name, AUTO),
            shard_opener=shard_opener,
        )

    return open_service


@dataclass(frozen=True, slots=True)
class Reloaded:
    name: str
    old_version: str
    new_version: str
    old_ranker: str = ""
    new_ranker: str = ""


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """A refused reload of one collection: what was published, what still serves, and why."""

    collection: str
    version: str | None  # the collection version that was refused (its root's CURRENT then)
    ranker_version: str | None  # its ranker root's CURRENT then; None without a ranker
    serving: str  # the collection version still served
    error: str
    path: str | None = None  # the artifact directory (collection or ranker version) holding the file to blame
    file: str | None = None  # that file, relative to `path`, when one is to blame
    at: str = ""  # when, UTC, ISO 8601

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def describe(self) -> str:
        refused = f"version {self.version}"
        if self.version == self.serving and self.ranker_version is not None:
            refused = f"ranker version {self.ranker_version}"
        return (
            f"collection {self.collection!r}: {refused} refused, still serving {self.serving}: {self.error}"
        )


class ReloadFailedError(RuntimeError):
    """Collections that could not switch to what their roots published (`failures`); they keep serving the
    previous versions. `switched`: the collections of the same reload that did switch."""

    def __init__(self, failures: list[ReloadFailure], switched: list[Reloaded]) -> None:
        super().__init__("; ".join(failure.describe() for failure in failures))
        self.failures = failures
        self.switched = switched


class _RankerRefused(Exception):
    """The new version's ranker was refused (`status`) where the previous version's served."""

    def __init__(self, status: RankerStatus) -> None:
        super().__init__(status.error)
        self.status = status


class CollectionRegistry:
    """Named collection services; the first one is the default for routes without a collection."""

    def __init__(
        self,
        roots: dict[str, Path],
        *,
        opener: Callable[[Path, str, CollectionService | None], CollectionService] | None = None,
        retire_after_s: float = RETIRE_AFTER_S,
    ) -> None:
        if not roots:
            raise ValueError("a service needs at least one collection (--index ROOT)")
        self.roots = dict(roots)
        self._open = opener or service_opener()
        self._retire_after_s = retire_after_s
        self._reload_lock = threading.Lock()  # reads of _services stay lock-free
        self._services: dict[str, CollectionService] = {}
        self._watcher: threading.Thread | None = None
        self._follower: threading.Thread | None = None
        self._stop = threading.Event()
        # The last refused reload of each collection; replaced, never changed in place, so a reader (/readyz)
        # iterates a snapshot while a reload records another refusal.
        self.reload_failures: dict[str, ReloadFailure] = {}

    def load(self) -> None:
        """Open every collection's current version; an `ArtifactError` names the collection that failed (and
        the ones already opened are closed)."""
        for name, root in self.roots.items():
            try:
                self._services[name] = self._open(root, name, None)
            except ArtifactError as error:
                self.close()
                raise ArtifactError(
                    f"collection {name!r} cannot be served from {root}: {error}",
                    path=error.path,
                    file=error.file,
                ) from error

    @property
    def names(self) -> list[str]:
        return list(self.roots)

    @property
    def default(self) -> CollectionService:
        return self.get(self.names[0])

    def get(self, name: str) -> CollectionService:
        service = self._services.get(name)
        if service is None:
            raise UnknownCollectionError(f"unknown collection {name!r}; this service has {self.names}")
        return service

    def items(self) -> list[tuple[str, CollectionService]]:
        return [(name, self._services[name]) for name in self.names if name in self._services]

    def reload(self, name: str | None = None, *, retry: bool = True) -> list[Reloaded]:
        """Switch each named (or every) collection whose root, or whose ranker's root, published a new
        version; return the switches. A collection whose new version cannot be opened keeps serving its
        version; once every collection was tried, `ReloadFailedError` names those refused. With `retry`
        false, what was refused already (the same collection and ranker versions) is not opened again."""
        names = [name] if name is not None else self.names
        for each in names:
            self.get(each)  # unknown names raise before anything changes
        switched, failures = [], []
        for each in names:
            root = self.roots[each]
            if (root / MANIFEST).is_file():
                continue  # pinned to one version directory: nothing to reload
            with self._reload_lock:
                old = self._services[each]
                current = VersionStore(root).current_name()
                if (current is None or current == old.version) and not old.ranker.stale():
                    self._forget_failure(each)  # what is published is what serves
                    continue
                ranker = VersionStore(Path(old.ranker.path)).current_name() if old.ranker.path else None
                known = self.reload_failures.get(each)
                if (
                    not retry
                    and known is not None
                    and (known.version, known.ranker_version) == (current, ranker)
                ):
                    continue
                try:
                    fresh = self._open(root, each, old)
                    if old.ranker.serving and not fresh.ranker.serving:
                        fresh.close()
                        raise _RankerRefused(fresh.ranker)
                except Exception as error:
                    failure = _failure(each, current, ranker, old, error)
                    self.reload_failures = {**self.reload_failures, each: failure}
                    failures.append(failure)
                    log.error("reload refused: %s", failure.describe())
                    continue
                self._services[each] = fresh
                self._forget_failure(each)
                fresh.live.catch_up()  # writes the old version took while the new one loaded
                self._retire(old)
            switched.append(
                Reloaded(each, old.version, fresh.version, old.ranker.version, fresh.ranker.version)
            )
            log.info(
                "collection %s: switched from %s to %s (ranker %s to %s)",
                each, old.version, fresh.version, old.ranker.version, fresh.ranker.version,
            )  # fmt: skip
        if failures:
            raise ReloadFailedError(failures, switched)
        return switched

    def _forget_failure(self, name: str) -> None:
        if name in self.reload_failures:
            self.reload_failures = {n: f for n, f in self.reload_failures.items() if n != name}

    def _retire(self, service: CollectionService) -> None:
        def close() -> None:
            service.close()
            return_freed_memory()

        timer = threading.Timer(self._retire_after_s, close)
        timer.daemon = True
        timer.start()

    def watch(self, interval_s: float) -> None:
        """Poll every root for a newly published version in a background thread."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.reload(retry=False)  # a refused version is tried again once another is published
                except ReloadFailedError:
                    pass  # logged, and kept in reload_failures; the previous versions keep serving
                except Exception:  # a broken new version must not stop the old one from serving
                    log.exception("reload failed; still serving the previous versions")

        self._watcher = threading.Thread(target=loop, name="reload-watcher", daemon=True)
        self._watcher.start()

    def follow_writes(self, interval_s: float = FOLLOW_WRITES_S) -> None:
        """Apply the writes other processes log (the other workers of a `serve`) in a background thread that
        checks each log's end every `interval_s` seconds."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                for name, service in self.items():
                    try:
                        if service.live.pending():
                            service.live.catch_up()
                    except Exception:  # a damaged log must not stop the service answering
                        log.exception("collection %s: applying logged writes failed", name)

        self._follower = threading.Thread(target=loop, name="write-follower", daemon=True)
        self._follower.start()

    def close(self) -> None:
        self._stop.set()
        for _, service in self.items():
            service.close()


def _failure(
    name: str, version: str | None, ranker_version: str | None, old: CollectionService, error: Exception
) -> ReloadFailure:
    """What `reload` keeps of the refusal of `name`'s new version (or of its ranker) by `error`."""
    path = file = None
    if isinstance(error, _RankerRefused):
        message = str(error.status.error)
        path, file = error.status.error_path, error.status.error_file
    elif isinstance(error, ArtifactError):
        message = str(error)
        path, file = (None if error.path is None else str(error.path)), error.file
    else:
        message = f"{type(error).__name__}: {error}"
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return ReloadFailure(name, version, ranker_version, old.version, message, path, file, at)
