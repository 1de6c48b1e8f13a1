"""Deterministic catalogue generator: Swedish-style courses, programmes and their instances.

Course codes look like ``TDA357`` (three letters, three digits) or ``MA1101`` (two letters,
four digits); programme codes like ``TKDAT`` or ``SGSE``. Each programme instance packages
2-4 course instances of its first term; some course instances sit in two packages. Instances
of the round get the antagningsomgång code (e.g. ``HT2027``); the last few are not advertised
or cancelled.
"""

from __future__ import annotations

import datetime as dt
import random

from simulators.ladok.state import LadokState, Tillfalle

AMNEN = [
    ("Databaser", "Databases"), ("Linjär algebra", "Linear algebra"), ("Programmering", "Programming"),
    ("Diskret matematik", "Discrete mathematics"), ("Envariabelanalys", "Single variable calculus"),
    ("Mekanik", "Mechanics"), ("Organisk kemi", "Organic chemistry"), ("Statistik", "Statistics"),
    ("Svenska språket", "Swedish language"), ("Företagsekonomi", "Business administration"),
    ("Nationalekonomi", "Economics"), ("Psykologi", "Psychology"), ("Historia", "History"),
    ("Datorsystem", "Computer systems"), ("Algoritmer", "Algorithms"), ("Elektronik", "Electronics"),
    ("Cellbiologi", "Cell biology"), ("Miljövetenskap", "Environmental science"),
]
NIVAER = [("grundkurs", "introductory course"), ("fortsättningskurs", "intermediate course"),
          ("fördjupningskurs", "advanced course")]
PREFIX3 = ["TDA", "DAT", "EDA", "MVE", "KBT", "FFM", "ESS", "TMA", "EEN", "SSY"]
PREFIX2 = ["MA", "FY", "KE", "BI", "SV", "HI", "EK", "PS", "NE", "DV"]
PROGRAM = [
    ("TKDAT", "Civilingenjör datateknik", "Computer Science and Engineering", "300"),
    ("TKELT", "Civilingenjör elektroteknik", "Electrical Engineering", "300"),
    ("TKMAS", "Civilingenjör maskinteknik", "Mechanical Engineering", "300"),
    ("SGSE", "Kandidatprogram i systemvetenskap", "Bachelor's programme in Information Systems", "180"),
    ("SGEK", "Ekonomprogrammet", "Business and Economics programme", "180"),
    ("NGBIO", "Kandidatprogram i biologi", "Bachelor's programme in Biology", "180"),
    ("LGSV1", "Ämneslärarprogrammet, svenska", "Teacher Education, Swedish", "300"),
    ("HGPSY", "Psykologprogrammet", "Study Programme in Psychology", "300"),
]
MODULER = {"7.5": [("TEN1", "Tentamen", "4.5"), ("LAB1", "Laborationer", "3.0")],
           "15": [("TEN1", "Tentamen", "9.0"), ("PRO1", "Projekt", "6.0")],
           "30": [("TEN1", "Tentamen", "15.0"), ("PRO1", "Projekt", "15.0")]}


def term_start(round_code: str) -> tuple[dt.date, dt.date]:
    """(first Monday, end) of the term named by an antagningsomgång like ``HT2027``/``VT2028``."""
    year = int(round_code[2:])
    first = dt.date(year, 8, 28) if round_code.startswith("HT") else dt.date(year, 1, 15)
    first += dt.timedelta(days=(7 - first.weekday()) % 7)
    end = dt.date(year + 1, 1, 16) if round_code.startswith("HT") else dt.date(year, 6, 5)
    return first, end


def seed_catalogue(state: LadokState, seed: int = 1, n_courses: int = 40, n_programmes: int = 6,
                   round: str = "HT2027") -> list[Tillfalle]:
    """Add ``n_courses`` course and ``n_programmes`` programme instances (deterministic per seed)."""
    rng = random.Random(seed)
    start, end = term_start(round)
    mid = start + dt.timedelta(weeks=9)
    tillfalleskoder = iter(rng.sample(range(10000, 99999), n_courses + n_programmes))
    kurser: list[Tillfalle] = []
    koder: set[str] = set()
    while len(kurser) < n_courses:
        kod = (f"{rng.choice(PREFIX3)}{rng.randint(100, 999)}" if rng.random() < 0.5
               else f"{rng.choice(PREFIX2)}{rng.randint(1000, 2999)}")
        if kod in koder:
            continue
        koder.add(kod)
        (sv, en), (nsv, nen) = rng.choice(AMNEN), rng.choice(NIVAER)
        hp = rng.choice(["7.5", "7.5", "15", "30"])
        u = state.add_utbildning(kod, f"{sv}, {nsv}", f"{en}, {nen}", hp, "kurs", MODULER[hp])
        first, last = [(start, mid - dt.timedelta(days=3)), (mid, end), (start, end)][rng.randrange(3)]
        n = len(kurser)
        kurser.append(state.add_tillfalle(
            u, str(next(tillfalleskoder)), first, last, takt=rng.choice([100, 100, 50]),
            studielokalisering_id=rng.choice([1, 1, 2, 3, 9]), omgangar=[round] if n % 5 != 4 else [],
            utannonserat=n != n_courses - 1, installt=n == n_courses - 2))
    usable = [t for t in kurser if not t.installt] or kurser
    programmes: list[Tillfalle] = []
    for i in range(n_programmes):
        kod, sv, en, hp = PROGRAM[i % len(PROGRAM)]
        kod = kod if i < len(PROGRAM) else f"{kod}{i // len(PROGRAM)}"
        u = state.add_utbildning(kod, sv, en, hp, "program")
        years = int(hp) // 60
        ingaende = [t.uid for t in rng.sample(usable, min(rng.randint(2, 4), len(usable)))]
        programmes.append(state.add_tillfalle(
            u, str(next(tillfalleskoder)), start, dt.date(start.year + years, 6, 5),
            omgangar=[round], ingaende=ingaende))
    return kurser + programmes
