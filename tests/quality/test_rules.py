"""lifecycle.quality.rules: the one row-rule evaluator (masks, reasons) and its one row-hashing scheme, within a
frame and across the chunks of a batch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifecycle.quality.rules import REASON, SeenRows, duplicate_masks, row_hashes, row_rules, split_rows


def test_multiple_broken_rules_on_one_row_are_all_named(messy, contract) -> None:
    df, _ = messy
    df = df.copy()
    df.loc[0, ["state_of_health_pct", "chemistry"]] = [250.0, "NaS"]
    split = split_rows(df, contract)
    reason = split.quarantined.set_index("reading_id").loc[df.loc[0, "reading_id"], REASON]
    assert reason == "state_of_health_pct=250.0 outside [0.0, 100.0]; chemistry='NaS' not in {'NMC', 'LFP'}"


def test_datetime_window_quarantines_timestamps_outside(messy, contract) -> None:
    df, _ = messy
    df = df.copy()
    df.loc[3, "recorded_at"] = pd.Timestamp("1970-01-01")
    split = split_rows(df, contract)
    assert "recorded_at=1970-01-01 outside [2025-01-01, 2027-01-01]" in split.quarantined[REASON].tolist()


def test_rules_skip_missing_and_mistyped_columns_and_name_them(messy, contract) -> None:
    df, _ = messy
    df = df.drop(columns=["chemistry"]).astype({"pack_voltage_v": str})
    split = split_rows(df, contract)
    assert (split.missing, split.mistyped) == (["chemistry"], ["pack_voltage_v"])
    ids = {r.id for r in split.rules}
    assert "pack_voltage_v.between" not in ids and "chemistry.in_set" not in ids and "rows.unique" not in ids
    assert "state_of_health_pct.between" in ids


def test_duplicate_masks_match_pandas_duplicated() -> None:
    df = pd.DataFrame(
        {
            "x": [1.0, np.nan, 1.0, np.nan, 2.0, 1.0, 1.0],
            "s": pd.array(["a", None, "a", None, "a", "b", "a"], dtype="str"),
        }
    )
    for cols in (["x", "s"], ["s"]):
        for hashes in (None, row_hashes(df, cols)):  # candidates hashed, or every row's hashes given
            every, repeats, first_of = duplicate_masks(df, cols, hashes)
            assert every.tolist() == df.duplicated(cols, keep=False).tolist()
            assert repeats.tolist() == df.duplicated(cols, keep="first").tolist()
    every, repeats, first_of = duplicate_masks(df, ["x", "s"])
    assert first_of.to_dict() == {2: 0, 3: 1, 6: 0}


def test_a_rows_hash_depends_on_its_values_only(messy) -> None:
    """One scheme for within a frame and across chunks: hashing a slice gives the whole frame's hashes."""
    df, _ = messy
    columns = list(df.columns)
    whole = row_hashes(df, columns)
    np.testing.assert_array_equal(row_hashes(df.iloc[1000:1500], columns), whole[1000:1500])
    assert whole.dtype == np.uint64 and len(whole) == len(df)


def test_chunks_with_seen_rows_split_like_the_whole_frame(messy, contract) -> None:
    """Repeats of rows let through by an earlier chunk are quarantined as "duplicate of row <id>", so the clean
    rows and the quarantined ones do not depend on the chunk size."""
    df, _ = messy
    whole = split_rows(df, contract)
    seen = SeenRows(contract.row_id)
    parts = [split_rows(df.iloc[i : i + 700], contract, seen=seen) for i in range(0, len(df), 700)]
    clean = pd.concat([p.clean for p in parts], ignore_index=True)
    quarantined = pd.concat([p.quarantined for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(clean, whole.clean)
    key = ["reading_id", REASON]
    by_id = quarantined.sort_values(key, kind="stable").reset_index(drop=True)
    expected = whole.quarantined.sort_values(key, kind="stable").reset_index(drop=True)
    assert by_id["reading_id"].tolist() == expected["reading_id"].tolist()
    only_duplicates = expected[REASON].str.startswith("duplicate of row")
    assert (by_id.loc[only_duplicates, REASON] == expected.loc[only_duplicates, REASON]).all()
    assert only_duplicates.sum() > 20 and seen.count == len(clean)


def test_row_rules_follow_the_contract_order_with_duplicates_last(contract) -> None:
    rules = row_rules(contract)
    assert rules[0].id == "reading_id.not_null" and rules[-1].id == "rows.unique"
    assert rules[-1].columns == tuple(contract.names)
