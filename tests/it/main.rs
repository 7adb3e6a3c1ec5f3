//! One integration-test binary, so the library (and DataFusion) is linked once.

mod crash;
mod server;
mod support;
mod vectors;
