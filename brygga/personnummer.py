"""Swedish personal identity numbers (personnummer), co-ordination numbers (samordningsnummer)
and interim numbers (interimspersonnummer).

Internally a personnummer is 12 characters, ``YYYYMMDDNNNC``. Accepted input forms:
``YYYYMMDDNNNC``, ``YYYYMMDD-NNNC``, ``YYMMDD-NNNC`` / ``YYMMDD+NNNC`` (``+`` = 100 years or older).
The check digit C is the Luhn digit over the 9 digits ``YYMMDDNNN``. A samordningsnummer has
60 added to the day of birth. Digits are ASCII digits only.

An **interimspersonnummer** is what a student without a Swedish number gets at antagning.se (most
fee-liable international applicants): the birth date and a serial whose first character is a
letter, e.g. ``19880527-T281`` / ``880527-T281``, kept as ``19880527T281``. Its letter and date are
checked; no check digit is known publicly for it, so none is required (docs/contracts/nya.md:
to confirm). Such a person is in no population register: the admission import establishes them in
Ladok from NyA's name, without an address.

``parse`` checks the canonical 12-digit form (what NyA and Ladok send) on a fast path: month and
day are looked up in a fixed table of the possible ``MMDD`` (with their part of the Luhn sum; 29
February, which depends on the year, is left to the full check), the Luhn sum is added up from
precomputed parts. Every other form, and every number the fast path does not accept, goes through
the full check, which decides and gives the reason.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

_FORMS = re.compile(r"^(?:(\d{2})?(\d{6})([-+]?)(\d{4}))$", re.ASCII)
_INTERIM = re.compile(r"^(?:(\d{2})?(\d{6})(-?)([A-Za-z])(\d{3}))$", re.ASCII)


class InvalidPersonnummer(ValueError):
    """Raised with a readable reason; never contains the full number."""


def luhn_digit(nine: str) -> int:
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class Personnummer:
    value: str  # 12 digits

    @property
    def is_samordningsnummer(self) -> bool:
        return int(self.value[6:8]) > 60

    @property
    def is_interim(self) -> bool:
        """An interimspersonnummer (a letter first in the serial)."""
        return is_interim(self.value)

    @property
    def birth_date(self) -> _dt.date:
        day = int(self.value[6:8])
        if day > 60:
            day -= 60
        return _dt.date(int(self.value[0:4]), int(self.value[4:6]), day)

    @property
    def masked(self) -> str:
        return mask(self.value)

    def __str__(self) -> str:  # the canonical 12-digit form
        return self.value

    def __repr__(self) -> str:  # never leak into tracebacks / logs
        return f"Personnummer({self.masked})"


def parse(raw: str, *, today: _dt.date | None = None) -> Personnummer:
    """Validate and normalise; raises InvalidPersonnummer with a reason."""
    return Personnummer(canonical(raw, today=today))


def canonical(raw: str, *, today: _dt.date | None = None) -> str:
    """``parse(raw).value`` without building the object: the validated 12-digit form."""
    if type(raw) is str and len(raw) == 12 and raw.isascii() and raw.isdigit():
        month_day = _MMDD_PARTS.get(raw[4:8])
        # Luhn: the check digit makes the weighted sum of YYMMDDNNN plus itself a multiple of 10.
        if (month_day is not None and raw[:4] != "0000"
                and (_PAIR_PARTS[raw[2:4]] + month_day + _SERIAL_PARTS[raw[8:11]] + ord(raw[11]) - 48) % 10 == 0):
            return raw
    return _parse_full(raw, today)


def is_interim(value: str) -> bool:
    """Whether a canonical number is an interimspersonnummer (``YYYYMMDD`` + letter + 3 digits)."""
    return len(value) == 12 and value[8].isalpha()


def _parse_full(raw: str, today: _dt.date | None) -> str:
    if raw is None:
        raise InvalidPersonnummer("personnummer missing")
    s = str(raw).strip().replace(" ", "")
    interim = _INTERIM.match(s)
    if interim:
        century, yymmdd, _, letter, serial = interim.groups()
        return _dated(century, yymmdd, "", today, samordning=False) + letter.upper() + serial
    m = _FORMS.match(s)
    if not m:
        raise InvalidPersonnummer("personnummer has wrong format (expected YYYYMMDD-NNNC, or YYYYMMDD-TNNN for an "
                                  "interimspersonnummer)")
    century, yymmdd, sep, tail = m.groups()
    value = _dated(century, yymmdd, sep, today) + tail
    if luhn_digit(value[2:11]) != int(value[11]):
        raise InvalidPersonnummer("personnummer check digit (Luhn) is wrong")
    return value


def _dated(century: str | None, yymmdd: str, sep: str, today: _dt.date | None, *, samordning: bool = True) -> str:
    """``YYYYMMDD`` of a number's date part (the century from ``today`` when not given), checked."""
    if century is None:
        today = today or _dt.date.today()
        yy = int(yymmdd[:2])
        full = today.year - (today.year % 100) + yy
        if full > today.year:
            full -= 100
        if sep == "+":
            full -= 100
        century = f"{full // 100:02d}"
    elif sep == "+":
        raise InvalidPersonnummer("'+' separator only allowed with a 10-digit personnummer")
    value = century + yymmdd
    month, day = int(value[4:6]), int(value[6:8])
    if day > 60 and samordning:
        day -= 60
    try:
        _dt.date(int(value[:4]), month, day)
    except ValueError:
        raise InvalidPersonnummer("personnummer has an impossible birth date") from None
    return value


# The fast path's parts. Luhn weights over YYMMDDNNN are 2,1,2,1,2,1,2,1,2 (a doubled digit
# counts with its digit sum), so the sum splits into parts for YY, MMDD and NNN.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_PAIR_PARTS = {f"{i:02d}": _DOUBLED[i // 10] + i % 10 for i in range(100)}  # weights 2,1
_SERIAL_PARTS = {f"{i:03d}": _DOUBLED[i // 100] + (i // 10) % 10 + _DOUBLED[i % 10] for i in range(1000)}  # 2,1,2
# Every MMDD that is a date in every year (so not 29 February), and the same with 60 added to the
# day (samordningsnummer).
_MMDD_PARTS = {
    f"{d.month:02d}{d.day + plus:02d}": _PAIR_PARTS[f"{d.month:02d}"] + _PAIR_PARTS[f"{d.day + plus:02d}"]
    for d in (_dt.date(2001, 1, 1) + _dt.timedelta(days=i) for i in range(365))  # 2001: a common year
    for plus in (0, 60)
}


def is_valid(raw: str) -> bool:
    try:
        parse(raw)
        return True
    except InvalidPersonnummer:
        return False


def with_check_digit(first_eleven: str) -> str:
    """Complete ``YYYYMMDDNNN`` with its Luhn digit (used by the synthetic data generator)."""
    return first_eleven + str(luhn_digit(first_eleven[2:11]))


# Masking: a 12-digit personnummer keeps its birth date, a 10-digit one too; the last four go.
# Forms: YYYYMMDD[-+ ]NNNN and YYYYMMDDNNNN (any date-like digits: a false positive costs nothing),
# YYMMDD[-+]NNNN, and YYMMDD NNNN / bare YYMMDDNNNN when the six digits are a plausible date (so
# timestamps and ordinary 10-digit numbers stay readable). An interimspersonnummer's serial (a
# letter and three digits: 19880527-T281, 880527-T281, 19880527T281, and bare 880527T281 with a
# capital letter and a plausible date, so lowercase hex ids stay readable) goes the same way.
_MASK_RE = re.compile(
    r"(?<![\d])(?:((?:18|19|20)\d{6})([-+ ]?)|(\d{6})([-+ ]?))(\d{4}|[A-Za-z]\d{3})(?![\d])"
)


def _plausible_date(yymmdd: str) -> bool:
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    return 1 <= month <= 12 and (1 <= day <= 31 or 61 <= day <= 91)


def _mask_match(m: re.Match[str]) -> str:
    long_date, long_sep, short_date, short_sep, serial = m.groups()
    if long_date:
        return f"{long_date}{long_sep or '-'}****"
    if not serial[0].isdigit():  # an interim serial: written YYMMDD-TNNN, or bare with a capital letter
        if short_sep == "-" or (serial[0].isupper() and _plausible_date(short_date)):  # (hex ids are lowercase)
            return f"{short_date}{short_sep or ''}****"
        return m.group(0)
    if short_sep in ("-", "+") or _plausible_date(short_date):
        return f"{short_date}{short_sep}****"
    return m.group(0)


def mask(text: str) -> str:
    """Mask every personnummer-looking number in ``text``: YYYYMMDD-XXXX -> YYYYMMDD-****."""
    if not text:
        return text
    return _MASK_RE.sub(_mask_match, text)
