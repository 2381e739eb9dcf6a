//! Talking to servers: sockets, the connection state machine, and the start-up
//! handshake that every connection (first or reconnected) goes through.
//!
//! Nothing here knows what a migration is: the engine's roles decide which
//! commands to send once a connection is ready and what the replies mean.

pub mod conn;
pub mod handshake;
pub mod info;
pub mod probe;
pub mod request;
pub mod rtt;
pub mod socket;
pub mod tls;

pub use conn::{Conn, Incoming};
pub use info::{ServerInfo, Version};
