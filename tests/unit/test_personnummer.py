import datetime as dt
import random

import pytest

from brygga import personnummer as pn


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("198112189876", "198112189876"),
        ("19811218-9876", "198112189876"),
        ("811218-9876", "198112189876"),
        ("19121212+1212", None),  # '+' only with the 10-digit form
    ],
)
def test_forms(raw, expected):
    if expected is None:
        with pytest.raises(pn.InvalidPersonnummer):
            pn.parse(raw)
    else:
        assert pn.parse(raw).value == expected


def test_plus_separator_means_hundred_years_older():
    assert pn.parse("121212+1212", today=dt.date(2026, 1, 1)).value == "191212121212"
    assert pn.parse("121212-1212", today=dt.date(2026, 1, 1)).value == "201212121212"


def test_luhn_rejects_wrong_check_digit():
    with pytest.raises(pn.InvalidPersonnummer, match="Luhn"):
        pn.parse("198112189877")


def test_impossible_date_rejected():
    with pytest.raises(pn.InvalidPersonnummer, match="birth date"):
        pn.parse(pn.with_check_digit("19810230123"))


def test_samordningsnummer_day_plus_60():
    s = pn.parse(pn.with_check_digit("19810278123"))  # 18 + 60
    assert s.is_samordningsnummer
    assert s.birth_date == dt.date(1981, 2, 18)
    assert not pn.parse("198112189876").is_samordningsnummer


def test_error_and_repr_never_show_the_number():
    with pytest.raises(pn.InvalidPersonnummer) as e:
        pn.parse("198112189877")
    assert "9877" not in str(e.value)
    assert repr(pn.parse("198112189876")) == "Personnummer(19811218-****)"


def test_mask_forms_and_non_matches():
    text = "a 198112189876 b 19811218-9876 c 811218-9876 d epoch 1700000000 e 1234567890123"
    assert pn.mask(text) == (
        "a 19811218-**** b 19811218-**** c 811218-**** d epoch 1700000000 e 1234567890123"
    )


@pytest.mark.parametrize("raw", ["19880527-T281", "880527-T281", "19880527T281", "880527T281", "19880527-t281"])
def test_an_interimspersonnummer_is_read_in_each_form(raw):
    p = pn.parse(raw, today=dt.date(2026, 12, 7))
    assert p.value == "19880527T281" and p.is_interim and not p.is_samordningsnummer
    assert p.birth_date == dt.date(1988, 5, 27)
    assert repr(p) == "Personnummer(19880527-****)"


@pytest.mark.parametrize("raw, why", [
    ("19880231-T281", "birth date"),  # 31 February
    ("19880527-TT81", "wrong format"), ("19880527-T28", "wrong format"), ("19880527-2T81", "wrong format"),
    ("19880587-T281", "birth date"),  # no day + 60 for an interim number
])
def test_a_malformed_interimspersonnummer_is_refused_with_its_reason(raw, why):
    with pytest.raises(pn.InvalidPersonnummer, match=why) as e:
        pn.parse(raw)
    assert "T281" not in str(e.value) and "T28" not in str(e.value)


def test_generated_people_are_valid_and_distinct():
    from simulators.datagen import people

    ps = list(people(2000, seed=7))
    assert len({p.personnummer for p in ps}) == 2000
    assert all(pn.is_valid(p.personnummer) for p in ps)
    assert any(p.samordningsnummer for p in ps)
    assert all(p.address is None for p in ps if p.skyddad)


# -- the fast path for the canonical 12-digit form (pn.canonical / pn.parse) ----------------------


def _outcome(fn, raw):
    try:
        return fn(raw)
    except pn.InvalidPersonnummer as e:
        return ("invalid", str(e))


def _full(raw):
    return pn._parse_full(raw, None)


@pytest.mark.parametrize("raw", [
    "198112189876",  # valid
    "198112189877",  # wrong Luhn digit
    "199002300008",  # 30 February
    "199002290006",  # 29 February in a common year
    pn.with_check_digit("20000229000"),  # 29 February in a leap year (valid)
    "198113189873",  # month 13
    "198100189870",  # month 00
    "198112009874",  # day 00
    "198112609877",  # day 60: neither a date nor a co-ordination day
    "198102781230",  # samordningsnummer (18 + 60), wrong Luhn digit
    pn.with_check_digit("19810278123"),  # samordningsnummer, valid
    pn.with_check_digit("19810291123"),  # samordningsnummer for 31 February
    "000001010000",  # year 0
    "19811218987",  # 11 digits
    "1981121898760",  # 13 digits
    "19811218987a",
    "\u0661\u0669\u0668\u0661\u0661\u0662\u0661\u0668\u0669\u0668\u0667\u0666",  # Arabic-Indic digits
])
def test_fast_path_agrees_with_the_full_check(raw):
    expected = _outcome(_full, raw)
    assert _outcome(pn.canonical, raw) == expected
    assert _outcome(lambda r: pn.parse(r).value, raw) == expected
    assert _outcome(pn.canonical, raw) == expected  # again, now from the date cache


def test_fast_path_agrees_with_the_full_check_on_random_numbers():
    rnd = random.Random(4)
    accepted = 0
    for _ in range(20_000):
        raw = (rnd.choice(["19", "20", "18", "00", f"{rnd.randrange(100):02d}"]) + f"{rnd.randrange(100):02d}"
               + f"{rnd.randrange(14):02d}{rnd.randrange(93):02d}{rnd.randrange(1000):03d}{rnd.randrange(10)}")
        got = _outcome(pn.canonical, raw)
        assert got == _outcome(_full, raw), raw
        accepted += got == raw
    assert accepted > 500  # the sample has valid numbers and co-ordination numbers in it


def test_reasons_for_the_canonical_form():
    with pytest.raises(pn.InvalidPersonnummer, match="birth date"):
        pn.canonical("199002300008")
    with pytest.raises(pn.InvalidPersonnummer, match="Luhn"):
        pn.canonical("198112189877")
    with pytest.raises(pn.InvalidPersonnummer, match="wrong format"):
        pn.canonical("19811218987a")
    with pytest.raises(pn.InvalidPersonnummer, match="missing"):
        pn.canonical(None)


def test_samordningsnummer_on_the_fast_path():
    for impossible in ("19900291123", "19900289123", "19900260123", "19901392123"):  # 31/29 Feb 1990, day 60, month 13
        with pytest.raises(pn.InvalidPersonnummer, match="birth date"):
            pn.canonical(pn.with_check_digit(impossible))
    raw = pn.with_check_digit("19920289123")  # 29 + 60: 29 February 1992, a leap year
    assert pn.canonical(raw) == raw
    assert pn.parse(raw).is_samordningsnummer and pn.parse(raw).birth_date == dt.date(1992, 2, 29)
    with pytest.raises(pn.InvalidPersonnummer, match="Luhn"):
        pn.canonical(raw[:-1] + str((int(raw[-1]) + 3) % 10))


@pytest.mark.parametrize("raw, today, expected", [
    ("811218-9876", dt.date(2026, 1, 1), "198112189876"),
    ("811218+9876", dt.date(2026, 1, 1), "188112189876"),
    ("121212-1212", dt.date(2026, 1, 1), "201212121212"),
    ("121212+1212", dt.date(2026, 1, 1), "191212121212"),
    ("8112189876", dt.date(2026, 1, 1), "198112189876"),
    ("19811218-9876", None, "198112189876"),
    (" 19811218 9876 ", None, "198112189876"),
])
def test_other_forms_take_the_full_path_and_give_the_canonical_form(raw, today, expected):
    assert pn.canonical(raw, today=today) == expected
    assert pn.parse(raw, today=today).value == expected


@pytest.mark.parametrize("raw", ["811218-9877", "900230-0008", "19811218+9876"])
def test_ten_digit_and_separated_forms_are_still_checked(raw):
    with pytest.raises(pn.InvalidPersonnummer):
        pn.canonical(raw, today=dt.date(2026, 1, 1))


def test_non_ascii_digits_are_refused():
    with pytest.raises(pn.InvalidPersonnummer, match="wrong format"):
        pn.parse("\u0661\u0669\u0668\u0661\u0661\u0662\u0661\u0668-\u0669\u0668\u0667\u0666")


@pytest.mark.parametrize("yyyymmdd, valid", [
    ("20000229", True), ("19000229", False), ("19960229", True), ("19970229", False),  # leap years
    ("20000289", True), ("19000289", False),  # the same as samordningsnummer
    ("00000101", False), ("00010101", True), ("99991231", True),  # the years datetime knows
])
def test_every_birth_date_is_decided_like_the_full_check(yyyymmdd, valid):
    raw = pn.with_check_digit(yyyymmdd + "123")
    assert _outcome(pn.canonical, raw) == _outcome(_full, raw)
    assert (_outcome(pn.canonical, raw) == raw) is valid


@pytest.mark.parametrize("text, masked", [
    ("198112189876", "19811218-****"), ("19811218-9876", "19811218-****"), ("19811218 9876", "19811218 ****"),
    ("811218-9876", "811218-****"), ("811218+9876", "811218+****"),
    ("8112189876", "811218****"), ("811218 9876", "811218 ****"),  # bare and spaced 10-digit forms
    ("8112789876", "811278****"),  # samordningsnummer (day + 60)
    ("id 1733145600 at", "id 1733145600 at"), ("1234567890", "1234567890"),  # not a date: left alone
    ("order 811332 9876", "order 811332 9876"),  # (a phone number 0701234567 is a date too: masked)
    # interimspersonnummer: every written form; a lowercase hex id that looks like one stays
    ("19880527-T281", "19880527-****"), ("19880527T281", "19880527-****"), ("880527-T281", "880527-****"),
    ("880527T281", "880527****"), ("uid 3f880527a281 x", "uid 3f880527a281 x"),
])
def test_every_form_of_a_personnummer_is_masked_and_other_numbers_are_not(text, masked):
    assert pn.mask(text) == masked
