//! Method request validation (API Gateway's request validators): required
//! parameters first, then the body against the method's model (JSON Schema
//! draft 4). Failures are `BAD_REQUEST_PARAMETERS` / `BAD_REQUEST_BODY`.

use super::pipeline::Rejection;
use super::request::GatewayRequest;
use super::responses::ResponseType;
use crate::config::api::MethodSpec;

/// Checks the request against the method's validator, if it has one.
pub fn validate(method: &MethodSpec, req: &GatewayRequest, path_params: &[(String, String)]) -> Result<(), Rejection> {
    if method.validate_parameters && !method.required_parameters.is_empty() {
        let query = req.query();
        let missing: Vec<&str> = method
            .required_parameters
            .iter()
            .filter_map(|full| {
                let (kind, name) = full.strip_prefix("method.request.")?.split_once('.')?;
                let present = match kind {
                    "path" => path_params.iter().any(|(k, v)| k == name && !v.is_empty()),
                    "querystring" => query.contains_key(name),
                    "header" => req.header(name).is_some(),
                    _ => true,
                };
                (!present).then_some(name)
            })
            .collect();
        if !missing.is_empty() {
            return Err(Rejection::new(
                ResponseType::BadRequestParameters,
                Some(format!("Missing required request parameters: [{}]", missing.join(", "))),
            ));
        }
    }
    if method.validate_body {
        let content_type = req.media_type("content-type");
        let content_type = content_type.as_deref().unwrap_or("application/json");
        let model = method.request_models.get(content_type).or_else(|| method.request_models.get("$default"));
        if let Some(model) = model {
            // An empty body is validated as `{}`, as API Gateway does.
            let body: &[u8] = if req.body.is_empty() { b"{}" } else { &req.body };
            let valid =
                serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|json| model.validator.is_valid(&json));
            if !valid {
                return Err(Rejection::new(ResponseType::BadRequestBody, Some("Invalid request body".into())));
            }
        }
    }
    Ok(())
}
