"""Trits, the hue rule, GF(3) balance and parsing of the skill cards' triad statements."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ff_mcp.gf3.triads import (
    as_trit,
    balancing_trit,
    complete_triad,
    format_triad,
    is_balanced,
    parse_triad_statement,
    sum_mod3,
)
from ff_mcp.gf3.trits import TRIT_DESCRIPTIONS, TRIT_ROLES, parse_trit, trit_from_hue

# The "GF(3) Triads" section of the forward-forward-learning skill card, verbatim.
SEED_CARD_TRIADS = [
    "sheaf-cohomology (-1) ⊗ sheaf-laplacian-coordination (0) ⊗ forward-forward-learning (+1) = 0 ✓",
    "proofgeneral-narya (-1) ⊗ unworld (0) ⊗ forward-forward-learning (+1) = 0 ✓",
    "persistent-homology (-1) ⊗ open-games (0) ⊗ forward-forward-learning (+1) = 0 ✓",
]

trit = st.sampled_from([-1, 0, 1])
trits = st.lists(trit, max_size=12)
name = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)


@pytest.mark.parametrize(
    ("hue", "expected"),
    [(0, 1), (59.999, 1), (60, 0), (179.999, 0), (180, -1), (299.999, -1), (300, 1), (359.999, 1), (360, 1), (-60, 1), (-61, -1), (420, 0)],
)
def test_trit_from_hue_follows_the_gay_jl_ranges_with_hue_taken_mod_360(hue, expected):
    assert trit_from_hue(hue) == expected


def test_trit_from_hue_rejects_a_non_finite_hue():
    with pytest.raises(ValueError, match="hue must be a finite number of degrees, got nan"):
        trit_from_hue(float("nan"))


def test_roles_and_descriptions_name_each_trit():
    assert TRIT_ROLES == {1: "PLUS", 0: "ERGODIC", -1: "MINUS"}
    assert TRIT_DESCRIPTIONS == {1: "generator", 0: "coordinator", -1: "validator"}


@pytest.mark.parametrize(("text", "value"), [("+1", 1), ("1", 1), ("0", 0), ("-1", -1), ("\u22121", -1), (" +1 ", 1)])
def test_parse_trit_accepts_the_usual_spellings_including_unicode_minus(text, value):
    assert parse_trit(text) == value


def test_complete_triad_gives_the_missing_trit():
    assert [complete_triad(a, b) for a, b in [(-1, 0), (1, 1), (0, 0), (-1, -1), (1, -1)]] == [1, 1, 0, -1, 0]


@given(trit, trit)
def test_complete_triad_always_balances(a, b):
    c = complete_triad(a, b)
    assert c in (-1, 0, 1)
    assert is_balanced([a, b, c])


@given(trits, st.randoms(use_true_random=False))
def test_balance_is_invariant_under_permutation(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert sum_mod3(shuffled) == sum_mod3(values)


@given(trits, trit)
def test_appending_three_equal_trits_keeps_the_sum_mod_3(values, t):
    assert sum_mod3(values + [t, t, t]) == sum_mod3(values)


@given(trits)
def test_appending_the_balancing_trit_balances_any_sequence(values):
    assert is_balanced(values + [balancing_trit(values)])


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_as_trit_is_congruent_mod_3_and_adding_3_does_not_change_it(n):
    assert as_trit(n) in (-1, 0, 1)
    assert (as_trit(n) - n) % 3 == 0
    assert as_trit(n + 3) == as_trit(n)


def test_sum_mod3_names_the_position_of_a_value_that_is_not_a_trit():
    with pytest.raises(ValueError, match=r"trits\[1\] must be -1, 0 or \+1, got 2"):
        sum_mod3([1, 2])
    with pytest.raises(ValueError, match=r"trits\[0\] must be -1, 0 or \+1, got True"):
        is_balanced([True])


@pytest.mark.parametrize("statement", SEED_CARD_TRIADS)
def test_the_seed_cards_triads_parse_and_are_balanced(statement):
    parsed = parse_triad_statement(statement)
    assert parsed.trits == (-1, 0, 1)
    assert parsed.names[-1] == "forward-forward-learning"
    assert (parsed.claimed, parsed.mark, parsed.sum_mod3) == (0, "✓", 0)
    assert parsed.balanced and parsed.claim_correct
    assert str(parsed) == statement


def test_a_statement_with_a_wrong_claim_is_reported_as_incorrect():
    # unworld's own card says +1; with that trit the card's triad does not balance
    parsed = parse_triad_statement("proofgeneral-narya (-1) ⊗ unworld (+1) ⊗ forward-forward-learning (+1) = 0 ✓")
    assert (parsed.sum_mod3, parsed.balanced, parsed.claim_correct) == (1, False, False)
    assert str(parsed) == "proofgeneral-narya (-1) ⊗ unworld (+1) ⊗ forward-forward-learning (+1) = +1 ✗"


def test_a_correct_mark_of_imbalance_is_a_correct_claim():
    parsed = parse_triad_statement("a (1) ⊗ b (0) = 1 ✗")
    assert (parsed.balanced, parsed.claim_correct) == (False, True)


@pytest.mark.parametrize(
    ("statement", "names", "values"),
    [
        ("a (1) x b (1) x c (1) = 0", ("a", "b", "c"), (1, 1, 1)),
        ("a(-1)*b(+1)", ("a", "b"), (-1, 1)),
        ("x (\u22121) × y (0) × z (1) ✓", ("x", "y", "z"), (-1, 0, 1)),
        ("lonely-skill (0)", ("lonely-skill",), (0,)),
        ("  box (+1) ⊗ axe ( -1 )  =  0  ✓ ", ("box", "axe"), (1, -1)),
    ],
)
def test_separators_claims_and_marks_are_optional_and_varied(statement, names, values):
    parsed = parse_triad_statement(statement)
    assert (parsed.names, parsed.trits) == (names, values)


def test_a_statement_without_claim_or_mark_claims_nothing():
    parsed = parse_triad_statement("a (1) ⊗ b (1)")
    assert (parsed.claimed, parsed.mark, parsed.claim_correct, parsed.balanced) == (None, None, None, False)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("a (2) ⊗ b (0)", r"term 'a' has trit '2'; a trit must be -1, 0 or \+1"),
        ("a (1) ⊗ b (plus)", r"term 'b' has trit 'plus'"),
        ("a (1) ⊗", r"expected 'name \(trit\)' at ''"),
        ("a (1) b (0)", r"expected '⊗', '×', '\*' or ' x ' at 'b \(0\)'"),
        ("", r"expected 'name \(trit\)'"),
        ("a (1) = zero ✓", r"the value after '=' must be an integer, got 'zero'"),
    ],
)
def test_malformed_statements_raise_value_error_saying_what_is_wrong(statement, message):
    with pytest.raises(ValueError, match=message):
        parse_triad_statement(statement)


@given(st.lists(st.tuples(name, trit), min_size=1, max_size=6))
def test_format_and_parse_round_trip_with_a_correct_claim(terms):
    names, values = zip(*terms)
    parsed = parse_triad_statement(format_triad(names, values))
    assert (parsed.names, parsed.trits, parsed.claim_correct) == (names, values, True)
    assert parsed.balanced == is_balanced(values)
