"""Identity codes: USCC, organisation code, ID number, old registration number."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from safecredit.codes import (
    USCC_ALPHABET,
    classify_code,
    fullwidth_to_halfwidth,
    id_check_char,
    is_valid_id_number,
    is_valid_org_code,
    is_valid_reg_no15,
    is_valid_uscc,
    make_id_number,
    make_org_code,
    make_reg_no15,
    make_uscc,
    mask_id_number,
    normalise_code,
    org_code_check_char,
    uscc_check_char,
)

TODAY = date(2026, 11, 23)


# --------------------------------------------------------------------------- USCC


@pytest.mark.parametrize("code", ["914403001922038216", "91350100M000100Y43"])
def test_known_good_usccs(code):
    assert is_valid_uscc(code)
    assert uscc_check_char(code[:17]) == code[17]
    assert classify_code(code) == "uscc"


def test_known_bad_uscc():
    assert not is_valid_uscc("91110000600037341N")
    assert uscc_check_char("91110000600037341") != "N"
    assert classify_code("91110000600037341N") == "unknown"


def test_uscc_alphabet_excludes_ambiguous_letters():
    assert len(USCC_ALPHABET) == 31
    assert not set("IOZSV") & set(USCC_ALPHABET)


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_excluded_letter_makes_uscc_invalid(letter):
    # put the letter where a letter is legal (org code part); no check char can rescue it
    body = "91350100M000100" + letter + "4"
    assert all(not is_valid_uscc(body + c) for c in USCC_ALPHABET)
    with pytest.raises(ValueError):
        uscc_check_char(body)


def test_uscc_rejects_wrong_length_and_lower_case():
    assert not is_valid_uscc("91440300192203821")
    assert not is_valid_uscc("9144030019220382160")
    assert not is_valid_uscc("91350100m000100y43")
    assert is_valid_uscc(normalise_code("91350100m000100y43"))
    assert not is_valid_uscc(None)  # type: ignore[arg-type]


def test_unfamiliar_authority_char_is_not_rejected():
    # "X" is not one of the listed registration authorities; only the check char counts
    body = "X1440300" + "192203821"
    code = body + uscc_check_char(body)
    assert is_valid_uscc(code)


def test_every_single_char_error_is_detected():
    code = "914403001922038216"
    for i in range(18):
        for c in USCC_ALPHABET:
            if c != code[i]:
                assert not is_valid_uscc(code[:i] + c + code[i + 1 :])


def test_make_uscc_reproduces_known_codes():
    assert make_uscc("9", "1", "440300", "192203821") == "914403001922038216"
    assert make_uscc("9", "1", "350100", "M000100Y4") == "91350100M000100Y43"
    assert make_uscc("9", "1", "350100", "M000100Y-4") == "91350100M000100Y43"


def test_make_uscc_validates_its_parts():
    with pytest.raises(ValueError):
        make_uscc("9", "1", "44030", "192203821")  # region too short
    with pytest.raises(ValueError):
        make_uscc("9", "1", "440300", "192203822")  # bad org check char
    with pytest.raises(ValueError):
        make_uscc("91", "1", "440300", "192203821")


def test_generated_usccs_are_valid_and_embed_a_valid_org_code():
    rng = random.Random(7)
    digits_upper = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for _ in range(500):
        org = make_org_code("".join(rng.choice(digits_upper) for _ in range(8)))
        if not set(org) <= set(USCC_ALPHABET):  # check char may be X (allowed) only
            continue
        code = make_uscc("9", rng.choice("123"), f"{rng.randrange(110000, 659999)}", org)
        assert is_valid_uscc(code)
        assert is_valid_org_code(code[8:17])


# --------------------------------------------------------------------------- GB 11714


def test_org_code_check_char_examples():
    assert org_code_check_char("19220382") == "1"  # the one inside Huawei's USCC
    assert org_code_check_char("M000100Y") == "4"
    assert is_valid_org_code("192203821")
    assert is_valid_org_code("19220382-1")
    assert not is_valid_org_code("19220382-2")
    assert not is_valid_org_code("1922038210")
    assert not is_valid_org_code("192203821 ")


def test_org_code_check_char_maps_10_to_x_and_11_to_0():
    seen = set()
    rng = random.Random(3)
    while {"X", "0"} - seen:
        body = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        c = org_code_check_char(body)
        seen.add(c)
        assert is_valid_org_code(make_org_code(body))
    values = {ch: i for i, ch in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
    body = next(
        b
        for b in (f"{i:08d}" for i in range(10000))
        if sum(values[c] * w for c, w in zip(b, (3, 7, 9, 10, 5, 8, 4, 2))) % 11 == 1
    )
    assert org_code_check_char(body) == "X"


# --------------------------------------------------------------------------- GB 11643


def test_id_check_digit_known_examples():
    # the GB 11643 example number and its check digit X
    assert id_check_char("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X", today=TODAY)
    assert not is_valid_id_number("110105194912310021", today=TODAY)
    assert not is_valid_id_number("11010519491231002x", today=TODAY)


def test_make_id_number_round_trip_and_birth_date_rules():
    rng = random.Random(11)
    for _ in range(300):
        birth = date(1900, 1, 1) + timedelta(days=rng.randrange(0, 46000))
        code = make_id_number("331202", birth, rng.randrange(1000))
        assert is_valid_id_number(code, today=TODAY)
    assert not is_valid_id_number(make_id_number("331202", date(1899, 12, 31), 5), today=TODAY)
    assert not is_valid_id_number(make_id_number("331202", date(2026, 11, 24), 5), today=TODAY)
    # an impossible date with a correct check digit
    body = "33120219990230001"
    assert not is_valid_id_number(body + id_check_char(body), today=TODAY)


# --------------------------------------------------------------------------- GS15


def test_reg_no15():
    code = make_reg_no15("33120211234567")
    assert len(code) == 15 and is_valid_reg_no15(code)
    assert not is_valid_reg_no15(code[:14] + str((int(code[14]) + 1) % 10))
    assert classify_code(code) == "reg_no15"
    # classification goes by form: pre-2007 numbers need not carry a valid check digit
    assert classify_code(code[:14] + str((int(code[14]) + 1) % 10)) == "reg_no15"


# --------------------------------------------------------------------------- text


def test_mask_id_number():
    assert mask_id_number("11010519491231002X") == "*" * 14 + "002X"
    assert mask_id_number("AB12345") == "***2345"
    assert mask_id_number("123") == "***"
    assert mask_id_number("") == ""
    assert mask_id_number(None) is None


def test_normalise_code():
    assert normalise_code("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"
    assert normalise_code(" 9135 0100m000\u3000100y43\n") == "91350100M000100Y43"
    assert normalise_code("19220382－1") == "19220382-1"


def test_fullwidth_to_halfwidth_leaves_chinese_alone():
    assert fullwidth_to_halfwidth("ＡＢ１２（江城）有限公司\u3000。") == "AB12(江城)有限公司 。"


def test_warehouse_sc_half_is_the_same_mapping():
    """SQL's sc_half (the punctuation of Chinese prose replaced first, then translate for what is
    left) maps every full-width form, alone or mixed, as fullwidth_to_halfwidth does."""
    from safecredit.warehouse import connect

    every = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
    samples = [every, every[::-1] + "〔〕。", "经查，江城（某）公司：罚款；警告", "ＡＢ，１２；", "plain", "，", *every]
    with connect() as con:
        got = con.execute("SELECT sc_half(s) FROM unnest(?::VARCHAR[]) WITH ORDINALITY t(s, i) ORDER BY i", [samples])
        assert [r[0] for r in got.fetchall()] == [fullwidth_to_halfwidth(x) for x in samples]


def test_warehouse_sc_text_and_sc_code_fast_paths_give_the_plain_formulas():
    """sc_text/sc_code return a value without full-width characters or whitespace (or commas, for a
    code) as it is: the same as their plain definitions on every kind of value."""
    from safecredit.warehouse import connect

    samples = [
        "江城某公司",
        "  江城 某公司 ",
        "江城\t某\n公司",
        "江城（某）公司，罚款",
        "ａｂ\u3000ｃ",
        "",
        " ",
        "\u3000",
        "9133 1203,712760390y",
        "91331203712760390Y",
        "abc",
        "a  b",
        "a,b",
        "，",
        None,
        "2019-01-01",
        "x\r\n",
    ]
    plain_text = "nullif(trim(regexp_replace(sc_half(s), '\\s+', ' ', 'g')), '')"
    plain_code = "nullif(upper(regexp_replace(sc_half(s), '[\\s,]', '', 'g')), '')"
    with connect() as con:
        got = con.execute(
            f"SELECT sc_text(s), {plain_text}, sc_code(s), {plain_code} FROM unnest(?::VARCHAR[]) t(s)", [samples]
        ).fetchall()
    assert [(a, c) for a, _, c, _ in got] == [(b, d) for _, b, _, d in got]
    assert (
        got[1][0] == "江城 某公司"
        and got[2][0] == "江城 某 公司"
        and got[5][0] is None
        and got[8][2] == "91331203712760390Y"
    )


# --------------------------------------------------------------------------- classify


def test_classify_code_kinds():
    assert classify_code("914403001922038216") == "uscc"
    assert classify_code(" ９１４４０３００１９２２０３８２１６ ") == "uscc"
    pid = make_id_number("331202", date(1980, 5, 17), 123)
    if is_valid_uscc(pid):  # pragma: no cover - this seq is chosen not to be
        pytest.skip("example happens to be both")
    assert classify_code(pid, today=TODAY) == "id_number"
    assert classify_code(pid.lower(), today=TODAY) == "id_number"
    assert classify_code("19220382-1") == "org_code"
    assert classify_code("192203821") == "org_code"
    assert classify_code("hello") == "unknown"
    assert classify_code("") == "unknown"


def test_codes_valid_as_both_uscc_and_id_number_exist():
    # Such codes exist: 17 digits + a digit/X that passes MOD 11-2 *and* the MOD 31 check,
    # with a real birth date. Roughly one ID number in 31 is also a valid USCC.
    assert classify_code("110101198501130035", today=TODAY) == "both"
    assert is_valid_uscc("110101198501130035")
    assert is_valid_id_number("110101198501130035", today=TODAY)
    found = [
        c
        for c in (
            make_id_number("110101", date(1985, 1, 1) + timedelta(days=d), s) for d in range(60) for s in (1, 2, 3)
        )
        if is_valid_uscc(c)
    ]
    assert found and all(classify_code(c, today=TODAY) == "both" for c in found)
    assert 1 / 80 < len(found) / 180 < 1 / 10
