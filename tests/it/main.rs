//! One integration-test binary, so the library (and DataFusion) is linked once.

mod cli;
mod crash;
mod query;
mod retention;
mod server;
mod support;
mod vectors;
