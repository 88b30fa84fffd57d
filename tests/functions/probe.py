# A Python function for wasmgate's tests: what Lambda's context holds, an
# outbound request through wasmgate_http, and an exception of its own class.
import wasmgate_http


class ItemMissing(Exception):
    pass


def lambda_handler(event, context):
    op = event.get("op")
    if op == "context":
        return {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }
    if op == "fetch":
        try:
            response = wasmgate_http.request(event.get("method", "GET"), event["url"], body=event.get("body"))
        except wasmgate_http.HttpError as e:
            return {"error": e.code}
        return {"status": response.status, "body": response.text()}
    if op == "raise":
        raise ItemMissing("no item %s" % event.get("id"))
    if op == "unserialisable":
        return {1, 2}
    return event
