"""Where a command's report goes: stdout, or a file written atomically (with a note on stderr)."""

from __future__ import annotations

import sys


def emit(text: str, path: str | None, what: str, *, quiet: bool = False, inputs: tuple = ()) -> None:
    """``text`` to ``path`` atomically (saying so on stderr unless ``quiet``), or to stdout when no path.
    ``inputs``: the command's input models, whose files ``path`` may not be (checked again here; commands
    check first with :func:`analyzer.model_files.refuse_overwrite`, before any work)."""
    if path is None:
        sys.stdout.write(text)
        return
    from analyzer.atomic import write_text_atomic
    from analyzer.model_files import refuse_overwrite

    refuse_overwrite(path, list(inputs))
    write_text_atomic(path, text)
    if not quiet:
        print(f"wrote {what} to {path}", file=sys.stderr)
