"""A handler run by awslambdaric (the test copies awslambdaric next to it, as `pip install -t`)."""


def handler(event, context):
    if "raise" in event:
        raise RuntimeError(event["raise"])
    return {"event": event, "arn": context.invoked_function_arn, "request_id": context.aws_request_id}
