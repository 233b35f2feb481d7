"""Write the small files of tests/data/own: one per kind of real-world file that issue 13 lists.

    python tests/data/own/make_files.py        # rewrites every file, byte-identical for the same code

Each file has a learnable signal (so "trains end to end" means something) and one quirk of real files. The cases
(what params each needs, and whether it trains or stops with one line naming the column and the fix) are in
tests/data/test_own_files.py; docs/own-data.md shows the messages.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROWS = 240


def signal(rng: np.random.Generator, n: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric features and a binary label that depends on them (plus noise)."""
    x = rng.normal(50.0, 10.0, n)
    z = rng.normal(0.0, 1.0, n)
    y = (0.1 * (x - 50.0) + z + rng.normal(0.0, 0.5, n) > 0).astype(int)
    return np.round(x, 2), np.round(z, 3), y


def csv_text(df: pd.DataFrame, **kw) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n", **kw)
    return buf.getvalue()


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def main() -> None:
    rng = np.random.default_rng(13)
    x, z, y = signal(rng)
    ports = rng.choice(["Southampton", "Cherbourg", "Queenstown"], ROWS)

    # 1. a spreadsheet export: UTF-8 byte-order mark, CRLF line ends, quoted headers with spaces and capitals
    df = pd.DataFrame({"Passenger Id": np.arange(1, ROWS + 1), "Age (years)": x, "Fare Paid": z,
                       "Port of Embarkation": ports, "Survived": y})  # fmt: skip
    text = csv_text(df, quoting=1).replace("\n", "\r\n")
    write("bom_crlf_quoted_headers.csv", "\ufeff".encode() + text.encode())

    # 2. `?` for a missing number (UCI style)
    df = pd.DataFrame({"horsepower": x.astype(object), "weight": z, "origin": ports, "label": y})
    df.loc[rng.choice(ROWS, 9, replace=False), "horsepower"] = "?"
    write("question_marks.csv", csv_text(df).encode())

    # 3. decimal commas, `;`-separated (a European spreadsheet)
    df = pd.DataFrame({"temperatur": x, "druck": z * 1000 + 1013, "klasse": y})
    text = csv_text(df, sep=";", decimal=",")
    write("decimal_comma.csv", text.encode())

    # 4. thousands separators in quoted numbers
    df = pd.DataFrame({"price": [f"{v:,.2f}" for v in x * 100], "area": z, "sold": y})
    write("thousands.csv", csv_text(df, quoting=1).encode())

    # 5. latin-1 text
    cities = rng.choice(["Montréal", "Zürich", "São Paulo", "Köln"], ROWS)
    df = pd.DataFrame({"ville": cities, "x": x, "z": z, "classe": y})
    write("latin1.csv", csv_text(df).encode("latin-1"))

    # 6. ISO text timestamps, one per hour of a season, label depends on the hour of day
    start = pd.Timestamp("2024-03-01")
    stamps = start + pd.to_timedelta(np.sort(rng.integers(0, 90 * 86400, ROWS)), unit="s")
    busy = ((stamps.hour >= 8) & (stamps.hour < 18)).astype(int)
    df = pd.DataFrame({"order_time": stamps.strftime("%Y-%m-%d %H:%M:%S"), "basket": x, "late": busy})
    write("text_timestamps.csv", csv_text(df).encode())

    # 7. timezone-aware timestamps: Parquet with a time zone, and CSV text with UTC offsets
    aware = stamps.tz_localize("Europe/Berlin")
    df = pd.DataFrame({"recorded": aware, "load": x, "peak": busy})
    df.to_parquet(HERE / "tz_aware.parquet", index=False)
    offsets = [t.isoformat() for t in aware.tz_convert("America/New_York")]
    df = pd.DataFrame({"recorded": offsets, "load": x, "peak": busy})
    write("tz_offsets.csv", csv_text(df).encode())

    # 8. nullable integers (Parquet Int64 with <NA>), also in the target
    count = pd.array(np.round(x / 10).astype(int), dtype="Int64")
    count[rng.choice(ROWS, 12, replace=False)] = pd.NA
    target = pd.array(y, dtype="Int64")
    target[rng.choice(ROWS, 6, replace=False)] = pd.NA
    pd.DataFrame({"visits": count, "score": z, "churned": target}).to_parquet(
        HERE / "nullable_ints.parquet", index=False
    )

    # 9. booleans: a boolean feature with blanks and a boolean target
    member = (z > 0).astype(object)
    member[rng.choice(ROWS, 10, replace=False)] = None
    df = pd.DataFrame({"member": member, "spend": x, "returned": y.astype(bool)})
    write("booleans.csv", csv_text(df).encode())

    # 10. high-cardinality text (Zipf-like: a few frequent values, a long tail) and per-row-unique free text
    towns = [f"town_{i:03d}" for i in range(180)]
    weights = 1.0 / np.arange(1, 181) ** 1.1
    town = rng.choice(towns, ROWS * 2, p=weights / weights.sum())
    xx, zz, yy = signal(rng, ROWS * 2)
    yy = np.where(np.isin(town, towns[:3]), 1, yy)
    notes = [f"call {i}: customer said {w}" for i, w in enumerate(rng.choice(["hi", "ok", "no", "later"], ROWS * 2))]
    df = pd.DataFrame({"town": town, "notes": notes, "income": xx, "debt": zz, "default": yy})
    write("high_cardinality.csv", csv_text(df).encode())

    # 11. missing targets: 8 % of the rows unlabeled
    df = pd.DataFrame({"x": x, "z": z, "payment": np.where(y == 1, "late", "on_time").astype(object)})
    df.loc[rng.choice(ROWS, 20, replace=False), "payment"] = None
    write("missing_target.csv", csv_text(df).encode())

    # 12. a single-class target
    df = pd.DataFrame({"x": x, "z": z, "status": "active"})
    write("single_class.csv", csv_text(df).encode())

    # 13. a regression target with integer values (counts)
    counts = np.maximum(0, np.round(0.5 * x + 5 * z + rng.normal(0, 2, ROWS))).astype(int)
    df = pd.DataFrame({"traffic": x, "rain": z, "weekday": rng.choice(["mon", "tue", "wed"], ROWS), "bikes": counts})
    write("regression_int_target.csv", csv_text(df).encode())

    # 14. day-first dates, as a European spreadsheet writes them
    df = pd.DataFrame({"datum": stamps.strftime("%d/%m/%Y"), "menge": x, "retour": y})
    write("day_first_dates.csv", csv_text(df).encode())


if __name__ == "__main__":
    main()
