"""Multi-hop questions over a synthetic knowledge base, written in MuSiQue's JSONL format.

The world is made up (names built from syllables by a seeded RNG), so a model cannot answer from what it
memorised: it has to retrieve. Facts: companies (founder, headquarters city, founding year, industry),
people (birth city, birth year, profession), cities (country, river) and countries (capital). Each entity
has one encyclopedia-style paragraph titled with its name.

Questions compose single-hop facts, MuSiQue-style, with a ``question_decomposition`` whose steps point at
their supporting paragraphs (``#1`` is the previous step's answer):

* 2 hops: "Where was the founder of X born?", "In what year was the founder of X born?",
  "In which country was P born?", "In which country is X headquartered?"
* 3 hops (``three_hop_fraction`` of them): "In which country was the founder of X born?",
  "What is the capital of the country where P was born?"

Every record has ``paragraphs`` paragraphs: the supporting ones plus distractors (other entities of the
same kinds, so wrong cities and names are on hand), shuffled, numbered by ``idx``. Records are
``answerable``; countries carry an alias ("Republic of N") in ``answer_aliases``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "qu", "r", "s", "st", "t",
           "tr", "v", "w", "z", "th", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "th", "nd", "rk", "x"]
_INDUSTRIES = ["software", "shipping", "mining", "textile", "pharmaceutical", "aerospace", "publishing", "food"]
_PROFESSIONS = ["engineer", "chemist", "economist", "architect", "physicist", "lawyer", "designer", "geologist"]
_SUFFIXES = ["Industries", "Labs", "Works", "Systems", "Group", "Holdings"]


@dataclass
class World:
    countries: dict[str, dict[str, Any]]
    cities: dict[str, dict[str, Any]]
    people: dict[str, dict[str, Any]]
    companies: dict[str, dict[str, Any]]


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def word(self, syllables: int) -> str:
        while True:
            w = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)
                        for _ in range(syllables)).capitalize()
            if w.lower() not in self.used and len(w) >= 4:
                self.used.add(w.lower())
                return w


def build_world(rng: random.Random, n_companies: int) -> World:
    """A consistent knowledge base sized for ``n_companies`` companies (people and places to match)."""
    names = _Names(rng)
    n_countries = max(4, n_companies // 6)
    n_cities = max(3 * n_countries, n_companies)
    countries = {names.word(2): {} for _ in range(n_countries)}
    cities: dict[str, dict[str, Any]] = {}
    for i in range(n_cities):
        country = list(countries)[i % n_countries]
        cities[names.word(rng.choice((2, 3)))] = {"country": country, "river": names.word(2)}
    for country in countries:
        countries[country]["capital"] = rng.choice([c for c, v in cities.items() if v["country"] == country])
    people = {f"{names.word(2)} {names.word(rng.choice((2, 3)))}": {
        "born_in": rng.choice(list(cities)), "born": rng.randint(1920, 1990),
        "profession": rng.choice(_PROFESSIONS)} for _ in range(n_companies)}
    founders = list(people)
    rng.shuffle(founders)
    companies = {f"{names.word(2)} {rng.choice(_SUFFIXES)}": {
        "founder": founders[i], "hq": rng.choice(list(cities)), "industry": rng.choice(_INDUSTRIES),
        "founded": min(2020, people[founders[i]]["born"] + rng.randint(22, 45))} for i in range(n_companies)}
    return World(countries, cities, people, companies)


def paragraph(world: World, kind: str, name: str) -> str:
    if kind == "company":
        c = world.companies[name]
        return (f"{name} is a {c['industry']} company founded in {c['founded']} by {c['founder']}. "
                f"Its headquarters are in {c['hq']}.")
    if kind == "person":
        p = world.people[name]
        return f"{name} (born {p['born']} in {p['born_in']}) is a {p['profession']} and entrepreneur."
    if kind == "city":
        c = world.cities[name]
        return f"{name} is a city in {c['country']}, on the banks of the {c['river']} river."
    return f"{name} is a country. Its capital is {world.countries[name]['capital']}."


# A question: text, [(hop question, answer, (kind, entity of the supporting paragraph))], answer aliases.
Hop = tuple[str, str, tuple[str, str]]
Template = Callable[[World, str], tuple[str, list[Hop], list[str]]]


def _founder_birthplace(w: World, x: str) -> tuple[str, list[Hop], list[str]]:
    f = w.companies[x]["founder"]
    return (f"Where was the founder of {x} born?",
            [(f"{x} >> founded by", f, ("company", x)), ("#1 >> place of birth", w.people[f]["born_in"], ("person", f))],
            [])


def _founder_birth_year(w: World, x: str) -> tuple[str, list[Hop], list[str]]:
    f = w.companies[x]["founder"]
    return (f"In what year was the founder of {x} born?",
            [(f"{x} >> founded by", f, ("company", x)), ("#1 >> date of birth", str(w.people[f]["born"]), ("person", f))],
            [])


def _hq_country(w: World, x: str) -> tuple[str, list[Hop], list[str]]:
    hq = w.companies[x]["hq"]
    country = w.cities[hq]["country"]
    return (f"In which country is {x} headquartered?",
            [(f"{x} >> headquarters location", hq, ("company", x)), ("#1 >> country", country, ("city", hq))],
            [f"Republic of {country}"])


def _birth_country(w: World, x: str) -> tuple[str, list[Hop], list[str]]:
    f = w.companies[x]["founder"]  # subjects are companies; the person is the founder, named directly
    city = w.people[f]["born_in"]
    country = w.cities[city]["country"]
    return (f"In which country was {f} born?",
            [(f"{f} >> place of birth", city, ("person", f)), ("#1 >> country", country, ("city", city))],
            [f"Republic of {country}"])


def _founder_birth_country(w: World, x: str) -> tuple[str, list[Hop], list[str]]:
    f = w.companies[x]["founder"]
    city = w.people[f]["born_in"]
    country = w.cities[city]["country"]
    return (f"In which country was the founder of {x} born?",
            [(f"{x} >> founded by", f, ("company", x)), ("#1 >> place of birth", city, ("person", f)),
             ("#2 >> country", country, ("city", city))],
            [f"Republic of {country}"])


def _birth_country_capital(w: World, x: str) -> tuple[str, list[Hop], list[str]]:
    f = w.companies[x]["founder"]
    city = w.people[f]["born_in"]
    country = w.cities[city]["country"]
    return (f"What is the capital of the country where {f} was born?",
            [(f"{f} >> place of birth", city, ("person", f)), ("#1 >> country", country, ("city", city)),
             ("#2 >> capital", w.countries[country]["capital"], ("country", country))],
            [])


TWO_HOP: list[Template] = [_founder_birthplace, _founder_birth_year, _hq_country, _birth_country]
THREE_HOP: list[Template] = [_founder_birth_country, _birth_country_capital]


def make_record(world: World, template: Template, subject: str, rng: random.Random, n_paragraphs: int,
                fact_ids: dict[tuple[str, str], int]) -> dict[str, Any]:
    question, hops, aliases = template(world, subject)
    support = []
    for _, _, source in hops:
        if source not in support:
            support.append(source)
    pool = [(kind, name) for kind, table in (("company", world.companies), ("person", world.people),
                                             ("city", world.cities), ("country", world.countries))
            for name in table if (kind, name) not in support]
    chosen = support + rng.sample(pool, max(0, min(len(pool), n_paragraphs - len(support))))
    rng.shuffle(chosen)
    paragraphs = [{"idx": i, "title": name, "paragraph_text": paragraph(world, kind, name),
                   "is_supporting": (kind, name) in support} for i, (kind, name) in enumerate(chosen)]
    position = {source: i for i, source in enumerate(chosen)}
    decomposition = [{"id": fact_ids.setdefault((q.split(" >> ")[1], src[1]), 100000 + len(fact_ids)),
                      "question": q, "answer": a, "paragraph_support_idx": position[src]} for q, a, src in hops]
    prefix = f"{len(hops)}hop" if len(hops) == 2 else f"{len(hops)}hop1"
    return {"id": f"{prefix}__" + "_".join(str(d["id"]) for d in decomposition), "paragraphs": paragraphs,
            "question": question, "question_decomposition": decomposition, "answer": hops[-1][1],
            "answer_aliases": aliases, "answerable": True}


def generate_records(n: int, seed: int = 0, n_paragraphs: int = 20, three_hop_fraction: float = 0.0,
                     world: Optional[World] = None) -> list[dict[str, Any]]:
    """``n`` distinct questions (no two share a template and subject) over one world."""
    rng = random.Random(seed)
    world = world or build_world(rng, n_companies=max(12, n // 2 + 4))
    combos = [(t, x) for t in TWO_HOP for x in world.companies]
    hard = [(t, x) for t in THREE_HOP for x in world.companies]
    rng.shuffle(combos)
    rng.shuffle(hard)
    n_hard = min(len(hard), round(n * three_hop_fraction))
    picked = hard[:n_hard] + combos[:n - n_hard]
    if len(picked) < n:
        raise ValueError(f"the world holds only {len(picked)} questions; ask for fewer or a bigger world")
    rng.shuffle(picked)
    fact_ids: dict[tuple[str, str], int] = {}
    return [make_record(world, t, x, rng, n_paragraphs, fact_ids) for t, x in picked]


def write_jsonl(records: list[dict[str, Any]], path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def generate(out_dir: Union[str, Path], n_train: int, n_test: int, seed: int = 0, n_paragraphs: int = 20,
             three_hop_fraction: float = 0.0) -> dict[str, Path]:
    """Write ``musique_synthetic_train.jsonl`` and ``musique_synthetic_dev.jsonl`` (held-out questions over
    the same world) under ``out_dir``; returns ``{"train": path, "test": path}``."""
    records = generate_records(n_train + n_test, seed, n_paragraphs, three_hop_fraction)
    out = Path(out_dir)
    return {"train": write_jsonl(records[:n_train], out / "musique_synthetic_train.jsonl"),
            "test": write_jsonl(records[n_train:], out / "musique_synthetic_dev.jsonl")}
