"""Generated bad input: the whole API fuzzed from its own OpenAPI schema with schemathesis, in process.

Every operation the schema lists, admin and writes included, gets cases that fit the schema (positive) and
cases that break it (negative), from a fixed seed, so a run is repeatable and a failure reproduces. The app
serves copies of the shops collection (behaviour, categories, coordinates; the default) and the SciFact
slice, so writes change nothing shared. Most cases name one of them and, where a path takes an item, one of
its real ids; half the bodies get the collections' real keyword fields, item ids and branch names, so the
cases reach recall, filters, writes and deletes instead of stopping at a 404 or a 422; half the cases carry
the admin token. Negative cases also get JSON text Python's parser reads but a response cannot carry back
(NaN, 1e400, a lone surrogate), bytes that are not UTF-8, deep nesting, and other Content-Types.

Every answer must be below 500, and every 4xx must say what was wrong: a 422 lists errors that each name a
`field` and carry a message, any other 4xx has a string `detail`. The test prints how many cases it sent.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from api.app import create_app

FUZZ_SEED = 20_261_130
TOKEN = "fuzz-admin-token"
# Cases per operation and mode: with 9 operations that take input, 7 of them a body or a query to break,
# 1,290 cases; measured 15 to 70 s on two shared cores (quiet to busy) once the collections are built.
POSITIVE_CASES = 80
NEGATIVE_CASES = 80
MIN_CASES = 1000
DOOMED = 5  # the first ids of each collection are the ones deletes may hit; the others are read


@pytest.fixture(scope="module")
def schema_and_names(
    scifact_slice_root: Path, shops_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, dict[str, list[str]]]]]:
    """The schema of an app over copies of both collections (shops, the default, then scifact), and what
    each holds: item ids to read, item ids to delete, keyword fields, branches."""
    folder = tmp_path_factory.mktemp("fuzz")
    roots = {"shops": folder / "shops", "scifact": folder / "scifact"}
    shutil.copytree(shops_root, roots["shops"])
    shutil.copytree(scifact_slice_root, roots["scifact"])
    app = create_app(roots, admin_token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    names = {
        name: {
            "ids": list(service.collection.ids[DOOMED:]),
            "doomed": list(service.collection.ids[:DOOMED]),
            "fields": list(service.collection.keyword_fields),
            "branches": [source.name for source in service.pipeline.sources],
        }
        for name, service in app.state.registry.items()
    }
    try:
        yield schema, names
    finally:
        asgi.shutdown_lifespans()  # closes the registry the lifespan opened


def _path_choices(operation: Any, names: dict[str, dict[str, list[str]]]) -> list[dict[str, str]]:
    """Fixed path parameters to draw from: none (all generated), a real collection, a real item in it (one
    of those set aside for it, for a delete)."""
    params = {parameter.name for parameter in operation.path_parameters}
    choices: list[dict[str, str]] = [{}]
    if "name" in params:
        for name, held in names.items():
            choices.append({"name": name})
            if "item_id" in params:
                items = held["doomed"] if operation.method.upper() == "DELETE" else held["ids"][:DOOMED]
                choices += [{"name": name, "item_id": item} for item in items]
    return choices


def _plausible(body: Any, held: dict[str, list[str]], draw: Any) -> Any:
    """Half the time, `body` with the values the schema cannot know made to fit the collection: real item
    ids, branch names and keyword fields, and no radius without a location."""
    if not isinstance(body, dict) or not draw(st.booleans()):
        return body
    ids = st.sampled_from(held["ids"])
    if isinstance(body.get("events"), list):
        for event in body["events"]:
            if isinstance(event, dict):
                event["item_id"] = draw(ids)
    if isinstance(body.get("items"), list):
        body["items"] = draw(st.lists(ids, max_size=3))
    if isinstance(body.get("branches"), list):
        body["branches"] = draw(st.lists(st.sampled_from(held["branches"]), min_size=1, max_size=3))
    if isinstance(body.get("filters"), dict):
        values = list(body["filters"].values())[: len(held["fields"])]
        body["filters"] = dict(zip(held["fields"], values, strict=False))
    if body.get("location") is None:
        body.pop("radius_km", None)
    return body


# JSON text Python's parser reads but a response cannot carry back, or cannot read at all, put in place of
# one value of a generated body: the inputs behind the 500s this test was written to find.
HOSTILE = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"9" * 5000,  # more digits than Python turns into an int
    b'"\\ud800"',  # a lone surrogate, escaped as JSON allows
    b'"caf\xe9"',  # Latin-1, not UTF-8
    b"[" * 50 + b"]" * 50,
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
]
PLACEHOLDER = "\u2603hostile\u2603"
CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to the scalar values inside a JSON value (none for an empty object or array)."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [path] if path else []


def _with_hostile(body: Any, path: tuple, snippet: bytes) -> bytes:
    """`body` as JSON text with the value at `path` replaced by the raw `snippet`."""
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = PLACEHOLDER
    return json.dumps(body).encode().replace(json.dumps(PLACEHOLDER).encode(), snippet)


def _make_hostile(case: Any, draw: Any) -> None:
    """Now and then, one value of the case's body replaced by `HOSTILE` text, or the body sent as another
    Content-Type."""
    leaves = _leaves(case.body) if isinstance(case.body, dict | list) else []
    if leaves and draw(st.integers(0, 2)) == 0:
        case.body = _with_hostile(case.body, draw(st.sampled_from(leaves)), draw(st.sampled_from(HOSTILE)))
    if draw(st.integers(0, 5)) == 0:
        case.headers = {**(case.headers or {}), "Content-Type": draw(st.sampled_from(CONTENT_TYPES))}


def _cases(operation: Any, mode: Any, names: dict[str, dict[str, list[str]]]) -> st.SearchStrategy:
    @st.composite
    def cases(draw: Any) -> Any:
        fixed = draw(st.sampled_from(_path_choices(operation, names)))
        headers = draw(st.sampled_from([{}, {"Authorization": f"Bearer {TOKEN}"}]))
        case = draw(operation.as_strategy(generation_mode=mode, path_parameters=fixed, headers=headers))
        if not operation.body:
            return case
        held = names.get(fixed.get("name", ""), names["shops"])  # shops is the default collection
        case.body = _plausible(case.body, held, draw)
        if mode == schemathesis.GenerationMode.NEGATIVE:
            _make_hostile(case, draw)
        return case

    return cases()


def _assert_says_what_is_wrong(response: Any, case: Any) -> None:
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:500]}"
    assert status < 500, where
    if status < 400:
        return
    detail = response.json()["detail"]
    if status == 422:
        assert isinstance(detail, list) and detail, where
        for error in detail:
            assert isinstance(error["field"], str) and error["field"], where
            assert isinstance(error["msg"], str) and error["msg"], where
    else:
        assert isinstance(detail, str) and len(detail) > 10, where


def _fuzz(operation: Any, mode: Any, examples: int, names: dict, sent: Counter) -> None:
    """Send up to `examples` cases of `operation` in `mode`, counting them by operation and status in
    `sent`."""

    @seed(FUZZ_SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_cases(operation, mode, names))
    def run(case: Any) -> None:
        response = case.call()
        sent[operation.label, response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])
        _assert_says_what_is_wrong(response, case)

    run()


def test_generated_requests_get_no_server_error_and_useful_4xx(
    schema_and_names: tuple, capsys: pytest.CaptureFixture
) -> None:
    schema, names = schema_and_names
    sent: Counter = Counter()
    started = time.perf_counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        _fuzz(operation, schemathesis.GenerationMode.POSITIVE, POSITIVE_CASES, names, sent)
        if operation.query or operation.body:  # a path parameter alone has no wrong type to send
            _fuzz(operation, schemathesis.GenerationMode.NEGATIVE, NEGATIVE_CASES, names, sent)
    total = sum(sent.values())
    took = time.perf_counter() - started
    with capsys.disabled():  # in the run's log, not only on failure
        print(f"\nfuzz: {total} cases over {len(operations)} operations in {took:.0f} s (seed {FUZZ_SEED})")
        for operation in operations:
            statuses = sorted((status, n) for (label, status), n in sent.items() if label == operation.label)
            print(f"  {operation.label}: " + ", ".join(f"{n} x {status}" for status, n in statuses))
    assert total >= MIN_CASES
    assert {label for label, _ in sent} == {operation.label for operation in operations}
