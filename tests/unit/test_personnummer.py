import datetime as dt

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


def test_generated_people_are_valid_and_distinct():
    from simulators.datagen import people

    ps = list(people(2000, seed=7))
    assert len({p.personnummer for p in ps}) == 2000
    assert all(pn.is_valid(p.personnummer) for p in ps)
    assert any(p.samordningsnummer for p in ps)
    assert all(p.address is None for p in ps if p.skyddad)
