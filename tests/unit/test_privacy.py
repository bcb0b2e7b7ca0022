"""k-anonymity, distinct l-diversity and t-closeness on hand-computed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycanon import anonymity

from veilflow.errors import SourceError
from veilflow.validate.file_risk import frame_risk
from veilflow.validate.privacy import table_identifier
from veilflow.validate.risk_metrics import _ordered_emd, metrics_from_histogram

#: Li, Li & Venkatasubramanian (2007), Table 4: a 3-diverse table that is not 0.15-close.
LI_TABLE = pd.DataFrame(
    {
        "zip": ["4767*"] * 3 + ["4790*"] * 3 + ["476**"] * 3,
        "age": ["<=40"] * 3 + [">=40"] * 3 + ["3*"] * 3,
        "salary": [3, 4, 5, 6, 11, 8, 7, 9, 10],  # thousands
        "disease": [
            "gastric ulcer",
            "gastritis",
            "stomach cancer",
            "gastritis",
            "flu",
            "bronchitis",
            "bronchitis",
            "pneumonia",
            "stomach cancer",
        ],
    }
)


def test_two_anonymous_but_not_two_diverse() -> None:
    """The homogeneity attack: every class has 2 rows (k = 2), but the class 476** / 2*
    has one diagnosis only, so knowing someone is in it reveals "heart disease" (l = 1)."""
    df = pd.DataFrame(
        {
            "zip": ["476**", "476**", "4790*", "4790*", "130**", "130**"],
            "age": ["2*", "2*", ">=40", ">=40", "3*", "3*"],
            "disease": ["heart disease", "heart disease", "flu", "cancer", "flu", "flu"],
        }
    )
    m = frame_risk(df, ["zip", "age"], "disease")
    assert (m.k, m.l, m.classes, m.rows) == (2, 1, 3, 6)
    assert m.class_sizes == {2: 3}


def test_k_counts_the_smallest_class_and_the_size_distribution() -> None:
    df = pd.DataFrame({"zip": ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"], "sex": ["f"] * 12})
    m = frame_risk(df, ["zip", "sex"])
    assert m.k == 1 and m.l is None and m.t is None
    assert m.class_sizes == {1: 1, 3: 2, 5: 1}
    assert m.rows_in_classes_below(4) == 1 + 3 + 3
    assert m.rows_in_classes_below(1) == 0


def test_ordered_distance_t_closeness_by_hand() -> None:
    """Salaries 3k..11k, one each, so q = 1/9 per value; m = 9 ordered values.

    Class {3k,4k,5k}: p − q = (2,2,2,−1,−1,−1,−1,−1,−1)/9, running sums (2,4,6,5,4,3,2,1,0)/9,
    Σ|·| = 27/9 = 3, EMD = 3/(m−1) = 3/8 = 0.375.
    Class {6k,8k,11k}: running sums (−1,−2,−3,−1,−2,0,−1,−2,0)/9, Σ = 12/9, EMD = 1/6.
    Class {7k,9k,10k}: running sums (−1,−2,−3,−4,−2,−3,−1,1,0)/9, Σ = 17/9, EMD = 17/72.
    t is the largest: 0.375 (the paper's figure for the first class).
    """
    m = frame_risk(LI_TABLE, ["zip", "age"], "salary")
    assert m.distance == "ordered"
    assert m.t == pytest.approx(0.375)
    # Every class's own EMD, through the core on the table's histogram (class, rank, count).
    cls = np.repeat([0, 1, 2], 3)
    rank = np.array([0, 1, 2, 3, 8, 5, 4, 6, 7])  # 3k→0 … 11k→8
    order = np.lexsort((rank, cls))
    emd = _ordered_emd(
        cls[order],
        rank[order],
        np.ones(9, dtype=np.int64)[order],
        np.array([3, 3, 3]),
        np.full(9, 1 / 9),
    )
    assert emd == pytest.approx([3 / 8, 1 / 6, 17 / 72])
    assert m.k == 3 and m.l == 3


def test_equal_distance_t_closeness_by_hand() -> None:
    """Diseases over 9 rows: q = gastric ulcer 1/9, gastritis 2/9, stomach cancer 2/9,
    flu 1/9, bronchitis 2/9, pneumonia 1/9. Class 4767* has one each of gastric ulcer,
    gastritis, stomach cancer (p = 1/3): ½·(2/9 + 1/9 + 1/9 + 1/9 + 2/9 + 1/9) = 4/9.
    Class 4790* {gastritis, flu, bronchitis}: ½·(1/9 + 1/9 + 2/9 + 2/9 + 1/9 + 1/9) = 4/9.
    Class 476** {bronchitis, pneumonia, stomach cancer}: the same, 4/9. So t = 4/9."""
    m = frame_risk(LI_TABLE, ["zip", "age"], "disease")
    assert m.distance == "equal"
    assert m.t == pytest.approx(4 / 9)


def test_a_class_equal_to_the_whole_table_is_zero_close() -> None:
    df = pd.DataFrame({"qi": ["a", "a", "b", "b"], "s": [1, 2, 1, 2]})
    m = frame_risk(df, ["qi"], "s")
    assert m.t == pytest.approx(0.0)
    assert (m.k, m.l) == (2, 2)


def test_ordered_distance_uses_value_order_not_labels() -> None:
    """Two classes {1,1} and {3,3} over values 1,2,3 with q = (½, 0, ½): the first class has
    running sums (½, ½, 0), EMD = 1/(3−1) = ½; the 2 never occurs, so m = 2 values and
    EMD = ½/(2−1) = ½ either way."""
    df = pd.DataFrame({"qi": ["a", "a", "b", "b"], "s": [1, 1, 3, 3]})
    assert frame_risk(df, ["qi"], "s").t == pytest.approx(0.5)
    assert frame_risk(df, ["qi"], "s", distance="equal").t == pytest.approx(0.5)
    df = pd.DataFrame({"qi": ["a", "a", "b", "b", "b", "b"], "s": [1, 1, 2, 2, 3, 3]})
    # q = (1/3, 1/3, 1/3); class a: running sums (2/3, 1/3, 0) → Σ = 1, EMD = 1/2.
    assert frame_risk(df, ["qi"], "s").t == pytest.approx(0.5)
    # Equal distance ignores order: ½·(2/3 + 1/3 + 1/3) = 2/3.
    assert frame_risk(df, ["qi"], "s", distance="equal").t == pytest.approx(2 / 3)


def test_null_is_a_value_of_its_own() -> None:
    df = pd.DataFrame({"zip": ["a", "a", None, None], "s": ["x", None, "x", "x"]})
    m = frame_risk(df, ["zip"], "s")
    assert (m.classes, m.k, m.l) == (2, 2, 1)


def test_empty_frame() -> None:
    m = frame_risk(pd.DataFrame({"a": [], "s": []}), ["a"], "s")
    assert (m.rows, m.k, m.classes) == (0, 0, 0)


def test_unknown_column_names_the_column() -> None:
    with pytest.raises(SourceError, match="zipcode"):
        frame_risk(LI_TABLE, ["zipcode"], "salary")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pycanon_on_random_tables(seed: int) -> None:
    """pycanon is an independent implementation of the same definitions."""
    rng = np.random.default_rng(seed)
    n = 3000
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 6, n).astype(str),
            "b": rng.integers(0, 4, n),
            "num": rng.integers(0, 25, n),
            "cat": rng.choice(["x", "y", "z", "w"], n, p=[0.7, 0.1, 0.1, 0.1]),
        }
    )
    for sens in ("num", "cat"):
        m = frame_risk(df, ["a", "b"], sens)
        assert m.k == anonymity.k_anonymity(df, ["a", "b"])
        assert m.l == anonymity.l_diversity(df, ["a", "b"], [sens])
        assert m.t == pytest.approx(anonymity.t_closeness(df, ["a", "b"], [sens]), abs=1e-9)


def test_histogram_core_directly() -> None:
    # Two classes over values 0..2: class 0 = {0:2}, class 1 = {1:1, 2:1}.
    m = metrics_from_histogram(
        np.array([0, 1, 1]),
        np.array([0, 1, 2]),
        np.array([2, 1, 1]),
        quasi_identifiers=("q",),
        sensitive="s",
        distance="ordered",
    )
    # q = (½, ¼, ¼); class 0: running (½, ¼, 0) → ¾ / 2 = 3/8.
    assert (m.k, m.l, m.t) == (2, 1, pytest.approx(3 / 8))


def test_table_identifier_quotes_each_part() -> None:
    assert table_identifier('staging."c__r1__out"').as_string() == '"staging"."c__r1__out"'
    assert table_identifier("public.t").as_string() == '"public"."t"'
    with pytest.raises(SourceError):
        table_identifier("a.b.c")


# --------------------------------------------------------------------------- k + l only

STRING = pd.StringDtype("pyarrow")


def _truth(frame: pd.DataFrame, qi: list[str], sensitive: str) -> tuple[int, int, dict[int, int]]:
    """k, distinct l and the class-size distribution counted row by row in plain Python,
    with every missing marker (None, NaN, NA) as one value of its own."""

    def key(v: object) -> object:
        return None if pd.isna(v) else v  # type: ignore[call-overload]

    sizes: dict[tuple[object, ...], int] = {}
    values: dict[tuple[object, ...], set[object]] = {}
    for row in frame[[*qi, sensitive]].itertuples(index=False):
        cls = tuple(key(v) for v in row[:-1])
        sizes[cls] = sizes.get(cls, 0) + 1
        values.setdefault(cls, set()).add(key(row[-1]))
    dist: dict[int, int] = {}
    for s in sizes.values():
        dist[s] = dist.get(s, 0) + 1
    return min(sizes.values()), min(len(v) for v in values.values()), dist


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as pycanon needs it: Python objects, NULL as a value it does not drop."""
    return frame.astype(object).where(frame.notna(), "<NULL>")


KL_CASES = {
    "homogeneity": (
        pd.DataFrame(
            {
                "zip": ["476**", "476**", "4790*", "4790*", "130**", "130**"],
                "age": ["2*", "2*", ">=40", ">=40", "3*", "3*"],
                "disease": ["heart disease", "heart disease", "flu", "cancer", "flu", "flu"],
            }
        ),
        ["zip", "age"],
        "disease",
        (2, 1, {2: 3}),
    ),
    "li_salary": (LI_TABLE, ["zip", "age"], "salary", (3, 3, {3: 3})),
    "li_disease": (LI_TABLE, ["zip", "age"], "disease", (3, 3, {3: 3})),
    # Classes (a,1) = {x, y, y}, (NULL,1) = {x, NULL}, (a,NULL) = {x, x}.
    "nulls": (
        pd.DataFrame(
            {
                "zip": pd.array(["a", "a", "a", None, None, "a", "a"], dtype=STRING),
                "age": pd.array(["1", "1", "1", "1", "1", None, None], dtype=STRING),
                "s": pd.array(["x", "y", "y", "x", None, "x", "x"], dtype=STRING),
            }
        ),
        ["zip", "age"],
        "s",
        (2, 1, {3: 1, 2: 2}),
    ),
    "one_class": (
        pd.DataFrame({"q": ["a"] * 4, "s": ["x", "y", "x", "z"]}),
        ["q"],
        "s",
        (4, 3, {4: 1}),
    ),
    "no_qi": (pd.DataFrame({"q": ["a", "b"], "s": ["x", "y"]}), [], "s", (2, 2, {2: 1})),
}


@pytest.mark.parametrize("case", list(KL_CASES))
def test_k_and_l_only_match_the_hand_computed_figures(case: str) -> None:
    frame, qi, sens, (k, l_div, sizes) = KL_CASES[case]
    fast = frame_risk(frame, qi, sens, with_t=False)
    assert (fast.k, fast.l, fast.class_sizes, fast.t, fast.distance) == (
        k,
        l_div,
        sizes,
        None,
        None,
    )
    assert (fast.rows, fast.classes) == (len(frame), sum(sizes.values()))
    full = frame_risk(frame, qi, sens)
    assert (full.k, full.l, full.class_sizes, full.classes) == (k, l_div, sizes, fast.classes)
    assert _truth(frame, qi, sens) == (k, l_div, sizes)
    if qi:  # pycanon needs at least one quasi-identifier
        plain = _plain(frame)
        assert anonymity.k_anonymity(plain, qi) == k
        assert anonymity.l_diversity(plain, qi, [sens]) == l_div


def test_k_and_l_only_on_an_empty_frame() -> None:
    frame = pd.DataFrame({"a": pd.array([], dtype=STRING), "s": pd.array([], dtype=STRING)})
    m = frame_risk(frame, ["a"], "s", with_t=False)
    assert (m.rows, m.classes, m.k, m.l, m.class_sizes) == (0, 0, 0, 0, {})
    assert frame_risk(frame, ["a"], with_t=False).l is None


def test_every_missing_marker_is_one_null_and_not_its_spelling() -> None:
    """None and NaN in an object column are the same NULL, as in GROUP BY; the strings
    "None", "nan" and "<NA>" are values of their own."""
    frame = pd.DataFrame(
        {
            "q": pd.Series([None, np.nan, "None", "nan", "<NA>", "<NA>"], dtype=object),
            "f": [np.nan, np.nan, 1.0, 1.0, 1.0, 1.0],
            "s": pd.array(["x", None, "x", "x", None, "x"], dtype=STRING),
        }
    )
    m = frame_risk(frame, ["q", "f"], "s", with_t=False)
    assert m.class_sizes == {2: 2, 1: 2}  # (NULL, NULL) x2, (None), (nan), (<NA>) x2
    assert (m.k, m.l) == (1, 1)
    # (NULL, NULL) holds x and NULL: two values; (<NA>, 1) holds NULL and x.
    m = frame_risk(frame.iloc[[0, 1, 4, 5]], ["q"], "s", with_t=False)
    assert (m.classes, m.k, m.l) == (2, 2, 2)


def test_class_codes_stay_exact_past_int64() -> None:
    """Quasi-identifiers of 2, 2^16, 2^16, 2^16 and 2^16 distinct values: their mixed-radix
    product is 2^65, and wrapping modulo 2^64 would drop the first column, merging two rows
    that differ only there. The codes are renumbered before they overflow, so every one of
    the 65,537 distinct rows stays a class of its own."""
    n = 1 << 16
    ids = np.arange(n)
    frame = pd.DataFrame({"c0": 0, "c1": ids, "c2": ids, "c3": ids, "c4": ids})
    twin = frame.iloc[[0]].assign(c0=1)  # differs from row 0 in c0 only
    frame = pd.concat([frame, twin], ignore_index=True)
    frame["s"] = "x"
    qi = ["c0", "c1", "c2", "c3", "c4"]
    m = frame_risk(frame, qi, "s", with_t=False)
    assert (m.classes, m.k, m.l, m.class_sizes) == (n + 1, 1, 1, {1: n + 1})
    assert frame_risk(frame, qi, "s").class_sizes == {1: n + 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_and_l_only_agree_with_pycanon_on_arrow_frames_with_nulls(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000

    def column(values: np.ndarray, null_share: float) -> pd.Series:
        out = pd.Series(values.astype(str), dtype=STRING)
        out[rng.random(n) < null_share] = None
        return out

    frame = pd.DataFrame(
        {
            "zip": column(rng.integers(0, 8, n), 0.05),
            "year": column(rng.integers(1950, 1956, n), 0.02),
            "gender": column(rng.choice(["F", "M", "X"], n, p=[0.5, 0.45, 0.05]), 0.0),
            "diagnosis": column(rng.integers(0, 6, n), 0.03),
        }
    )
    qi = ["zip", "year", "gender"]
    m = frame_risk(frame, qi, "diagnosis", with_t=False)
    plain = _plain(frame)
    assert m.k == anonymity.k_anonymity(plain, qi)
    assert m.l == anonymity.l_diversity(plain, qi, ["diagnosis"])
    assert (m.k, m.l, m.class_sizes) == _truth(frame, qi, "diagnosis")
    full = frame_risk(frame, qi, "diagnosis")
    assert (full.k, full.l, full.class_sizes) == (m.k, m.l, m.class_sizes)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None]),
            st.sampled_from([1.0, 2.0, float("nan")]),
            st.sampled_from(["x", "y", "z", None]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_k_and_l_only_match_a_row_by_row_count(
    rows: list[tuple[str | None, float, str | None]],
) -> None:
    frame = pd.DataFrame(rows, columns=["q", "f", "s"])
    frame["q"] = frame["q"].astype(STRING)
    m = frame_risk(frame, ["q", "f"], "s", with_t=False)
    assert (m.k, m.l, m.class_sizes) == _truth(frame, ["q", "f"], "s")
    full = frame_risk(frame, ["q", "f"], "s")
    assert (full.k, full.l, full.class_sizes) == (m.k, m.l, m.class_sizes)
