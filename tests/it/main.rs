//! One integration-test binary, so the library (and DataFusion) is linked once.

mod attribution;
mod cli;
mod crash;
mod dashboard;
mod ecommerce;
mod experiment;
mod funnel;
mod fuzz;
mod hardening;
mod identity;
mod import;
mod lifecycle;
mod passes;
mod paths;
mod privacy;
mod query;
mod reports;
mod retention;
mod retention_report;
mod segments;
mod server;
mod sessions;
mod sql_http;
mod support;
mod tracker;
mod vectors;
