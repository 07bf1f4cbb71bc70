"""What every router uses: the security headers, the error responses and the upload routes' OpenAPI text."""

from __future__ import annotations

from typing import Any

from analyzer.service import options as opts

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["status", "code", "message"]}},
}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the error body's schema."""
    return {status: {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for status in statuses}


def upload_openapi(specs: list[opts.Option], files: dict[str, str], *, raw: bool) -> dict[str, Any]:
    """The ``openapi_extra`` of an upload route: its options (query or form) and file fields; ``raw``: a
    model may also come as an ``application/octet-stream`` body (then ``filename`` names it)."""
    parameters = [{"name": o.name, "in": "query", "required": False, "description": o.help, "schema": o.schema(),
                   **({"style": "form", "explode": True} if o.repeated else {})} for o in specs]
    properties: dict[str, Any] = {name: {"type": "string", "format": "binary", "description": text}
                                  for name, text in files.items()}
    properties.update({o.name: {**o.schema(), "description": o.help} for o in specs})
    content: dict[str, Any] = {"multipart/form-data": {"schema": {"type": "object", "properties": properties,
                                                                  "required": list(files)}}}
    if raw:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
        parameters.append({"name": "filename", "in": "query", "required": False, "schema": {"type": "string"},
                           "description": "name shown in the report for an application/octet-stream body"})
    return {"parameters": parameters, "requestBody": {"required": True, "content": content,
            "description": "options may be given as query parameters or as form fields"}}

