"""Meridian's Python runtime client: runs a handler behind the Lambda Runtime API.

Standard library only. Used for python3.x functions that do not ship awslambdaric.
"""
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)
PREFIX = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(HOST, int(PORT))


def call(method, path, body=None, headers=None):
    global conn
    for attempt in (0, 1):
        try:
            conn.request(method, PREFIX + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp, resp.read()
        except (http.client.HTTPException, ConnectionError):
            if attempt:
                raise
            conn = http.client.HTTPConnection(HOST, int(PORT))


def error_body(exc, error_type=None):
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__))[1:],
    }


def post_error(path, body):
    call("POST", path, json.dumps(body).encode(),
         {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": body["errorType"]})


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self._deadline = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        cc = headers.get("Lambda-Runtime-Client-Context")
        self.client_context = json.loads(cc) if cc else None
        ci = headers.get("Lambda-Runtime-Cognito-Identity")
        self.identity = json.loads(ci) if ci else None

    def get_remaining_time_in_millis(self):
        return max(self._deadline - int(time.time() * 1000), 0)


def load_handler():
    spec = os.environ["_HANDLER"]
    module_name, _, func_name = spec.rpartition(".")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - reported to Lambda as an init error
        return None, error_body(Exception(f"Unable to import module '{module_name}': {exc}"), "Runtime.ImportModuleError")
    handler = getattr(module, func_name, None)
    if handler is None:
        return None, error_body(Exception(f"Handler '{func_name}' missing on module '{module_name}'"), "Runtime.HandlerNotFound")
    return handler, None


def main():
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "."))
    handler, err = load_handler()
    if err:
        print(f"[ERROR] {err['errorType']}: {err['errorMessage']}", file=sys.stderr, flush=True)
        post_error("/init/error", err)
        sys.exit(1)
    while True:
        resp, body = call("GET", "/invocation/next")
        headers = resp.headers  # case-insensitive, as HTTP header names are
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        if "Lambda-Runtime-Trace-Id" in headers:
            os.environ["_X_AMZN_TRACE_ID"] = headers["Lambda-Runtime-Trace-Id"]
        try:
            event = json.loads(body) if body else None
            result = handler(event, Context(headers))
            out = json.dumps(result).encode()
        except Exception as exc:  # noqa: BLE001 - reported to Lambda as a function error
            err = error_body(exc)
            err["requestId"] = request_id
            print(f"[ERROR] {err['errorType']}: {err['errorMessage']}", file=sys.stderr, flush=True)
            post_error(f"/invocation/{request_id}/error", err)
            continue
        call("POST", f"/invocation/{request_id}/response", out, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
