"""Outbound HTTP for Python functions on wasmgate.

    import wasmgate_http

    response = wasmgate_http.request("GET", "https://api.example.com/items")
    response.status, response.headers, response.body, response.text(), response.json()

A request goes through `wasi:http/outgoing-handler`: wasmgate sends it if the
function's `allowed_outbound_hosts` lists its scheme, host and port, and
bounds it by the invocation's deadline and the server's response-size limit.
A refused or failed request raises `HttpError`, whose `code` names the
`wasi:http` error (`HttpRequestDenied` for a host not listed).
"""

import json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import wasi_http_types as http
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import StreamError_Closed

_METHODS = {
    "GET": http.Method_Get,
    "HEAD": http.Method_Head,
    "POST": http.Method_Post,
    "PUT": http.Method_Put,
    "DELETE": http.Method_Delete,
    "CONNECT": http.Method_Connect,
    "OPTIONS": http.Method_Options,
    "TRACE": http.Method_Trace,
    "PATCH": http.Method_Patch,
}

# The most bytes one write of the request body hands to the host.
_CHUNK = 4096


class HttpError(Exception):
    """An outbound request that failed: `code` is the `wasi:http` error
    code's name (`HttpRequestDenied`, `ConnectionRefused`, …)."""

    def __init__(self, code, detail=None):
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self, encoding="utf-8"):
        return self.body.decode(encoding)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response [{self.status}]>"


def _error(value):
    name = type(value).__name__
    if name.startswith("ErrorCode_"):
        name = name[len("ErrorCode_") :]
    detail = getattr(value, "value", None)
    return HttpError(name, None if detail is None else str(detail))


def request(method, url, headers=None, body=None):
    """Sends one request and returns its `Response`, its body read whole."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise HttpError("HttpRequestUriInvalid", f"{url!r} is not an http or https URL")
    method = method.upper()
    fields = http.Fields.from_list(
        [(name.lower(), str(value).encode()) for name, value in (headers or {}).items()]
    )
    outgoing = http.OutgoingRequest(fields)
    outgoing.set_method(_METHODS[method]() if method in _METHODS else http.Method_Other(method))
    outgoing.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    if isinstance(body, str):
        body = body.encode()
    outgoing_body = outgoing.body()
    # The request is sent first and its body streamed after: the host takes
    # the body as it goes, a chunk at a time.
    try:
        future = outgoing_handler.handle(outgoing, None)
    except Err as e:
        raise _error(e.value) from None
    if body:
        stream = outgoing_body.write()
        try:
            for start in range(0, len(body), _CHUNK):
                stream.blocking_write_and_flush(body[start : start + _CHUNK])
        finally:
            stream.__exit__(None, None, None)
    http.OutgoingBody.finish(outgoing_body, None)
    while (result := future.get()) is None:
        future.subscribe().block()
    # Ok(Ok(response)), Ok(Err(error code)), or Err(()) if taken twice.
    if isinstance(result, Err):
        raise HttpError("InternalError", "the response was already taken")
    if isinstance(result.value, Err):
        raise _error(result.value.value)
    response = result.value.value
    status = response.status()
    response_headers = {}
    for name, value in response.headers().entries():
        response_headers[name] = value.decode("latin-1")
    incoming = response.consume()
    stream = incoming.stream()
    chunks = []
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(65536))
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                # The host ended the body with an error (e.g. over the size limit).
                raise HttpError("HttpResponseIncomplete", _body_error(e.value)) from None
    finally:
        stream.__exit__(None, None, None)
    return Response(status, response_headers, b"".join(chunks))


def _body_error(value):
    error = getattr(value, "value", None)
    if error is not None:
        try:
            code = http.http_error_code(error)
        except Exception:
            code = None
        if code is not None:
            return _error(code).args[0]
        try:
            return error.to_debug_string()
        except Exception:
            pass
    return None


def get(url, headers=None):
    return request("GET", url, headers)


def post(url, body=None, headers=None):
    return request("POST", url, headers, body)
