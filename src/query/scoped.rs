//! A table that only ever scans the partitions of some sites.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, col, lit};
use datafusion::physical_plan::ExecutionPlan;

use crate::model::SiteId;

/// Wraps the `events` table so every scan carries `site IN (<allowed>)`. `site` is a partition
/// column, so the listing table applies that filter exactly, by not listing other sites'
/// directories at all.
#[derive(Debug)]
pub struct ScopedTable {
    inner: Arc<dyn TableProvider>,
    allowed: Expr,
}

impl ScopedTable {
    /// `inner` restricted to `sites`.
    pub fn new(inner: Arc<dyn TableProvider>, sites: Vec<SiteId>) -> Self {
        let allowed = col("site").in_list(sites.iter().map(|s| lit(s.as_str())).collect(), false);
        Self { inner, allowed }
    }
}

#[async_trait]
impl TableProvider for ScopedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut with_scope = filters.to_vec();
        with_scope.push(self.allowed.clone());
        self.inner.scan(state, projection, &with_scope, limit).await
    }
}
