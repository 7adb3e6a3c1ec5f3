//! Enrichment: pure functions from request facts to event fields.

pub mod bot;
pub mod geo;
pub mod referrer;
pub mod ua;
pub mod visitor;
