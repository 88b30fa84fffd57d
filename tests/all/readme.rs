//! The README's tour, run as written: each `console` block's commands
//! against a fresh server on the bundled `gateway.toml` (its `[server]`
//! table aside), their output compared with what the README shows
//! (`TRYCMD=overwrite` writes what they print into the README).

use crate::common::{TestServer, bundled_config_with_policies};

#[test]
fn the_readme_s_tour_runs_as_written() {
    let server = TestServer::start(&bundled_config_with_policies());
    let token = server.token();
    trycmd::TestCases::new()
        .register_bin("wasmgate", std::path::Path::new(crate::common::BIN))
        .env("WASMGATE_ADMIN", &server.admin_url)
        .env("WASMGATE_TOKEN", token)
        .env("NO_COLOR", "1")
        .env("WASMGATE_LOG", "warn")
        .insert_var("[ADMIN]", server.admin_url.clone())
        .expect("a variable")
        .case(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .run();
}
