//! The e2e bench's latency proxy (`benches/e2e/proxy.rs`), shared here so
//! the tests put the very same link between rump and its servers.

#[path = "../../../benches/e2e/proxy.rs"]
mod shared;

pub(crate) use shared::{LatencyProxy, Shape};
