//! The admin API's recent logs (`crate::recent_logs`), what `wasmgate logs`
//! reads:
//!
//! - `GET /v1/functions/{name}[:qualifier]/logs`: the function's
//!   invocations (Lambda's START, output, END and REPORT lines), those made
//!   through the qualifier (or of that version) when one is given;
//! - `GET /v1/apis/{api}/stages/{stage}/logs`: the stage's access lines.
//!
//! Query: `after` (the `next` of the previous answer: only what came since),
//! `since` (Unix milliseconds), `filter` (lines containing it), `wait`
//! (seconds, at most 20: with nothing to return yet, wait that long for
//! the next entry — `--follow` asks again and again; a server that starts
//! to stop answers a waiting read at once). The answer:
//! `{"events": [{"timestamp": ms, "message": …}], "next": seq}`.

use std::time::Duration;

use hyper::Request;

use super::{AdminApi, ApiError, ApiResult, ok, query_param};
use crate::http;
use crate::recent_logs::{Query, Stream};

/// The longest a read waits for the next entry.
const MAX_WAIT_SECS: u64 = 20;

impl AdminApi {
    /// `GET /v1/functions/{qualified}/logs`.
    pub(super) async fn function_logs(&self, qualified: &str, req: &Request<http::RequestBody>) -> ApiResult {
        // The function and the qualifier must exist (the same errors as an
        // invocation's).
        let state = self.functions.registry().snapshot();
        state.resolve(qualified).map_err(crate::functions::FunctionsError::from)?;
        let (name, qualifier) = match qualified.split_once(':') {
            Some((name, q)) => (name, Some(q.to_string())),
            None => (qualified, None),
        };
        let stream = self.functions.runtime().recent_logs().function(name);
        self.read_logs(&stream, qualifier, req).await
    }

    /// `GET /v1/apis/{api}/stages/{stage}/logs`.
    pub(super) async fn stage_logs(&self, api: &str, stage: &str, req: &Request<http::RequestBody>) -> ApiResult {
        let served = self.gateway.served();
        let compiled = served.api(api).and_then(|a| a.stage(stage)).map_err(ApiError::not_found)?;
        if compiled.access_log.is_none() {
            return Err(ApiError::not_found(format!(
                "stage {stage} of {api} keeps no access log: give it one (access_log = {{ format = \"CLF\" }} in \
                 [apis.{api}.stages.{stage}]) and deploy"
            )));
        }
        let stream = self.functions.runtime().recent_logs().stage(&format!("{api}/{stage}"));
        self.read_logs(&stream, None, req).await
    }

    async fn read_logs(
        &self,
        stream: &Stream,
        qualifier: Option<String>,
        req: &Request<http::RequestBody>,
    ) -> ApiResult {
        let number = |name: &str| -> Result<u64, ApiError> {
            match query_param(req, name) {
                None => Ok(0),
                Some(v) => v.parse().map_err(|_| ApiError::bad_request(format!("{name} is a whole number: {v:?}"))),
            }
        };
        let query = Query {
            after: number("after")?,
            since_ms: number("since")?,
            qualifier,
            filter: query_param(req, "filter").filter(|f| !f.is_empty()),
        };
        let wait = number("wait")?;
        if wait > MAX_WAIT_SECS {
            return Err(ApiError::bad_request(format!("wait is at most {MAX_WAIT_SECS} seconds")));
        }
        let page = if wait == 0 {
            stream.read(&query)
        } else {
            let mut stopping = self.options.stopping.clone();
            tokio::select! {
                page = stream.read_or_wait(&query, Duration::from_secs(wait)) => page,
                // The server stops: what there is, now, rather than a wait
                // that holds its stop up.
                _ = stopping.wait_for(|stop| *stop) => stream.read(&query),
            }
        };
        ok(&page)
    }
}
