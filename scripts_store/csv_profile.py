"""Profile CSV files: size, column types, missing values, numeric ranges, frequent values.

Shipped with python-mcp (read-only; save a copy under another name to change it).

    run_script csv_profile.py                 every *.csv file in the working directory
    run_script csv_profile.py args=[PATH...]  these files (args become sys.argv[1:])

In a persistent session the functions stay defined afterwards:
    print(profile_csv('sales.csv'))           the report as text
    profile_frame(df)                          the same for a DataFrame you already have
"""
import glob
import sys

import pandas as pd
from tabulate import tabulate


def _number(value):
    if pd.isna(value):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _column_row(name, series):
    row = [name, str(series.dtype), int(series.isna().sum()), int(series.nunique(dropna=True))]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        row += [_number(series.min()), _number(series.mean()), _number(series.max()), ""]
    else:
        top = series.dropna().astype(str).value_counts().head(3)
        row += ["", "", "", ", ".join(f"{k[:30]} ({v})" for k, v in top.items())]
    return row


def profile_frame(df, title="data", max_columns=60):
    """A text report on a DataFrame: one line per column."""
    rows = [_column_row(str(c), df[c]) for c in df.columns[:max_columns]]
    lines = [f"{title}: {len(df)} rows x {len(df.columns)} columns, "
             f"{int(df.isna().sum().sum())} missing values, {int(df.duplicated().sum())} duplicate rows"]
    lines.append(tabulate(rows, headers=["column", "type", "missing", "distinct", "min", "mean", "max",
                                         "most frequent"]))
    if len(df.columns) > max_columns:
        lines.append(f"... and {len(df.columns) - max_columns} more columns")
    return "\n".join(lines)


def profile_csv(path, **read_csv_options):
    """Reads `path` with pandas.read_csv(**read_csv_options) and returns profile_frame's report."""
    return profile_frame(pd.read_csv(path, **read_csv_options), title=str(path))


def main(argv):
    paths = list(argv) or sorted(glob.glob("*.csv"))
    if not paths:
        print("csv_profile: no CSV file given and none in the working directory.\n" + __doc__)
        return
    for path in paths:
        print(profile_csv(path))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
