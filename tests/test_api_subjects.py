"""Who a code names (`safecredit/api/subjects.py`): the units the hot route remembers change no
answer and hold no ID number."""

from __future__ import annotations

from datetime import date

import pytest

from safecredit.api import subjects
from safecredit.api.problems import ApiProblem
from safecredit.codes import is_valid_id_number, is_valid_uscc, make_id_number


def _salt() -> str:
    return "test-salt"


def test_remembered_units_answer_as_before_and_no_id_number_is_remembered():
    subjects._KNOWN_UNITS.clear()
    unit = "914403001922038216"  # codes.make_uscc's example
    ids = [make_id_number("330102", date(1980, 1, 1 + i % 28), i) for i in range(200)]
    both = next(c for c in ids if is_valid_uscc(c))  # valid as a USCC and as an ID number
    person = next(c for c in ids if not is_valid_uscc(c))
    assert is_valid_uscc(unit) and not is_valid_id_number(unit)

    for _ in range(2):  # the second time from what the first remembered
        assert subjects.resolve_subject(unit, None, _salt) == subjects.Subject(unit, "unit", unit)
        assert subjects.resolve_subject(unit, "unit", _salt) == subjects.Subject(unit, "unit", unit)
        assert subjects.masked_code(unit) == unit
        # asked as a person, a USCC is still checked as a person's ID number (and refused: 422)
        with pytest.raises(ApiProblem) as exc:
            subjects.resolve_subject(unit, "person", _salt)
        assert exc.value.status == 422
        # a code valid as both stays ambiguous without subject_type, even once asked as a unit
        assert subjects.resolve_subject(both, "unit", _salt).subject_type == "unit"
        with pytest.raises(ApiProblem) as exc:
            subjects.resolve_subject(both, None, _salt)
        assert exc.value.status == 409
        assert subjects.masked_code(both) != both and subjects.masked_code(person).endswith(person[-4:])
        assert subjects.resolve_subject(person, None, _salt).shown != person
        # a code as given in another form (lower case, spaces) is answered, not remembered as given
        assert subjects.resolve_subject(" " + unit.lower(), None, _salt).code == unit

    assert set(subjects._KNOWN_UNITS) == {unit}
    assert not any(is_valid_id_number(c) for c in subjects._KNOWN_UNITS)
