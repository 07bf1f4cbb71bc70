"""Rules of the code base that a refactoring could silently break: the import direction between the
packages, and library errors that name Python parameters rather than one shell's spelling of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from analyzer.cli import describe_error, flag
from analyzer.errors import AnalyzerError, OptionError

ROOT = Path(__file__).resolve().parent.parent
SHELLS = ("analyzer/commands/", "analyzer/service/", "analyzer/cli.py")


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _is_shell(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return relative.startswith(SHELLS)


def _imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_analyzer_imports_passes_and_exporters_only_in_its_shells():
    offenders = []
    for path in _sources("analyzer"):
        if _is_shell(path):
            continue
        for module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            if module.split(".")[0] in ("passes", "exporters"):
                offenders.append(f"{path.relative_to(ROOT)}: import {module}")
    assert offenders == []


def _message_prefix(call: ast.Call) -> str | None:
    if not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
        return str(first.values[0].value)
    return None


def test_library_errors_do_not_name_command_line_flags():
    """A message such as "--rounds must be positive" belongs to the CLI; the service would show it too."""
    offenders = []
    for package in ("analyzer", "passes"):
        for path in _sources(package):
            if _is_shell(path):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    prefix = _message_prefix(node.exc)
                    if prefix is not None and prefix.lstrip().startswith("--"):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {prefix!r}")
    assert offenders == []


@pytest.mark.parametrize(
    "parameter, spelled",
    [("rounds", "--rounds"), ("max_iters", "--max-iters"), ("dims", "--dim"), ("input_shapes", "--input-shape"),
     ("time_budget", "--time"), ("passes", "--pass")],
)
def test_cli_spells_parameters_as_flags(parameter, spelled):
    assert flag(parameter) == spelled
    error = OptionError(parameter, "must be positive, got 0")
    assert str(error) == f"{parameter} must be positive, got 0"
    assert describe_error(error) == f"{spelled} must be positive, got 0"


def test_plain_errors_are_shown_as_they_are():
    assert describe_error(AnalyzerError("model.onnx is empty")) == "model.onnx is empty"


def test_option_error_spelled_by_a_mapping_falls_back_to_the_parameter():
    error = OptionError("dims", "batch=0: a dimension must be positive")
    assert error.worded({"dims": "dim"}) == "dim batch=0: a dimension must be positive"
    assert error.worded({}) == "dims batch=0: a dimension must be positive"
