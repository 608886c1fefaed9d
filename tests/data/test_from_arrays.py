"""from_arrays and validate_features: user data is checked, and every error says what and where."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ff_mcp.data import from_arrays, validate_features

finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@st.composite
def labelled_matrices(draw, min_rows=2):
    rows = draw(st.integers(min_value=min_rows, max_value=30))
    cols = draw(st.integers(min_value=1, max_value=6))
    x = draw(hnp.arrays(np.float32, (rows, cols), elements=finite_floats))
    num_classes = draw(st.integers(min_value=2, max_value=5))
    y = draw(hnp.arrays(np.int64, rows, elements=st.integers(0, num_classes - 1)))
    return x, y, num_classes


@settings(max_examples=50, deadline=None)
@given(labelled_matrices(), st.floats(min_value=0.01, max_value=0.99), st.integers(0, 2**31))
def test_split_puts_every_row_in_exactly_one_side_keeping_its_label(data, test_fraction, seed):
    x, y, num_classes = data
    dataset = from_arrays(x, y, num_classes=num_classes, test_fraction=test_fraction, seed=seed)
    assert dataset.train_size >= 1 and dataset.test_size >= 1
    assert dataset.train_size + dataset.test_size == len(x)
    rebuilt = torch.cat([
        torch.column_stack([dataset.x_train, dataset.y_train.float()]),
        torch.column_stack([dataset.x_test, dataset.y_test.float()]),
    ])
    original = np.column_stack([x, y.astype(np.float32)])
    assert sorted(map(tuple, rebuilt.tolist())) == sorted(map(tuple, original.tolist()))


@settings(max_examples=50, deadline=None)
@given(labelled_matrices(), st.data())
def test_a_nan_or_inf_is_reported_at_its_row_and_column(data, draw):
    x, y, num_classes = data
    row = draw.draw(st.integers(0, x.shape[0] - 1))
    column = draw.draw(st.integers(0, x.shape[1] - 1))
    x[row, column] = draw.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match=rf"^x contains NaN or inf at row {row}, column {column}$"):
        from_arrays(x, y, num_classes=num_classes)


@settings(max_examples=50, deadline=None)
@given(labelled_matrices(), st.data())
def test_a_label_outside_the_classes_is_reported_with_its_row(data, draw):
    x, y, num_classes = data
    row = draw.draw(st.integers(0, len(y) - 1))
    bad = draw.draw(st.one_of(st.integers(-100, -1), st.integers(num_classes, 100)))
    y[row] = bad
    with pytest.raises(ValueError, match=rf"^label {bad} at row {row} is out of range \[0, {num_classes}\)$"):
        from_arrays(x, y, num_classes=num_classes)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=10).filter(lambda lengths: len(set(lengths)) > 1))
def test_ragged_lists_name_the_first_ragged_row(lengths):
    rows = [[0.5] * length for length in lengths]
    first_ragged = next(i for i, length in enumerate(lengths) if length != lengths[0])
    expected = f"x is ragged: row {first_ragged} has {lengths[first_ragged]} values but row 0 has {lengths[0]}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        from_arrays(rows, [0] * len(rows), num_classes=2)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        ([1.0, 2.0, 3.0], [0, 1, 0], {}, "x must be 2-D (rows, features), got shape (3,)"),
        ([[1.0], [2.0], [3.0], [4.0]], [0, 1, 0, 1, 1], {}, "y has 5 labels but x has 4 rows"),
        ([[1.0, 2.0]], [0], {}, "x must have at least 2 rows, got 1"),
        ([[], []], [0, 1], {}, "x must have at least 1 feature, got shape (2, 0)"),
        ([[1.0], [2.0]], [[0], [1]], {}, "y must be 1-D (one label per row), got shape (2, 1)"),
        ([[1.0], [2.0]], [12, 0], {"num_classes": 10}, "label 12 at row 0 is out of range [0, 10)"),
        (
            [[1.0], [2.0]],
            [0, 0],
            {},
            "need at least 2 classes, but the largest label is 0 (num_classes defaults to max label + 1)",
        ),
        ([[1.0], [2.0]], [0, 1], {"num_classes": 1}, "num_classes must be an int >= 2, got 1"),
        ([[1.0], [2.0]], [0, 1.5], {}, "label 1.5 at row 1 of y is not an integer"),
        ([[1.0], [2.0]], ["cat", "dog"], {}, "y must hold numbers; found 'cat' at row 0"),
        ([[1.0, "a"], [2.0, 3.0]], [0, 1], {}, "x must hold numbers; found 'a' at row 0, column 1"),
        ([[1.0, None], [2.0, 3.0]], [0, 1], {}, "x must hold numbers; found None at row 0, column 1"),
        ([[1.0], 2.0], [0, 1], {}, "x mixes numbers and rows: row 0 is a sequence but row 1 is a number"),
        ([[1.0], [2.0]], [0, 1], {"test_fraction": 1.0}, "test_fraction must be in (0, 1), got 1.0"),
        ([[1.0], [2.0]], [0, 1], {"x_test": [[1.0]]}, "x_test and y_test must be given together"),
        ([[1.0], [2.0]], [0, 1], {"x_test": [[1.0, 2.0]], "y_test": [0]}, "x_test rows must have 1 features, got 2"),
        (
            [[1.0], [2.0]],
            [0, 1],
            {"x_test": [[1.0]], "y_test": [5], "num_classes": 2},
            "label 5 at row 0 of y_test is out of range [0, 2)",
        ),
        ([[1.0], [2.0]], [0, 1], {"name": ""}, "name must be a non-empty string, got ''"),
    ],
)
def test_bad_input_raises_value_error_with_exact_text(x, y, kwargs, message):
    with pytest.raises(ValueError) as error:
        from_arrays(x, y, **kwargs)
    assert str(error.value) == message


def test_python_lists_become_float32_features_and_int64_labels():
    data = from_arrays([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]], [0, 1, 2, 1, 0], test_fraction=0.4, seed=3)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.num_classes == 3 and data.in_features == 2 and data.image_shape is None
    assert data.train_size == 3 and data.test_size == 2 and data.name == "arrays"


def test_integral_float_labels_are_accepted():
    assert from_arrays(np.eye(3), np.array([0.0, 1.0, 2.0])).y_train.dtype == torch.int64


def test_split_is_the_same_for_the_same_seed_and_differs_for_another():
    x, y = np.arange(200, dtype=np.float32).reshape(100, 2), np.arange(100) % 2
    first, second = from_arrays(x, y, seed=7), from_arrays(x, y, seed=7)
    other = from_arrays(x, y, seed=8)
    assert torch.equal(first.x_test, second.x_test) and not torch.equal(first.x_test, other.x_test)
    assert first.test_size == 20
    # rows keep their input order inside each split
    assert torch.all(first.x_train[1:, 0] > first.x_train[:-1, 0])


def test_explicit_test_set_is_used_as_given():
    data = from_arrays(torch.ones(4, 3), torch.tensor([0, 1, 0, 1]), x_test=np.zeros((2, 3)), y_test=[2, 1])
    assert data.num_classes == 3  # inferred over train and test labels
    assert data.train_size == 4 and torch.equal(data.x_test, torch.zeros(2, 3)) and data.y_test.tolist() == [2, 1]


def test_validate_features_returns_float32_rows_of_the_right_width():
    features = validate_features([[1, 2, 3], [4, 5, 6]], 3)
    assert features.dtype == torch.float32 and features.shape == (2, 3)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 10)), "x rows must have 784 features, got 10"),
        (np.zeros(784), "x must be 2-D (rows, features), got shape (784,); wrap a single row in a list: [row]"),
        (np.zeros(5), "x must be 2-D (rows, features), got shape (5,)"),
        (np.full((1, 784), np.inf), "x contains NaN or inf at row 0, column 0"),
    ],
)
def test_validate_features_rejects_bad_prediction_input(x, message):
    with pytest.raises(ValueError) as error:
        validate_features(x, 784)
    assert str(error.value) == message
