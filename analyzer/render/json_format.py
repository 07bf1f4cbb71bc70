"""JSON: the contract for scripts and CI (schema ``analyzer.report/1``, see README.md)."""

from __future__ import annotations

import json


def render(report, **_: object) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"
