"""Latency with onnxruntime: sessions and providers (``runtime``), one model timed (``bench``), two models
timed against each other (``compare``), per-node time joined with the analyzer's counts (``profile``),
the statistics they share (``stats``), output agreement (``numerics``), the machine a figure was measured
on (``machine``), and every option with its default (``options``, which the CLI and the service read).

Nothing here is imported by ``analyzer.inspect``; onnxruntime is imported only when a session is made,
and ``options`` imports neither numpy nor onnxruntime.
"""
