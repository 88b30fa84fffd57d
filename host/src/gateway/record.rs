//! What a served request leaves behind once answered: the values of its
//! stage's access line ([`Record`], the `$context` variables of
//! `crate::access_log`), read from the request, its stage and method, and
//! what the pipeline measured.

use std::fmt::Write as _;
use std::net::IpAddr;
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
        // Text is copied as is; numbers and addresses are written by hand
        // (through `core::fmt`, a line's few numbers cost as much as the
        // rest of it).
        let text: Option<&str> = match var {
            Var::AccountId => Some("000000000000"),
            Var::ApiId => Some(&self.stage.api_id),
            Var::DeploymentId => Some(&self.stage.deployment_id),
            Var::DomainName => Some(&req.host),
            Var::DomainPrefix => req.host.split('.').next(),
            Var::ErrorMessage => self.error.map(Rejection::shown_message),
            Var::ErrorMessageString => {
                if let Some(e) = self.error {
                    let _ = write!(out, "\"{}\"", e.shown_message());
                }
                None
            }
            Var::ErrorResponseType => self.error.map(|e| e.kind.as_str()),
            Var::ExtendedRequestId => Some(req.ids.extended_request_id()),
            Var::HttpMethod => Some(req.method.as_str()),
            Var::ApiKey => self.key_id.and(req.header("x-api-key")),
            Var::ApiKeyId => self.key_id,
            Var::SourceIp => {
                push_ip(out, req.source_ip);
                None
            }
            Var::UserAgent => req.header("user-agent"),
            Var::IntegrationLatency => {
                match self.integration {
                    Some(Integration { latency: Some(latency), .. }) => push_number(out, latency.as_millis()),
                    // The integration timed out: -1, as API Gateway writes it.
                    Some(Integration { latency: None, .. }) => out.push_str("-1"),
                    None => {}
                }
                None
            }
            // The invocation's request id: the function is called with the
            // request's own.
            Var::IntegrationRequestId => self.integration.map(|_| req.ids.request_id()),
            Var::IntegrationStatus => {
                if let Some(status) = self.integration.and_then(|i| i.status) {
                    push_number(out, status);
                }
                None
            }
            Var::Path => Some(&req.full_path),
            Var::Protocol => Some(req.protocol),
            Var::RequestId => Some(req.ids.request_id()),
            Var::RequestTime => {
                req.write_clf_time(out);
                None
            }
            Var::RequestTimeEpoch => {
                push_number(out, req.epoch_ms());
                None
            }
            Var::ResourceId => self.method.map(|m| m.resource_id.as_str()),
            Var::ResourcePath => self.method.map(|m| m.spec.resource_path.as_str()),
            Var::ResponseLatency => {
                push_number(out, self.latency.as_millis());
                None
            }
            Var::ResponseLength => {
                push_number(out, self.response_length);
                None
            }
            Var::Stage => Some(&self.stage.stage),
            Var::Status => {
                push_number(out, self.status);
                None
            }
            Var::XrayTraceId => Some(req.ids.trace_id()),
            Var::Absent => None,
        };
        if let Some(text) = text {
            out.push_str(text);
        }
    }
}

fn push_number(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// An address as `Display` writes it, an IPv4 one without `core::fmt`.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_number(out, octet);
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_display_writes_them() {
        for ip in ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.3.40", "::1", "2001:db8::8a2e:370:7334"] {
            let ip: IpAddr = ip.parse().expect("an address");
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }
}
