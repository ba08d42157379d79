"""The search page in a real browser: Debian's Chromium driven by Playwright against the service on the tiny
shops collection (keyword fields, coordinates, behaviour). Type a query and see results with provenance,
filter, explain, similar, recommend for a user, a bad value answered in the API's words, a shared URL, and no
external URL in the page. A screenshot is saved under `tests/artifacts/` (or `$SEARCHREC_TEST_ARTIFACTS`).

Waits are Playwright's: each `expect` polls the page until it holds or its bound passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import STATIC, create_app
from tests.conftest import KINDS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(
    os.environ.get("SEARCHREC_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)
BOUND_MS = 60_000  # how long an expectation may take on a busy machine; a bound, not a pause


def _shops_ranker(root: Path, folder: Path) -> Path:
    """A LambdaMART ranker for the shops: each kind's words as queries, that kind's shops as relevant."""
    from jobs.train_ranker import train_search_ranker

    words = {kind: [title.lower(), *text.split()[:4]] for kind, (title, text, _) in KINDS.items()}
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for kind, terms in words.items():
        for i, term in enumerate(terms):
            qid = f"{kind}-{i}"
            queries.append(json.dumps({"_id": qid, "text": f"{term} {kind}" if i else term}))
            qrels += [f"{qid}\t{kind}-{town}-{n}\t1" for town in ("il", "ma") for n in range(3)]
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (folder / "qrels.tsv").write_text("\n".join(qrels) + "\n")
    out = folder / "ranker"
    train_search_ranker(
        root, out, folder / "queries.jsonl", folder / "qrels.tsv", valid_fraction=0.25, kinds=("lambdamart",),
        progress=False,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def service(shops_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("page")
    root = folder / "shops"
    shutil.copytree(shops_root, root)
    ranker = _shops_ranker(root, folder)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app({"shops": root}, rankers={"shops": ranker})
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # startup, however long it takes; the thread dying fails the test
        assert thread.is_alive(), "the server failed to start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.fail("the page tests need Debian's Chromium: apt-get install chromium (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: object, service: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    opened = context.new_page()
    opened.set_default_timeout(BOUND_MS)
    external: list[str] = []
    opened.on(
        "request", lambda request: None if request.url.startswith(service) else external.append(request.url)
    )
    opened.goto(service + "/")
    opened.wait_for_selector("body[data-ready=true]")
    yield opened
    assert external == [], f"the page asked for something outside the service: {external}"
    context.close()


def _search(page: object, query: str) -> None:
    page.fill("#query", query)  # type: ignore[attr-defined]
    page.click("#search-button")  # type: ignore[attr-defined]


def test_a_query_shows_results_with_their_provenance(page: object) -> None:
    from playwright.sync_api import expect

    _search(page, "sushi")
    hits = page.locator("#results li.hit")  # type: ignore[attr-defined]
    expect(hits.first).to_be_visible()
    assert hits.count() >= 3
    expect(hits.first.locator(".title")).to_contain_text("Sushi")
    expect(hits.first.locator(".badge").first).to_have_text(re.compile(r"^\w+ #\d+$"))
    expect(page.locator("#answer-meta")).to_contain_text("version v")  # type: ignore[attr-defined]
    expect(page.locator("#branch-lists .branch-list").first).to_be_visible()  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)  # type: ignore[attr-defined]


def test_a_keyword_filter_keeps_only_matching_results(page: object, service: str) -> None:
    from playwright.sync_api import expect

    page.fill("[data-filter=category]", "books")  # type: ignore[attr-defined]
    _search(page, "shop")
    hits = page.locator("#results li.hit")  # type: ignore[attr-defined]
    expect(hits.first).to_be_visible()
    ids = hits.evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    assert ids and all(item.startswith("books-") for item in ids), ids
    # the filter's values come from the collection's own keyword field
    values = httpx.get(f"{service}/collections/shops/keywords/category").json()["values"]
    assert "books" in [v["value"] for v in values]


def test_explain_shows_feature_names_and_similar_opens(page: object) -> None:
    from playwright.sync_api import expect

    _search(page, "espresso coffee")
    expect(page.locator("#answer-meta")).to_contain_text("scorer lambdamart")  # type: ignore[attr-defined]
    first = page.locator("#results li.hit").first  # type: ignore[attr-defined]
    first.locator(".explain-button").click()
    features = first.locator(".explain table.features")
    expect(features).to_be_visible()
    names = features.locator("td:first-child").all_inner_texts()
    assert "_score" in names and any(name.startswith("bm25") for name in names), names
    first.locator(".similar-button").click()
    expect(page.locator("#similar-panel")).to_be_visible()  # type: ignore[attr-defined]
    expect(page.locator("#similar li.hit").first).to_be_visible()  # type: ignore[attr-defined]


def test_recommendations_for_a_known_user(page: object) -> None:
    from playwright.sync_api import expect

    page.fill("#user", "user0")  # type: ignore[attr-defined]
    page.click("#recommend-button")  # type: ignore[attr-defined]
    hits = page.locator("#recommendations li.hit")  # type: ignore[attr-defined]
    expect(hits.first).to_be_visible()
    branches = hits.locator(".badge").all_inner_texts()
    assert any(name.startswith(("item2item", "user_pref", "covisit")) for name in branches), branches


def test_a_bad_value_shows_the_apis_message_by_its_field(page: object) -> None:
    from playwright.sync_api import expect

    page.fill("#lat", "123")  # type: ignore[attr-defined]
    page.fill("#lon", "10")  # type: ignore[attr-defined]
    _search(page, "pizza")
    slot = page.locator('.field-error[data-field="location.lat"]')  # type: ignore[attr-defined]
    expect(slot).to_contain_text("location.lat")
    expect(slot).to_contain_text("less than or equal to 90")
    expect(page.locator("#lat")).to_have_class(re.compile("invalid"))  # type: ignore[attr-defined]


def test_a_shared_url_shows_the_same_results(page: object, browser: object, service: str) -> None:
    from playwright.sync_api import expect

    page.fill("[data-filter=category]", "pizza")  # type: ignore[attr-defined]
    _search(page, "wood fired")
    hits = page.locator("#results li.hit")  # type: ignore[attr-defined]
    expect(hits.first).to_be_visible()
    shown = hits.evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    url = page.url  # type: ignore[attr-defined]
    assert "q=wood+fired" in url and "f.category=pizza" in url
    other = browser.new_page()  # type: ignore[attr-defined]
    other.goto(url)
    again = other.locator("#results li.hit")
    expect(again.first).to_be_visible(timeout=BOUND_MS)
    assert again.evaluate_all("nodes => nodes.map(n => n.dataset.id)") == shown
    assert other.input_value("#query") == "wood fired"
    other.close()


def test_the_page_names_no_external_url() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name
        assert not re.search(r"\b(fetch|import)\(\s*[\"'`]https?://", text), path.name
