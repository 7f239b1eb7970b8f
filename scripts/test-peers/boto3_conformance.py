"""Drives a running `meridian serve` with boto3, as an application would drive AWS Lambda.

Usage: boto3_conformance.py ENDPOINT
Expects (created by the calling test): in us-east-1 and eu-west-1 a python function `echo`
(handler.echo) with version 1 and alias `live`; in us-east-1 `fail` (handler.fail), `sleepy`
(handler.sleep, timeout 1 s), `ric` (run by awslambdaric), `blocked` (reserved concurrency 0).
Prints one line per check and exits non-zero on the first failure.
"""
import base64
import io
import json
import sys
import zipfile

import boto3
import botocore.config

ENDPOINT = sys.argv[1]
CONFIG = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30)


def client(region):
    return boto3.client(
        "lambda",
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=CONFIG,
    )


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok   {name}", flush=True)


def payload(resp):
    return json.loads(resp["Payload"].read())


for region in ("us-east-1", "eu-west-1"):
    c = client(region)
    r = c.invoke(FunctionName="echo", Payload=json.dumps({"region": region}))
    body = payload(r)
    check(f"{region}: invoke echo", r["StatusCode"] == 200 and body["event"] == {"region": region}, body)
    check(f"{region}: the function runs in the signed region", body["env"]["AWS_REGION"] == region, body["env"])
    check(f"{region}: executed version reported", r["ExecutedVersion"] == "$LATEST", r)

    r = c.invoke(FunctionName="echo", Qualifier="live", LogType="Tail", Payload=b"{}")
    log = base64.b64decode(r["LogResult"]).decode()
    check(f"{region}: alias runs version 1", r["ExecutedVersion"] == "1", r)
    check(f"{region}: tail has the invocation's log", "START RequestId:" in log and "REPORT RequestId:" in log, log)
    arn = payload(r)["arn"]
    check(f"{region}: invoked ARN has region and alias", arn == f"arn:aws:lambda:{region}:123456789012:function:echo:live", arn)

    fns = [f["FunctionName"] for f in c.list_functions()["Functions"]]
    check(f"{region}: list_functions", "echo" in fns, fns)
    cfg = c.get_function(FunctionName="echo")["Configuration"]
    check(f"{region}: get_function", cfg["Runtime"] == "python3.11" and cfg["Handler"] == "handler.echo", cfg)
    versions = [v["Version"] for v in c.list_versions_by_function(FunctionName="echo")["Versions"]]
    check(f"{region}: list_versions_by_function", versions == ["$LATEST", "1"], versions)
    alias = c.get_alias(FunctionName="echo", Name="live")
    check(f"{region}: get_alias", alias["FunctionVersion"] == "1", alias)
    names = [a["Name"] for a in c.list_aliases(FunctionName="echo")["Aliases"]]
    check(f"{region}: list_aliases", names == ["live"], names)

c = client("us-east-1")
r = c.invoke(FunctionName="fail", Payload=json.dumps({"why": "testing"}))
err = payload(r)
check("function error header", r.get("FunctionError") == "Unhandled", r)
check("function error body", err["errorType"] == "ValueError" and err["errorMessage"] == "boom: testing", err)

r = c.invoke(FunctionName="sleepy", Payload=json.dumps({"seconds": 10}))
err = payload(r)
check("timeout", r.get("FunctionError") == "Unhandled" and err["errorMessage"].endswith("Task timed out after 1.00 seconds"), err)

r = c.invoke(FunctionName="ric", Payload=json.dumps({"via": "awslambdaric"}), LogType="Tail")
body = payload(r)
check("awslambdaric handler", r.get("FunctionError") is None and body["event"] == {"via": "awslambdaric"}, body)
check("awslambdaric context", body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ric", body)
r = c.invoke(FunctionName="ric", Payload=json.dumps({"raise": "from ric"}))
err = payload(r)
check("awslambdaric error", r.get("FunctionError") == "Unhandled" and err["errorMessage"] == "from ric", err)

try:
    c.invoke(FunctionName="does-not-exist", Payload=b"{}")
    check("unknown function raises", False)
except c.exceptions.ResourceNotFoundException as e:
    check("unknown function raises ResourceNotFoundException", e.response["ResponseMetadata"]["HTTPStatusCode"] == 404)

try:
    c.invoke(FunctionName="echo", Payload=b"{not json")
    check("bad JSON raises", False)
except c.exceptions.InvalidRequestContentException as e:
    check("bad JSON raises InvalidRequestContentException", e.response["ResponseMetadata"]["HTTPStatusCode"] == 400)

try:
    c.invoke(FunctionName="blocked", Payload=b"{}")
    check("throttle raises", False)
except c.exceptions.TooManyRequestsException as e:
    check("throttle raises TooManyRequestsException", e.response["ResponseMetadata"]["HTTPStatusCode"] == 429)

try:
    c.invoke(FunctionName="echo", Payload=json.dumps("x" * (6 * 1024 * 1024)))
    check("oversized payload raises", False)
except c.exceptions.RequestTooLargeException as e:
    check("oversized payload raises RequestTooLargeException", e.response["ResponseMetadata"]["HTTPStatusCode"] == 413)

r = c.invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{}")
check("DryRun", r["StatusCode"] == 204, r)
r = c.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")
check("Event", r["StatusCode"] == 202, r)

v2 = c.publish_version(FunctionName="echo", Description="same code")
check("publish_version without changes returns the newest version", v2["Version"] == "1", v2)
try:
    c.get_alias(FunctionName="echo", Name="nope")
    check("unknown alias raises", False)
except c.exceptions.ResourceNotFoundException:
    check("unknown alias raises ResourceNotFoundException", True)


def make_zip(source):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", source)
    return buf.getvalue()


# The write side of the management API, in a third region.
c = client("ap-southeast-2")
created = c.create_function(
    FunctionName="made-by-boto3",
    Runtime="python3.11",
    Role="arn:aws:iam::123456789012:role/local",
    Handler="app.handler",
    Code={"ZipFile": make_zip("import os\ndef handler(e, c):\n    return {'v': 1, 'e': e, 'k': os.environ['K']}\n")},
    Timeout=5,
    Environment={"Variables": {"K": "one"}},
)
check("create_function", created["FunctionArn"] == "arn:aws:lambda:ap-southeast-2:123456789012:function:made-by-boto3", created)
body = payload(c.invoke(FunctionName="made-by-boto3", Payload=b'{"x": 1}'))
check("invoke a function created through the API", body == {"v": 1, "e": {"x": 1}, "k": "one"}, body)
v = c.update_function_code(
    FunctionName="made-by-boto3",
    ZipFile=make_zip("import os\ndef handler(e, c):\n    return {'v': 2, 'k': os.environ['K']}\n"),
    Publish=True,
)
check("update_function_code with Publish", v["Version"] == "1", v)
c.update_function_configuration(FunctionName="made-by-boto3", Environment={"Variables": {"K": "two"}})
body = payload(c.invoke(FunctionName="made-by-boto3"))
check("new code and configuration on $LATEST", body == {"v": 2, "k": "two"}, body)
body = payload(c.invoke(FunctionName="made-by-boto3", Qualifier="1"))
check("version 1 keeps its configuration", body == {"v": 2, "k": "one"}, body)
c.put_function_concurrency(FunctionName="made-by-boto3", ReservedConcurrentExecutions=0)
try:
    c.invoke(FunctionName="made-by-boto3")
    check("reserved concurrency 0 throttles", False)
except c.exceptions.TooManyRequestsException:
    check("reserved concurrency 0 throttles", True)
c.delete_function_concurrency(FunctionName="made-by-boto3")
check("delete_function_concurrency", c.invoke(FunctionName="made-by-boto3")["StatusCode"] == 200)
try:
    client("us-east-1").get_function(FunctionName="made-by-boto3")
    check("regions are separate", False)
except c.exceptions.ResourceNotFoundException:
    check("regions are separate", True)
c.delete_function(FunctionName="made-by-boto3")
try:
    c.get_function(FunctionName="made-by-boto3")
    check("delete_function", False)
except c.exceptions.ResourceNotFoundException:
    check("delete_function", True)
print("all boto3 checks passed")
