//! footfall's aggregate functions, registered on every session by [`register_functions`].

pub mod funnel;
pub mod funnel_groups;
pub mod pattern;
pub mod retention;
pub mod sequence;

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::SessionContext;

/// Register footfall's SQL functions on `ctx`. Every entry point (HTTP, CLI, tests) calls this.
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::from(retention::Retention::new()));
    ctx.register_udaf(AggregateUDF::from(funnel::WindowFunnel::new()));
    for kind in [sequence::Kind::Match, sequence::Kind::Count, sequence::Kind::Events] {
        ctx.register_udaf(AggregateUDF::from(sequence::Sequence::new(kind)));
    }
}
