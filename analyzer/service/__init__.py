"""The HTTP service (``analyzer serve``): inspect, optimize and compare uploaded models over HTTP.

One job per module: :mod:`~analyzer.service.settings` (limits), :mod:`~analyzer.service.uploads`
(streamed, size-capped uploads), :mod:`~analyzer.service.safety` (external-data refusal on the
protobuf wire), :mod:`~analyzer.service.sandbox` (one task in a fresh, resource-limited worker
process), :mod:`~analyzer.service.worker` (the worker's entry point: the Python API on one task),
:mod:`~analyzer.service.jobs` (the latency-job queue), :mod:`~analyzer.service.downloads`
(optimized models kept for a while under unguessable tokens), :mod:`~analyzer.service.state` (what
the routes share), :mod:`~analyzer.service.routes` (one router per group of routes),
:mod:`~analyzer.service.app` (the FastAPI app factory :func:`create_app`).

Nothing here imports FastAPI at package import: ``analyzer.service.worker`` must start lean.
"""
