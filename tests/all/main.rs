//! wasmgate's integration tests: one binary, a module per topic. Each test
//! starts the real server (`TestServer`) on `127.0.0.1:0` with a temporary
//! data directory and real guests, and speaks HTTP to it.

mod browser;
mod cli;
mod common;
mod conformance;
mod control_plane;
mod data_dir;
mod deploy;
mod durability;
mod functions;
mod gateway;
mod hardening;
mod isolation;
mod languages;
mod observability;
mod outbound;
mod plans_keys;
mod policies;
mod pools;
mod prometheus;
mod readme;
mod shared_store;
mod toolchains;
mod ui;
