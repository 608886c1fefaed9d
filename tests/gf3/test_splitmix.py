"""SplitMix64, Gay.jl's splitmix64 and seed derivation against published vectors."""

import itertools
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ff_mcp.gf3.splitmix import (
    GOLDEN,
    MASK64,
    MIX1,
    MIX2,
    SplitMix64,
    derive_seed,
    derive_torch_seed,
    fnv1a64,
    mix64,
    splitmix64,
)

u64 = st.integers(min_value=0, max_value=MASK64)


def test_constants_are_the_gay_jl_splitmix64_constants():
    assert (GOLDEN, MIX1, MIX2) == (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def test_stream_from_seed_1234567_matches_the_rosetta_code_vector():
    stream = SplitMix64(1234567)
    assert [stream.next_u64() for _ in range(5)] == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]


def test_stream_from_the_legacy_gay_seed_matches_the_gay_jl_doc_vector():
    assert list(itertools.islice(SplitMix64(0x6761795F636F6C6F), 2)) == [0xF061EBBC2CA74D78, 0x34DC5AA0B7117465]


def test_stream_from_seed_1069_matches_the_recorded_vector():
    assert list(itertools.islice(SplitMix64(1069), 3)) == [0x97629500787D9C76, 0xB30FB97B4961612F, 0x400598BC483056FD]


def test_splitmix64_adds_golden_before_mixing_so_it_equals_the_first_stream_draw():
    assert splitmix64(1234567) == 6457827717110365317


def test_next_float_is_in_the_unit_interval_and_uses_the_top_53_bits():
    value = SplitMix64(1234567).next_float()
    assert value == (6457827717110365317 >> 11) / 2**53
    assert 0.0 <= value < 1.0


@given(u64)
def test_splitmix64_wraps_like_unsigned_64_bit_arithmetic(x):
    assert splitmix64(x) == splitmix64(x + 2**64) == mix64((x + GOLDEN) % 2**64)
    assert 0 <= splitmix64(x) <= MASK64


@pytest.mark.parametrize("bad_seed", [-1, 2**64, 1.5, "1", True, None])
def test_stream_rejects_a_seed_outside_unsigned_64_bits(bad_seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\), got " + repr(bad_seed)):
        SplitMix64(bad_seed)


def test_fnv1a64_matches_the_published_fnv_test_vectors():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def test_derive_seed_is_the_splitmix_of_the_purpose_hash_xor_the_base_seed():
    assert derive_seed(1069, "init") == splitmix64(fnv1a64(b"init") ^ 1069)


def test_derive_seed_gives_distinct_seeds_for_distinct_purposes():
    purposes = ["init", "shuffle", "negatives", "colors", "Init", "init "]
    assert len({derive_seed(7, p) for p in purposes}) == len(purposes)


def test_derive_seed_depends_only_on_its_arguments():
    assert derive_seed(2**64 - 1, "négatifs") == derive_seed(2**64 - 1, "négatifs")


@given(u64, st.text(max_size=20))
def test_derive_torch_seed_fits_torch_manual_seed_range(base, purpose):
    seed = derive_torch_seed(base, purpose)
    assert 0 <= seed < 2**63
    assert seed == derive_seed(base, purpose) >> 1


def test_derive_seed_rejects_a_negative_base_seed_and_a_non_string_purpose():
    with pytest.raises(ValueError, match=r"base_seed must be an integer in \[0, 2\*\*64\), got -5"):
        derive_seed(-5, "init")
    with pytest.raises(ValueError, match="purpose must be a string, got 3"):
        derive_seed(1, 3)


def test_the_gf3_package_imports_without_torch():
    code = "import sys, ff_mcp.gf3; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
