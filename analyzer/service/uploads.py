"""Streamed uploads: the request body goes straight to files in a scratch directory, with caps.

Accepted bodies: ``multipart/form-data`` (file fields by name, other fields are options) or, for
routes taking one model, ``application/octet-stream`` (the model itself; options in the query
string). Each file is capped at ``Settings.max_upload_bytes`` while it streams (413 as soon as it
goes over; nothing larger is ever written), text fields are capped in number and size, an empty file
is a 400. File names are reduced to a safe base name: a client's path (``../../x.onnx``,
``C:\\models\\x.onnx``) is never used as one. A client that goes away mid-upload gets (nobody reads
it) a 400 ``client_disconnected``; a disk that cannot take the upload is a 507 ``insufficient_storage``.
"""

from __future__ import annotations

import asyncio
import errno
import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import ClientDisconnect

from analyzer.service.errors import ServiceError
from analyzer.service.settings import Settings
from analyzer.units import nbytes

FORM_OVERHEAD_BYTES = 1 << 20  # room for boundaries, part headers and option fields
DRAIN_LIMIT_BYTES = 64 << 20  # a refused body is read (and dropped) up to this much so the client sees the 413
DEFAULT_NAME = "model.onnx"
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass
class UploadedFile:
    field: str
    label: str  # safe base name, shown in reports instead of any server path
    path: Path
    size: int = 0


@dataclass
class Upload:
    files: dict[str, UploadedFile] = field(default_factory=dict)
    fields: dict[str, list[str]] = field(default_factory=dict)


def safe_name(filename: str | None) -> str:
    """The base name of a client-supplied file name, restricted to ``[A-Za-z0-9._+-]`` (others become ``_``)."""
    base = re.split(r"[/\\]", filename or "")[-1]
    base = UNSAFE.sub("_", base).lstrip(".")[-100:]
    return base or DEFAULT_NAME


class _TooLarge(Exception):
    pass


class _BadForm(Exception):
    pass


class _Receiver:
    """python-multipart callbacks writing file parts to disk as they arrive."""

    def __init__(self, dest: dict[str, Path], settings: Settings, charset: str = "utf-8") -> None:
        self.dest = dest  # file field -> directory its file goes to
        self.settings = settings
        self.upload = Upload()
        self.charset = charset
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._current: UploadedFile | None = None
        self._handle = None
        self._field_name: str | None = None
        self._field_data = bytearray()
        self._field_count = 0

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._current, self._field_name = None, None
        self._field_data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise _BadForm("a multipart part has no name in its Content-Disposition header")
        name = options[b"name"].decode(self.charset, "replace")
        if b"filename" in options:
            if name not in self.dest:
                expected = ", ".join(repr(f) for f in self.dest)
                raise _BadForm(f"unexpected file field {name!r}; this route takes {expected}")
            if name in self.upload.files:
                raise _BadForm(f"file field {name!r} given twice")
            label = safe_name(options[b"filename"].decode(self.charset, "replace"))
            directory = self.dest[name]
            directory.mkdir(parents=True, exist_ok=True)
            self._current = UploadedFile(name, label, directory / label)
            self.upload.files[name] = self._current
            self._handle = open(self._current.path, "wb")
        else:
            self._field_count += 1
            if self._field_count > self.settings.max_form_fields:
                raise _BadForm(f"too many form fields (at most {self.settings.max_form_fields})")
            if name in self.dest:
                raise _BadForm(f"field {name!r} must be a file upload (a multipart part with a filename)")
            self._field_name = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.size += end - start
            if self._current.size > self.settings.max_upload_bytes:
                raise _TooLarge(self._current.field)
            self._handle.write(data[start:end])
        elif self._field_name is not None:
            self._field_data += data[start:end]
            if len(self._field_data) > self.settings.max_field_bytes:
                raise _BadForm(f"form field {self._field_name!r} is over {self.settings.max_field_bytes} bytes")

    def on_part_end(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._field_name is not None:
            value = self._field_data.decode(self.charset, "replace")
            self.upload.fields.setdefault(self._field_name, []).append(value)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def too_large(settings: Settings, what: str = "the model") -> ServiceError:
    return ServiceError(413, "upload_too_large",
                        f"{what} is over this server's upload limit of {nbytes(settings.max_upload_bytes)} per model")


def disconnected() -> ServiceError:
    return ServiceError(400, "client_disconnected", "the client went away before the upload was complete")


def storage_error(error: OSError) -> ServiceError:
    """A disk that cannot take the upload: 507; any other OSError is a server fault, raised as it is."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        raise error
    return ServiceError(507, "insufficient_storage",
                        f"the server has no room to store the upload ({error.strerror}); try again later")


def stalled(settings: Settings) -> ServiceError:
    return ServiceError(408, "upload_timeout", f"the upload made no progress for {settings.upload_idle_timeout_s:g} s; "
                                               "the request was dropped")


async def chunks(request, settings: Settings):
    """The body's chunks; a body that sends nothing for ``upload_idle_timeout_s`` is a 408 (its upload slot
    is freed by the caller's context), so that stalled clients cannot hold the upload slots."""
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), settings.upload_idle_timeout_s)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise stalled(settings) from None
        yield chunk


async def _drain(request, budget: int, settings: Settings) -> None:
    """Read and drop what is left of a refused body (up to ``budget`` bytes) so the client reads our answer."""
    try:
        async for chunk in chunks(request, settings):
            budget -= len(chunk)
            if budget < 0:
                return
    except Exception:  # noqa: BLE001 - the client went away; nothing to answer
        return


async def receive(request, dest: dict[str, Path], settings: Settings, *, raw_field: str | None = None) -> Upload:
    """Stream the request body into files under ``dest`` (file field -> directory); raise :class:`ServiceError`.

    ``raw_field``: the file field an ``application/octet-stream`` body fills (its name from the
    ``filename`` query parameter); None: multipart only.
    """
    from python_multipart.multipart import parse_options_header

    content_type, params = parse_options_header(request.headers.get("content-type"))
    allowed = len(dest) * settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    await _refuse_announced_length(request, allowed, settings)
    if content_type == b"application/octet-stream" and raw_field is not None:
        return await _receive_raw(request, dest, raw_field, settings)
    if content_type != b"multipart/form-data":
        raw = " or application/octet-stream (the model as the body)" if raw_field else ""
        fields = ", ".join(repr(f) for f in dest)
        raise ServiceError(415, "unsupported_media_type",
                           f"send the upload as multipart/form-data with file field(s) {fields}{raw}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ServiceError(400, "bad_form", "multipart/form-data without a boundary")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    receiver = _Receiver(dest, settings, charset if charset.lower() in ("utf-8", "latin-1", "ascii") else "utf-8")
    await _receive_multipart(request, receiver, boundary, allowed, settings)
    _check_files(receiver.upload, dest)
    return receiver.upload


async def _refuse_announced_length(request, allowed: int, settings: Settings) -> None:
    """A Content-Length over ``allowed``: 413 before a byte is stored (the body drained if not too much)."""
    length_header = request.headers.get("content-length")
    try:
        length = int(length_header) if length_header is not None else None
    except ValueError:
        raise ServiceError(400, "bad_request", "Content-Length is not a number") from None
    if length is not None and length > allowed:
        if length - allowed <= DRAIN_LIMIT_BYTES:
            await _drain(request, length, settings)
        raise too_large(settings, f"the request body ({length} bytes)")


async def _receive_multipart(request, receiver: _Receiver, boundary: bytes, allowed: int, settings: Settings) -> None:
    """Feed the body to python-multipart, ``receiver`` writing the parts; any failure as a :class:`ServiceError`."""
    from python_multipart.multipart import MultipartParser

    parser = MultipartParser(boundary, {
        "on_part_begin": receiver.on_part_begin,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
    })
    received = 0
    try:
        async for chunk in chunks(request, settings):
            received += len(chunk)
            if received > allowed:
                raise _TooLarge("the request body")
            parser.write(chunk)
        parser.finalize()
    except _TooLarge as e:
        receiver.close()
        await _drain(request, DRAIN_LIMIT_BYTES, settings)
        item = receiver.upload.files.get(e.args[0])
        what = f"the upload {item.field!r} ({item.label})" if item else str(e.args[0])
        raise too_large(settings, what) from None
    except _BadForm as e:
        receiver.close()
        await _drain(request, DRAIN_LIMIT_BYTES, settings)
        raise ServiceError(400, "bad_form", str(e)) from None
    except ClientDisconnect:
        raise disconnected() from None
    except OSError as e:  # writing the upload: the disk is full
        receiver.close()
        await _drain(request, DRAIN_LIMIT_BYTES, settings)
        raise storage_error(e) from None
    except ServiceError:  # a stalled body (408)
        receiver.close()
        raise
    except Exception as e:  # python-multipart's parse errors
        receiver.close()
        raise ServiceError(400, "bad_form", f"malformed multipart/form-data body ({type(e).__name__}: {e})") from None
    finally:
        receiver.close()


async def _receive_raw(request, dest: dict[str, Path], field_name: str, settings: Settings) -> Upload:
    label = safe_name(request.query_params.get("filename"))
    directory = dest[field_name]
    directory.mkdir(parents=True, exist_ok=True)
    item = UploadedFile(field_name, label, directory / label)
    try:
        with open(item.path, "wb") as out:
            async for chunk in chunks(request, settings):
                item.size += len(chunk)
                if item.size > settings.max_upload_bytes:
                    out.close()
                    await _drain(request, DRAIN_LIMIT_BYTES, settings)
                    raise too_large(settings)
                out.write(chunk)
    except ClientDisconnect:
        raise disconnected() from None
    except OSError as e:
        await _drain(request, DRAIN_LIMIT_BYTES, settings)
        raise storage_error(e) from None
    upload = Upload(files={field_name: item})
    _check_files(upload, dest)
    return upload


def _check_files(upload: Upload, dest: dict[str, Path]) -> None:
    for name in dest:
        item = upload.files.get(name)
        if item is None:
            raise ServiceError(400, "missing_file", f"missing file field {name!r} (an .onnx file upload)")
        if item.size == 0:
            raise ServiceError(400, "empty_upload", f"the upload {name!r} ({item.label}) is empty (0 bytes)")
