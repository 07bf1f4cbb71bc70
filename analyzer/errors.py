"""Errors a user can act on.

Anything raised as :class:`AnalyzerError` is bad input or a bad request: the CLI prints its message
as one line and exits with code 2. Everything else is a bug and is reported as such.
"""


class AnalyzerError(Exception):
    """Bad input or a bad request; the message is one line a user can act on."""

    exit_code = 2


class ModelLoadError(AnalyzerError):
    """The file is not a readable ONNX model."""


class StrictModeError(AnalyzerError):
    """Strict analysis found an op without a counting rule or a shape it could not resolve."""
