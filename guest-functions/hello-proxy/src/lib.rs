//! hello-proxy: a Lambda proxy function written against the AWS Rust
//! runtime's own types (`aws_lambda_events`' `ApiGatewayProxyRequest` and
//! `ApiGatewayProxyResponse`), as one would write it for Lambda.
//!
//! `GET /hello/{name}` (or `?name=…`) answers `{"message": "Hello, name!"}`
//! with what it read from the typed event beside it, and sets two cookies
//! through `multiValueHeaders`. The fields of the event that the types do
//! not model are listed under `unknownFields`: the same three in the events
//! wasmgate builds as in API Gateway's (`requestContext.deploymentId`,
//! `requestContext.extendedRequestId`, `requestContext.identity.principalOrgId`).

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: ApiGatewayProxyRequest, _ctx: &Context) -> Result<ApiGatewayProxyResponse, Error> {
    let name = event
        .path_parameters
        .get("name")
        .map(String::as_str)
        .or_else(|| event.query_string_parameters.first("name"))
        .unwrap_or("world");
    let context = &event.request_context;
    let multi_query: Map<String, Value> = event
        .multi_value_query_string_parameters
        .iter()
        .map(|(key, _)| {
            let values = event.multi_value_query_string_parameters.all(key).unwrap_or_default();
            (key.to_string(), json!(values))
        })
        .collect();
    let body = json!({
        "message": format!("Hello, {name}!"),
        "request": {
            "method": event.http_method.as_str(),
            "path": event.path,
            "resource": event.resource,
            "pathParameters": event.path_parameters,
            "query": multi_query,
            "stageVariables": event.stage_variables,
            "userAgent": event.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
            "headerValues": event.multi_value_headers.get_all("x-multi").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>(),
            "body": event.body,
            "isBase64Encoded": event.is_base64_encoded,
            "stage": context.stage,
            "requestId": context.request_id,
            "resourcePath": context.resource_path,
            "sourceIp": context.identity.source_ip,
            "requestTimeEpoch": context.request_time_epoch,
        },
        "unknownFields": unknown_fields(&event),
    });

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut multi_value_headers = HeaderMap::new();
    multi_value_headers.append(header::SET_COOKIE, HeaderValue::from_static("greeted=1"));
    multi_value_headers.append(header::SET_COOKIE, HeaderValue::from_static("theme=light"));
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response.headers = headers;
    response.multi_value_headers = multi_value_headers;
    response.body = Some(Body::Text(body.to_string()));
    Ok(response)
}

/// The event's fields the types do not model, as dotted paths.
fn unknown_fields(event: &ApiGatewayProxyRequest) -> Vec<String> {
    let context = &event.request_context;
    let prefixed = |prefix: &str, map: &Map<String, Value>| -> Vec<String> {
        map.keys().map(|key| format!("{prefix}{key}")).collect()
    };
    let mut fields = prefixed("", &event.other);
    fields.extend(prefixed("requestContext.", &context.other));
    fields.extend(prefixed("requestContext.identity.", &context.identity.other));
    fields
}

wasmgate_guest::handler!(handle);
