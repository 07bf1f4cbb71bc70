"""Renderers: each turns the same :class:`~analyzer.report.Report` into one format."""

from __future__ import annotations

import importlib

from analyzer.errors import AnalyzerError

FORMATS = {
    "table": "analyzer.render.table",
    "json": "analyzer.render.json_format",
    "csv": "analyzer.render.csv_format",
    "markdown": "analyzer.render.markdown",
    "html": "analyzer.render.html",
}


def render(report, fmt: str, **options) -> str:
    """The report as text in ``fmt`` (table, json, csv, markdown, html)."""
    if fmt not in FORMATS:
        raise AnalyzerError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[fmt]).render(report, **options)
