"""A finished run's files and what is read from them.

Modules (imported on their own: the HTML page needs matplotlib, evaluating
does not):
    files: every workdir file name, the atomic writer, the results writer
        (`write_results`: results.json, per_class.csv, TensorBoard scalars)
        and one reader per file (`read_results`, `read_per_class`).
    predictions: the per-example predictions files: their format, the
        `Writer` the loop streams them with, and `load(workdir)`.
    compare: the paired comparison of two runs (`tf-topk compare`).
    report: the HTML page report.html (`tf-topk report`).
    plots: the page's images (matplotlib plots, thumbnails) as bytes.
    tallies: what the page counts from predictions and per-class rows.
    summary: `format_table`, the table a run prints.
"""
