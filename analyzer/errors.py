"""Errors a user can act on.

Anything raised as :class:`AnalyzerError` is bad input or a bad request: the CLI prints its message
as one line and exits with code 2. Everything else is a bug and is reported as such.

A bad value for a named parameter is an :class:`OptionError`: the library names the Python parameter
(``rounds must be positive, got 0``) and each shell words the name its own way — the CLI as a flag
(``--rounds``), the HTTP service as a field (``rounds``) — through :meth:`OptionError.worded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


class AnalyzerError(Exception):
    """Bad input or a bad request; the message is one line a user can act on."""

    exit_code = 2


class ModelLoadError(AnalyzerError):
    """The file is not a readable ONNX model."""


class StrictModeError(AnalyzerError):
    """Strict analysis found an op without a counting rule or a shape it could not resolve."""


class OptionError(AnalyzerError):
    """A bad value for the Python API parameter ``option``; ``problem`` says what is wrong with it.

    ``str(error)`` is ``"{option} {problem}"``; a shell calls :meth:`worded` with its own spelling.
    """

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{option} {problem}")

    def worded(self, spell: Callable[[str], str] | Mapping[str, str]) -> str:
        """The message with the parameter spelled by ``spell`` (a function, or a mapping with fall-back to
        the parameter's own name)."""
        name = spell(self.option) if callable(spell) else spell.get(self.option, self.option)
        return f"{name} {self.problem}"


def first_line(error: BaseException) -> str:
    """An error as one line: onnx's and onnxruntime's messages run to many (C++ frames); keep the first."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# What a per-node rule (a cost, a receptive field) raises on attributes that contradict the shapes (a
# ``perm`` shorter than the rank, a malformed subgraph): bad input, said as a warning naming the node,
# never an internal error.
MALFORMED_ERRORS = (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError)
