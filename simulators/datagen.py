"""Deterministic synthetic data: people with valid personnummer/samordningsnummer, addresses.

Scales to hundreds of thousands of people (a generator; about 1 µs of state per person).
Everything is derived from ``seed`` so simulators and tests agree without sharing files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from brygga.personnummer import with_check_digit
from brygga.records import Address

FORNAMN = (
    "Anna Eva Maria Karin Sara Lena Emma Kerstin Ingrid Elin Maja Alice Ella Wilma Saga Ebba Astrid "
    "Lars Erik Karl Anders Johan Per Nils Mikael Jan Hans Oscar Lucas William Hugo Elias Liam Noah Ali "
    "Fatima Amir Yusuf Leila Mohammed Aisha Sven Olof Gustav Frida Linnea Hanna Ida Johanna Viktor Axel"
).split()
EFTERNAMN = (
    "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Pettersson "
    "Jonsson Jansson Hansson Bengtsson Lindberg Jakobsson Magnusson Lindström Lindqvist Lindgren Berg "
    "Axelsson Bergström Lundberg Lind Lundgren Mattsson Berglund Fredriksson Sandberg Henriksson Ali Hassan "
    "Mohamed Nguyen Kowalski Virtanen Forsberg Sjöberg Wallin Engström Eklund Danielsson Lundin Håkansson"
).split()
GATOR = "Storgatan Kungsgatan Drottninggatan Skolgatan Järnvägsgatan Parkvägen Björkvägen Ringvägen Kyrkogatan Tallvägen".split()
ORTER = [
    ("11122", "STOCKHOLM"), ("41101", "GÖTEBORG"), ("21115", "MALMÖ"), ("75310", "UPPSALA"),
    ("90325", "UMEÅ"), ("58183", "LINKÖPING"), ("70211", "ÖREBRO"), ("97187", "LULEÅ"),
    ("85170", "SUNDSVALL"), ("35230", "VÄXJÖ"), ("65224", "KARLSTAD"), ("80320", "GÄVLE"),
]


@dataclass(frozen=True)
class Person:
    personnummer: str  # 12 digits, valid Luhn
    fornamn: str
    efternamn: str
    skyddad: bool  # skyddade personuppgifter (sekretessmarkering / skyddad folkbokföring)
    address: Address | None  # None when protected: the register does not disclose it
    samordningsnummer: bool


def personnummer(rng: random.Random, *, samordning: bool = False, year_range=(1955, 2007)) -> str:
    year = rng.randint(*year_range)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    if samordning:
        day += 60
    serial = rng.randint(0, 999)
    return with_check_digit(f"{year:04d}{month:02d}{day:02d}{serial:03d}")


def interimspersonnummer(rng: random.Random, birth_date: str) -> str:
    """An interimspersonnummer as antagning.se gives one (``YYYYMMDD`` + a capital letter + three
    digits, kept without the dash) for an applicant without a Swedish number born ``birth_date``
    (``YYYYMMDD``)."""
    return f"{birth_date}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randint(0, 999):03d}"


def people(n: int, seed: int = 1, *, protected_share: float = 0.01, samordning_share: float = 0.02) -> Iterator[Person]:
    """``n`` distinct people. Deterministic for a given seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    produced = 0
    while produced < n:
        samo = rng.random() < samordning_share
        pnr = personnummer(rng, samordning=samo)
        if pnr in seen:
            continue
        seen.add(pnr)
        skyddad = rng.random() < protected_share
        postnr, ort = rng.choice(ORTER)
        addr = None if skyddad else Address(f"{rng.choice(GATOR)} {rng.randint(1, 120)}", postnr, ort)
        yield Person(pnr, rng.choice(FORNAMN), rng.choice(EFTERNAMN), skyddad, addr, samo)
        produced += 1
