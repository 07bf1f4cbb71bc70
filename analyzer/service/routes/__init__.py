"""The service's routes, one :class:`fastapi.APIRouter` per group; :func:`analyzer.service.app.create_app`
includes them in this order (the OpenAPI schema lists them so):

- :mod:`.pages`: ``GET /``, the upload page
- :mod:`.meta`: ``GET /v1/health``, ``GET /v1/limits``
- :mod:`.models`: ``POST /v1/inspect``, ``POST /v1/optimize`` (one upload, one worker, answered at once)
- :mod:`.download`: ``GET /v1/models/{token}``, an optimized model
- :mod:`.jobs`: ``POST /v1/compare`` (a queued latency job), ``GET`` / ``DELETE /v1/jobs/{id}``

Each route reaches the app's shared state through :data:`analyzer.service.state.ServiceDep`.
"""
