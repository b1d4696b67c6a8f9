//! Generated protobuf types for Hearth.
//!
//! This crate holds only the `.proto` files (in `proto/`) and what prost
//! generates from them. Other crates validate these types into domain types
//! with `TryFrom` before they cross a public API.
#![forbid(unsafe_code)]

/// The client <-> relay protocol (`proto/relay.proto`).
pub mod relay {
    #![allow(
        missing_docs,
        unreachable_pub,
        clippy::all,
        missing_debug_implementations
    )]
    include!(concat!(env!("OUT_DIR"), "/hearth.relay.v1.rs"));
}

/// The end-to-end messages between devices (`proto/e2e.proto`).
pub mod e2e {
    #![allow(
        missing_docs,
        unreachable_pub,
        clippy::all,
        missing_debug_implementations
    )]
    include!(concat!(env!("OUT_DIR"), "/hearth.e2e.v1.rs"));
}

/// Application content inside the encryption, and the invite link payload
/// (`proto/content.proto`).
pub mod content {
    #![allow(
        missing_docs,
        unreachable_pub,
        clippy::all,
        missing_debug_implementations
    )]
    include!(concat!(env!("OUT_DIR"), "/hearth.content.v1.rs"));
}
