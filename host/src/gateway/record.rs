//! What a served request leaves behind once answered: the values of its
//! stage's access line ([`Record`], the `$context` variables of
//! `crate::access_log`), read from the request, its stage and method, and
//! what the pipeline measured.

use std::fmt::Write as _;
use std::time::Duration;

use super::pipeline::{Integration, Rejection};
use super::request::GatewayRequest;
use super::stage::{CompiledStage, MethodEntry};
use crate::access_log::{Values, Var};

/// What a request's access line is made of.
pub struct Record<'a> {
    pub req: &'a GatewayRequest,
    pub stage: &'a CompiledStage,
    /// The method it matched, if any.
    pub method: Option<&'a MethodEntry>,
    pub status: u16,
    pub response_length: usize,
    /// From its head to its answer.
    pub latency: Duration,
    pub integration: Option<Integration>,
    /// The gateway response it was answered with, if any.
    pub error: Option<&'a Rejection>,
    /// The id of the API key it was admitted with.
    pub key_id: Option<&'a str>,
}

impl Values for Record<'_> {
    fn write(&self, var: Var, out: &mut String) {
        let req = self.req;
        let _ = match var {
            Var::AccountId => write!(out, "000000000000"),
            Var::ApiId => write!(out, "{}", self.stage.api_id),
            Var::DeploymentId => write!(out, "{}", self.stage.deployment_id),
            Var::DomainName => write!(out, "{}", req.host),
            Var::DomainPrefix => write!(out, "{}", req.host.split('.').next().unwrap_or("")),
            Var::ErrorMessage => match self.error {
                Some(e) => write!(out, "{}", e.message.as_deref().unwrap_or(e.kind.default_message())),
                None => Ok(()),
            },
            Var::ErrorMessageString => match self.error {
                Some(e) => write!(out, "\"{}\"", e.message.as_deref().unwrap_or(e.kind.default_message())),
                None => Ok(()),
            },
            Var::ErrorResponseType => match self.error {
                Some(e) => write!(out, "{}", e.kind.as_str()),
                None => Ok(()),
            },
            Var::ExtendedRequestId => write!(out, "{}", req.ids.extended_request_id()),
            Var::HttpMethod => write!(out, "{}", req.method),
            Var::ApiKey => match self.key_id.and(req.header("x-api-key")) {
                Some(key) => write!(out, "{key}"),
                None => Ok(()),
            },
            Var::ApiKeyId => match self.key_id {
                Some(id) => write!(out, "{id}"),
                None => Ok(()),
            },
            Var::SourceIp => write!(out, "{}", req.source_ip),
            Var::UserAgent => match req.header("user-agent") {
                Some(agent) => write!(out, "{agent}"),
                None => Ok(()),
            },
            Var::IntegrationLatency => match self.integration {
                Some(Integration { latency: Some(latency), .. }) => write!(out, "{}", latency.as_millis()),
                // The integration timed out: -1, as API Gateway writes it.
                Some(Integration { latency: None, .. }) => write!(out, "-1"),
                None => Ok(()),
            },
            Var::IntegrationStatus => match self.integration.and_then(|i| i.status) {
                Some(status) => write!(out, "{status}"),
                None => Ok(()),
            },
            Var::Path => write!(out, "{}", req.full_path),
            Var::Protocol => write!(out, "{}", req.protocol),
            Var::RequestId => write!(out, "{}", req.ids.request_id()),
            Var::RequestTime => write!(out, "{}", req.clf_time()),
            Var::RequestTimeEpoch => write!(out, "{}", req.epoch_ms()),
            Var::ResourceId => match self.method {
                Some(m) => write!(out, "{}", m.resource_id),
                None => Ok(()),
            },
            Var::ResourcePath => match self.method {
                Some(m) => write!(out, "{}", m.spec.resource_path),
                None => Ok(()),
            },
            Var::ResponseLatency => write!(out, "{}", self.latency.as_millis()),
            Var::ResponseLength => write!(out, "{}", self.response_length),
            Var::Stage => write!(out, "{}", self.stage.stage),
            Var::Status => write!(out, "{}", self.status),
            Var::XrayTraceId => write!(out, "{}", req.ids.trace_id()),
            Var::Absent => Ok(()),
        };
    }
}
