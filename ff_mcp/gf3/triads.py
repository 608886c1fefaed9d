"""GF(3) balance of trit sequences and the triad statements written on skill cards.

A sequence is balanced when its trits sum to 0 mod 3 (plurigrid/asi `tests/test_gf3_conservation.py`);
"⊗" in a statement such as `persistent-homology (-1) ⊗ open-games (0) ⊗ forward-forward-learning (+1) = 0 ✓`
is only notation for that sum.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ff_mcp.gf3.trits import check_trit, parse_trit

_MARKS = {"✓": True, "✔": True, "✗": False, "✘": False}  # mark -> the balance it asserts
_TERM_RE = re.compile(r"\s*(?P<name>[^\s()⊗×*=]+)\s*\((?P<trit>[^()]*)\)\s*")
_SEPARATOR_RE = re.compile(r"(?:⊗|×|\*|x(?=\s))\s*")  # a bare "x" only when followed by a space
_CLAIM_RE = re.compile(r"[+\-\u2212]?[0-9]+")


def as_trit(n: int) -> int:
    """Return the trit in {-1, 0, 1} congruent to the integer `n` mod 3."""
    return (n + 1) % 3 - 1


def sum_mod3(trits: Iterable[int]) -> int:
    """Return the sum of `trits` (each -1, 0 or +1) mod 3, as 0, 1 or 2."""
    return sum(check_trit(t, f"trits[{i}]") for i, t in enumerate(trits)) % 3


def is_balanced(trits: Iterable[int]) -> bool:
    """Return True when `trits` sum to 0 mod 3 (the empty sequence is balanced)."""
    return sum_mod3(trits) == 0


def balancing_trit(trits: Iterable[int]) -> int:
    """Return the one trit that, appended to `trits`, makes the sequence balanced."""
    return as_trit(-sum_mod3(trits))


def complete_triad(a: int, b: int) -> int:
    """Return the trit c with a + b + c = 0 mod 3."""
    return balancing_trit((a, b))


@dataclass(frozen=True)
class TriadStatement:
    """A parsed statement: its terms, what it claims, and what is true."""

    names: tuple[str, ...]
    trits: tuple[int, ...]
    claimed: int | None  # the integer after "=", or None when there is no "="
    mark: str | None  # the trailing "✓" / "✗" (or "✔" / "✘"), or None
    sum_mod3: int  # 0, 1 or 2
    balanced: bool
    claim_correct: bool | None  # None when the statement claims nothing

    def __str__(self) -> str:
        return format_triad(self.names, self.trits)


def format_triad(names: Iterable[str], trits: Iterable[int]) -> str:
    """Return the canonical statement with its true sum, e.g. "a (-1) ⊗ b (0) ⊗ c (+1) = 0 ✓"."""
    names, trits = tuple(names), tuple(trits)
    if len(names) != len(trits) or not names:
        raise ValueError(f"need one name per trit and at least one term, got {len(names)} names, {len(trits)} trits")
    total = as_trit(sum_mod3(trits))
    terms = " ⊗ ".join(f"{name} ({trit:+d})" if trit else f"{name} (0)" for name, trit in zip(names, trits))
    return f"{terms} = {total:+d} ✗" if total else f"{terms} = 0 ✓"


def parse_triad_statement(statement: str) -> TriadStatement:
    """Return the TriadStatement for text like "a (-1) ⊗ b (0) ⊗ c (+1) = 0 ✓".

    Terms are `name (trit)` joined by "⊗", "×", "*" or a spaced "x"; one term or more. "= N" and a
    final ✓ / ✗ are optional; N is compared mod 3, ✓ asserts balance and ✗ asserts imbalance.
    """
    if not isinstance(statement, str):
        raise ValueError(f"triad statement must be a string, got {statement!r}")
    text, mark = _split_mark(statement.strip())
    text, claimed = _split_claim(text, statement)
    names, trits = _parse_terms(text, statement)
    total = sum_mod3(trits)
    checks = [] if claimed is None else [claimed % 3 == total]
    if mark is not None:
        checks.append(_MARKS[mark] == (total == 0))
    return TriadStatement(names, trits, claimed, mark, total, total == 0, all(checks) if checks else None)


def _split_mark(text: str) -> tuple[str, str | None]:
    if text and text[-1] in _MARKS:
        return text[:-1].rstrip(), text[-1]
    return text, None


def _split_claim(text: str, statement: str) -> tuple[str, int | None]:
    if "=" not in text:
        return text, None
    terms, value = text.rsplit("=", 1)
    if not _CLAIM_RE.fullmatch(value.strip()):
        raise ValueError(f"triad statement {statement!r}: the value after '=' must be an integer, got {value.strip()!r}")
    return terms, int(value.strip().replace("\u2212", "-"))


def _parse_terms(text: str, statement: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names, trits, position = [], [], 0
    while True:
        term = _TERM_RE.match(text, position)
        if term is None:
            raise ValueError(
                f"triad statement {statement!r}: expected 'name (trit)' at {text[position:]!r};"
                " terms are joined by '⊗', '×', '*' or ' x '"
            )
        try:
            trits.append(parse_trit(term["trit"]))
        except ValueError:
            raise ValueError(
                f"triad statement {statement!r}: term {term['name']!r} has trit {term['trit'].strip()!r};"
                " a trit must be -1, 0 or +1"
            ) from None
        names.append(term["name"])
        position = term.end()
        if position == len(text):
            return tuple(names), tuple(trits)
        separator = _SEPARATOR_RE.match(text, position)
        if separator is None:
            raise ValueError(f"triad statement {statement!r}: expected '⊗', '×', '*' or ' x ' at {text[position:]!r}")
        position = separator.end()
