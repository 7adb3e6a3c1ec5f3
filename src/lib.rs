//! footfall: behavioural web analytics for online shops, in one binary.
//! See `docs/` and the README for the map; each module's doc says what it owns.

pub mod api;
pub mod bench;
pub mod clock;
pub mod config;
pub mod demo;
pub mod export;
pub mod fsutil;
pub mod import;
pub mod ingest;
pub mod model;
pub mod predict;
pub mod query;
pub mod reports;
pub mod saved_segments;
pub mod server;
pub mod shopgen;
pub mod sites;
pub mod stats;
pub mod store;
pub mod wal;
