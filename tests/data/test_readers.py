"""lifecycle.data.readers: batches of files, Parquet inputs that are missing or corrupt, files in another encoding,
and text columns that hold numbers or dates pandas did not parse (each stops with the read_options fix)."""

from __future__ import annotations

import pandas as pd
import pytest

from lifecycle.data.readers import batch_files, check_text_columns, read_parquet, read_table
from lifecycle.errors import DataError


def test_no_batch_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / ".gitkeep").touch()
    with pytest.raises(DataError, match=r"no \.csv or \.parquet file to score"):
        batch_files(tmp_path / "incoming")
    with pytest.raises(DataError, match=r"batch not found"):
        batch_files(tmp_path / "nowhere")


def test_a_batch_is_the_files_of_several_folders_in_the_order_given(tmp_path) -> None:
    mine, demo = tmp_path / "incoming", tmp_path / "demo"
    mine.mkdir()
    demo.mkdir()
    (mine / ".gitkeep").touch()
    (demo / "telemetry_v2.parquet").write_bytes(b"x")
    assert batch_files([mine, demo]) == [demo / "telemetry_v2.parquet"]  # an empty folder of yours adds nothing
    for name in ("b.csv", "a.parquet", "notes.txt"):
        (mine / name).write_bytes(b"x")
    assert batch_files([mine, demo]) == [mine / "a.parquet", mine / "b.csv", demo / "telemetry_v2.parquet"]
    (demo / "telemetry_v2.parquet").unlink()
    (mine / "a.parquet").unlink()
    (mine / "b.csv").unlink()
    with pytest.raises(DataError, match=r"incoming or .*demo: no \.csv or \.parquet file to score; .*`dvc add "):
        batch_files([mine, demo])


def test_a_missing_or_corrupt_parquet_input_names_the_file_and_the_command(tmp_path) -> None:
    with pytest.raises(DataError, match=r"raw\.parquet: raw data not found; run `dvc repro ingest` to build it"):
        read_parquet(tmp_path / "raw.parquet", "raw data", producer="dvc repro ingest")
    (tmp_path / "raw.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(
        DataError, match=r"raw\.parquet: cannot be read as Parquet .* empty or corrupt, rerun `dvc repro`"
    ):
        read_parquet(tmp_path / "raw.parquet")


# --------------------------------------------------------------------------------------------- text columns
def text_frame(**columns: list) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype="str") for name, values in columns.items()})


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        (["1,408.5", "12.5", "2,000,000.0"], ["thousands separators such as '1,408.5'", 'thousands: ","']),
        (["3,75", "12,5", "7"], ["decimal comma such as '3,75'", 'decimal: ","']),
        (["1.408,5", "3,2", "12"], ["decimal comma such as '1.408,5'", 'decimal: ","', 'thousands: "."']),
        (["48,334", "1,408", "7"], ["thousands: ',' if it means 48334", "decimal: ',' if it means 48.334"]),
        (["12", "?", "14.5", "-", "13"], ["'-', '?' in 2 rows as a missing-value marker", 'na_values: ["-", "?"]']),
        (["12", "n.a.", "14.5"], ["'n.a.' in 1 rows", 'na_values: ["n.a."]']),
        (["03/15/2021", "12/31/2021"], ["month-first dates", 'date_format: "%m/%d/%Y"', 'parse_dates: ["c"]']),
        (["15.03.21 10:30", "01.04.21 11:00"], ["day-first dates", 'date_format: "%d.%m.%y %H:%M"']),
        (["01/02/2021", "03/04/2021"], ["(date_format '%d/%m/%Y' if day-first, '%m/%d/%Y' if month-first)"]),
    ],
)
def test_text_columns_that_hold_numbers_or_dates_stop_with_the_read_options_fix(values, fragments) -> None:
    with pytest.raises(DataError) as err:
        check_text_columns(text_frame(c=values), "data/external/f.csv", {})
    message = str(err.value)
    assert message.startswith("data/external/f.csv: column 'c' ") and "\n" not in message
    assert "add to ingest.read_options: {" in message and "dvc exp run -S '++ingest.read_options." in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "values",
    [
        ["S", "M", "12", "14"],  # a size: words are categories, not missing-value markers
        ["1.2.3", "2.0.1"],  # versions
        ["555-1234", "555-9876"],  # phone numbers
        ["a", "b", "?"],  # text with a '?' category: no numbers
        ["2021-03-15", "2021-04-01"],  # ISO dates: parsed by ingest's schema inference
    ],
)
def test_text_that_is_text_is_left_alone(values) -> None:
    check_text_columns(text_frame(c=values), "f.csv", {})


def test_several_columns_one_line_and_the_na_values_already_set_are_kept() -> None:
    df = text_frame(a=["1", "?", "3"], b=["4", "-", "6"], ok=["x", "y", "z"])
    with pytest.raises(DataError) as err:
        check_text_columns(df, "f.csv", {"sep": ";", "na_values": ["NA"]})
    message = str(err.value)
    assert "column 'a'" in message and "column 'b'" in message and "'ok'" not in message
    assert 'na_values: ["NA", "?", "-"]' in message


def test_parquet_text_numbers_are_fixed_in_the_file() -> None:
    with pytest.raises(DataError, match=r"f\.parquet: column 'c' .* store them as numbers/timestamps in the Parquet"):
        check_text_columns(text_frame(c=["1,408.5", "3.0"]), "f.parquet", {})


@pytest.mark.parametrize(
    ("data", "encoding", "where"),
    [
        (
            "id,city\n1,Montréal\n2,Köln\n".encode("latin-1"),
            "latin-1",
            "byte 0xe9 at line 2, column 'city' ('Montréal'",
        ),
        ("id;note\n1;ok\n2;“quoted” €\n".encode("cp1252"), "cp1252", "byte 0x93 at line 3, column 'note'"),
        ("id,city\n1,Zürich\n".encode("utf-16"), "utf-16", "byte 0xff"),
    ],
)
def test_a_file_in_another_encoding_names_line_column_and_the_encoding(tmp_path, data, encoding, where) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    sep = ";" if b";" in data else ","
    with pytest.raises(DataError) as err:
        read_table(path, {"sep": sep})
    message = str(err.value)
    assert f"not utf-8 text ({where}" in message and "\n" not in message
    assert f"set ingest.read_options.encoding: {encoding}" in message
    assert pd.read_csv(path, sep=sep, encoding=encoding).shape[0] >= 1  # the fix reads it


def test_a_bom_and_crlf_file_reads_as_it_is(tmp_path) -> None:
    (tmp_path / "f.csv").write_bytes('\ufeff"A b",c\r\n1,x\r\n2,y\r\n'.encode())
    df = read_table(tmp_path / "f.csv")
    assert list(df.columns) == ["A b", "c"] and df["c"].tolist() == ["x", "y"]
