"""Swedish personal identity numbers (personnummer) and co-ordination numbers (samordningsnummer).

Internally a personnummer is 12 digits, ``YYYYMMDDNNNC``. Accepted input forms:
``YYYYMMDDNNNC``, ``YYYYMMDD-NNNC``, ``YYMMDD-NNNC`` / ``YYMMDD+NNNC`` (``+`` = 100 years or older).
The check digit C is the Luhn digit over the 10 digits ``YYMMDDNNN``. A samordningsnummer has
60 added to the day of birth.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

_FORMS = re.compile(r"^(?:(\d{2})?(\d{6})([-+]?)(\d{4}))$")


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
    if raw is None:
        raise InvalidPersonnummer("personnummer missing")
    s = str(raw).strip().replace(" ", "")
    m = _FORMS.match(s)
    if not m:
        raise InvalidPersonnummer("personnummer has wrong format (expected YYYYMMDD-NNNC)")
    century, yymmdd, sep, tail = m.groups()
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
    value = century + yymmdd + tail
    month, day = int(value[4:6]), int(value[6:8])
    if day > 60:
        day -= 60
    try:
        _dt.date(int(value[:4]), month, day)
    except ValueError:
        raise InvalidPersonnummer("personnummer has an impossible birth date") from None
    if luhn_digit(value[2:11]) != int(value[11]):
        raise InvalidPersonnummer("personnummer check digit (Luhn) is wrong")
    return Personnummer(value)


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
_MASK_RE = re.compile(
    r"(?<![\d])(?:((?:18|19|20)\d{6})([-+]?)|(\d{6})([-+]))(\d{4})(?![\d])"
)


def _mask_match(m: re.Match[str]) -> str:
    long_date, long_sep, short_date, short_sep, _ = m.groups()
    if long_date:
        return f"{long_date}{long_sep or '-'}****"
    return f"{short_date}{short_sep}****"


def mask(text: str) -> str:
    """Mask every personnummer-looking number in ``text``: YYYYMMDD-XXXX -> YYYYMMDD-****."""
    if not text:
        return text
    return _MASK_RE.sub(_mask_match, text)
