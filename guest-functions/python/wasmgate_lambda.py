"""wasmgate's adapter for Python functions written as for AWS Lambda.

`wasmgate build` compiles a Lambda-style Python function into a component
with componentize-py. This module is the component's entry: it exports the
`handle` function of `wasmgate:function/handler` and calls the user's
`lambda_handler(event, context)` (or whichever handler was named), as
Lambda's Python runtime does:

- the event is the invocation's JSON, decoded; the result is encoded with
  `json.dumps` (a value it cannot encode fails as `Runtime.MarshalError`);
- `context` has Lambda's names: `aws_request_id`, `function_name`,
  `function_version`, `invoked_function_arn`, `memory_limit_in_mb`,
  `log_group_name`, `log_stream_name` and `get_remaining_time_in_millis()`;
- an exception becomes the error `errorType` = its class name,
  `errorMessage` = `str(e)`, with `stackTrace` formatted as Lambda's Python
  runtime formats it, and the `[ERROR]` lines Lambda logs;
- `print` writes to the invocation's log.

The handler's module is imported when the component is built (the snapshot
componentize-py takes holds it), so its top-level code runs once, at build
time, and every instance starts from its result.

`wasmgate_lambda.http` sends outbound HTTP requests through
`wasi:http/outgoing-handler`, to the hosts the function's
`allowed_outbound_hosts` lists.
"""

import importlib
import json
import linecache
import os
import sys
import time
import traceback

import wit_world
from componentize_py_types import Err
from wit_world.imports import wasmgate_function_types as types
from wit_world.imports import report

from wasmgate_handler_name import HANDLER_MODULE, HANDLER_FUNCTION

# Lambda's account id as wasmgate's proxy events give it.
_ACCOUNT = "000000000000"
_REGION = "local"


def _load_handler():
    try:
        module = importlib.import_module(HANDLER_MODULE)
    except ImportError as e:
        raise SystemExit(
            f"Runtime.ImportModuleError: Unable to import module '{HANDLER_MODULE}': {e}"
        )
    handler = getattr(module, HANDLER_FUNCTION, None)
    if handler is None:
        raise SystemExit(
            f"Runtime.HandlerNotFound: Handler '{HANDLER_FUNCTION}' missing on module '{HANDLER_MODULE}'"
        )
    if not callable(handler):
        raise SystemExit(
            f"Runtime.HandlerNotFound: '{HANDLER_MODULE}.{HANDLER_FUNCTION}' is not a function"
        )
    # The directory the handler's module was found in (Lambda's task root).
    relative = HANDLER_MODULE.replace(".", "/") + ".py"
    root = module.__file__[: -len(relative)] if module.__file__.endswith(relative) else ""
    return handler, root


def _keep_sources(root):
    """Reads the function's sources into linecache now, at build time, so
    that tracebacks show their lines: the files are not there at run time.
    (No mtime: linecache keeps such entries without looking at the file.)"""
    for directory, _, files in os.walk(root or "."):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        lines = f.readlines()
                except (OSError, UnicodeDecodeError):
                    continue
                linecache.cache[path] = (sum(map(len, lines)), None, lines, path)


_handler, TASK_ROOT = _load_handler()
_keep_sources(TASK_ROOT)


class LambdaContext:
    """What Lambda's Python runtime passes as `context`."""

    def __init__(self, ctx):
        env = os.environ
        self.aws_request_id = ctx.request_id
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = (
            f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:{ctx.invoked_qualifier}"
        )
        self.identity = None
        self.client_context = None
        self._deadline_ms = ctx.deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


def _stack_trace(error):
    """The frames of `error`'s traceback below the adapter, one string per
    frame as `traceback.format_list` writes them (Lambda's `stackTrace`),
    with the function's files under Lambda's `/var/task`."""
    frames = traceback.extract_tb(error.__traceback__)
    here = __file__
    frames = [f for f in frames if f.filename != here]
    for frame in frames:
        _ = frame.line  # looked up by the file's own name, before renaming it
        if TASK_ROOT and frame.filename.startswith(TASK_ROOT):
            frame.filename = "/var/task/" + frame.filename[len(TASK_ROOT) :]
    return traceback.format_list(frames)


def _fail(error_type, message, trace):
    """Logs the failure as Lambda's runtime does and returns the error."""
    lines = [f"[ERROR] {error_type}: {message}"]
    if trace:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in trace)
    print("\n".join(lines), file=sys.stderr, flush=True)
    report.stack_trace(trace)
    return Err(types.FunctionError(error_type=error_type, error_message=message))


class WitWorld(wit_world.WitWorld):
    def handle(self, event: str, ctx: types.Context) -> str:
        try:
            result = _handler(json.loads(event), LambdaContext(ctx))
        except Exception as e:
            raise _fail(type(e).__name__, str(e), _stack_trace(e))
        finally:
            sys.stdout.flush()
        try:
            return json.dumps(result)
        except (TypeError, ValueError) as e:
            raise _fail("Runtime.MarshalError", f"Unable to marshal response: {e}", [])
