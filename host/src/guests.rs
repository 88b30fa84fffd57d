//! The guest functions of this repository (`guest-functions/`), built for
//! `wasm32-wasip2` by the build script and embedded, so that `gateway.toml` can
//! name them (`code = { guest = "items" }`) and tests and benches can load them
//! without a separate build step.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component bytes of the guest called `name` (e.g. `items`, `busy-loop`).
pub fn get(name: &str) -> Option<&'static [u8]> {
    GUESTS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// The names of all embedded guests.
pub fn names() -> impl Iterator<Item = &'static str> {
    GUESTS.iter().map(|(n, _)| *n)
}
