"""Plot columns of a CSV file to a PNG image (matplotlib, no display needed).

Shipped with python-mcp (read-only; save a copy under another name to change it).

    run_script plot_csv.py                      the first *.csv in the working directory (a demo
                                                curve when there is none) -> plot.png there
    run_script plot_csv.py args=[CSV, X, Y..., "--out", "chart.png"]
                                                X: the x column ("" or "index" for the row number);
                                                Y: columns to draw (default: every numeric one)

In a persistent session afterwards:
    plot_csv('sales.csv', x='month', y=['revenue'], out='revenue.png')   -> the PNG's absolute path
    plot_frame(df, ...)                                                   the same for a DataFrame
"""
import glob
import os
import sys

import pandas as pd
# Figure objects, not pyplot: no global state, no GUI backend, safe in concurrent sessions.
from matplotlib.figure import Figure


def plot_frame(df, x=None, y=None, out="plot.png", title=None, kind="line"):
    """Draws columns `y` (default: the numeric ones) against column `x` (default: the row
    number) and saves a PNG at `out`. Returns its absolute path."""
    if isinstance(y, str):
        y = [y]
    xs = df.index if x in (None, "", "index") else df[x]
    ys = y or [c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c])]
    if not ys:
        raise ValueError("nothing to plot: no numeric column (name the y columns)")
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    for column in ys:
        if kind == "bar":
            ax.bar([str(v) for v in xs], df[column], label=str(column))
        else:
            ax.plot(xs, df[column], label=str(column))
    ax.set_xlabel("row" if x in (None, "", "index") else str(x))
    ax.set_title(title or ", ".join(map(str, ys)))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, format="png")
    return out


def plot_csv(path, x=None, y=None, out="plot.png", **options):
    """Reads `path` with pandas and hands it to plot_frame."""
    return plot_frame(pd.read_csv(path), x=x, y=y, out=out, title=options.pop("title", os.path.basename(path)),
                      **options)


def _demo(out):
    import numpy as np
    t = np.linspace(0, 4 * np.pi, 200)
    return plot_frame(pd.DataFrame({"t": t, "sin": np.sin(t), "cos": np.cos(t)}), x="t", out=out,
                      title="demo (no CSV given)")


def main(argv):
    args = list(argv)
    out = "plot.png"
    if "--out" in args:
        i = args.index("--out")
        if i + 1 >= len(args):
            raise SystemExit("plot_csv: --out needs a file name")
        out = args[i + 1]
        del args[i:i + 2]
    if not args:
        found = sorted(glob.glob("*.csv"))
        path = _demo(out) if not found else plot_csv(found[0], out=out)
    else:
        path = plot_csv(args[0], x=args[1] if len(args) > 1 else None, y=args[2:] or None, out=out)
    print(f"saved {path} ({os.path.getsize(path)} bytes)")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
