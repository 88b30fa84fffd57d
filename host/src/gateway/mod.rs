//! The gateway listener: REST routes of the deployed APIs to integrations.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::http::{self, Body};

/// The gateway's request handler.
pub struct Gateway {}

impl Gateway {
    pub fn new() -> Self {
        Gateway {}
    }
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new()
    }
}

impl http::Handler for Gateway {
    async fn handle(&self, _req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
        http::json(hyper::StatusCode::FORBIDDEN, &serde_json::json!({"message": "Missing Authentication Token"}))
    }
}
