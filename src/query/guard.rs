//! Bounds on analyst SQL, checked on the parsed statement before anything is planned.
//!
//! DataFusion plans and optimises expressions recursively: a left-deep chain of 2,000 `+`,
//! `OR` or `||` terms (4 KB of SQL), or 3,000 `UNION ALL`s, overflowed a worker thread's
//! stack and took the whole process down, and 100,000 terms kept a core busy in planning for
//! minutes. These limits keep every accepted statement well inside what the query threads
//! (see [`super::pool`]) can plan on their stacks; a statement past one is refused with a 400
//! naming the limit, before planning starts.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};

use super::Error;

/// Longest SQL text accepted, in bytes.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// Deepest expression nesting (`a + b + c` is 3 deep: operators chain left to right).
pub const MAX_EXPR_DEPTH: usize = 128;
/// Most expression nodes in one statement (an `IN` list of 5,000 values is about 5,000).
pub const MAX_EXPR_NODES: usize = 20_000;
/// Most `UNION` / `INTERSECT` / `EXCEPT` in one statement.
pub const MAX_SET_OPERATIONS: usize = 64;

/// What [`check`] measured.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub max_depth: usize,
    pub nodes: usize,
    pub set_operations: usize,
}

/// Refuse SQL text over [`MAX_SQL_BYTES`] (before parsing it).
pub fn check_text(sql: &str) -> Result<(), Error> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::TooComplex(format!(
            "the statement is {} bytes; the limit is {MAX_SQL_BYTES} bytes",
            sql.len()
        )));
    }
    Ok(())
}

/// Refuse statements other than a query (or `EXPLAIN` of one), and queries past the limits.
pub fn check(statement: &Statement) -> Result<Shape, Error> {
    let inner = match statement {
        Statement::Statement(s) => s.as_ref(),
        Statement::Explain(e) => return check(&e.statement),
        other => {
            let kind = other.to_string();
            let kind = kind.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            return Err(Error::Refused(format!("{kind} … is not a read-only query")));
        }
    };
    let mut v = Measure::default();
    let _ = inner.visit(&mut v);
    let shape = Shape { max_depth: v.max_depth, nodes: v.nodes, set_operations: v.set_operations };
    let over =
        |what: &str, got: usize, limit: usize| Err(Error::TooComplex(format!("{what} is {got}; the limit is {limit}")));
    if shape.max_depth > MAX_EXPR_DEPTH {
        return over(
            "the expression nesting depth (terms chained by operators count one level each)",
            shape.max_depth,
            MAX_EXPR_DEPTH,
        );
    }
    if shape.nodes > MAX_EXPR_NODES {
        return over("the number of expression terms", shape.nodes, MAX_EXPR_NODES);
    }
    if shape.set_operations > MAX_SET_OPERATIONS {
        return over("the number of UNION / INTERSECT / EXCEPT", shape.set_operations, MAX_SET_OPERATIONS);
    }
    Ok(shape)
}

#[derive(Default)]
struct Measure {
    depth: usize,
    max_depth: usize,
    nodes: usize,
    set_operations: usize,
}

impl Visitor for Measure {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        self.nodes += 1;
        self.max_depth = self.max_depth.max(self.depth);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        // Set operations chain left-deep in `body`; walk them with a stack, not recursion.
        let mut stack = vec![q.body.as_ref()];
        while let Some(s) = stack.pop() {
            if let SetExpr::SetOperation { left, right, .. } = s {
                self.set_operations += 1;
                stack.push(left);
                stack.push(right);
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParserBuilder;

    fn parse(sql: &str) -> Statement {
        DFParserBuilder::new(sql).build().expect("parser").parse_statement().expect("parses")
    }

    fn chain(op: &str, n: usize) -> String {
        format!("SELECT {}", vec!["1"; n].join(op))
    }

    #[test]
    fn measures_depth_nodes_and_set_operations() {
        // 1 + 1 + 1 is ((1 + 1) + 1): BinaryOp over BinaryOp over a literal, 3 deep, 5 nodes.
        let s = check(&parse("SELECT 1 + 1 + 1")).expect("ok");
        assert_eq!((s.max_depth, s.nodes, s.set_operations), (3, 5, 0));
        let s = check(&parse("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")).expect("ok");
        assert_eq!(s.set_operations, 2);
        let s = check(&parse("EXPLAIN SELECT x IN (1, 2, 3) FROM t")).expect("ok");
        assert_eq!((s.max_depth, s.nodes), (2, 5));
    }

    #[test]
    fn the_crash_chains_are_refused_before_planning() {
        for op in [" + ", " OR ", " AND ", " || "] {
            let err = check(&parse(&chain(op, 2_000))).expect_err(op);
            assert!(matches!(&err, Error::TooComplex(m) if m.contains("depth")), "{op}: {err}");
            // At the limit (128 deep: 128 terms) it is accepted.
            check(&parse(&chain(op, MAX_EXPR_DEPTH))).expect(op);
        }
        let unions = vec!["SELECT 1"; 3_000].join(" UNION ALL ");
        assert!(matches!(check(&parse(&unions)), Err(Error::TooComplex(m)) if m.contains("UNION")));
        let in_list = format!("SELECT 1 WHERE 1 IN ({})", vec!["1"; MAX_EXPR_NODES + 1].join(","));
        assert!(matches!(check(&parse(&in_list)), Err(Error::TooComplex(m)) if m.contains("terms")));
    }

    #[test]
    fn text_size_and_statement_kinds() {
        assert!(check_text(&"x".repeat(MAX_SQL_BYTES)).is_ok());
        assert!(matches!(check_text(&"x".repeat(MAX_SQL_BYTES + 1)), Err(Error::TooComplex(_))));
        let copy = parse("COPY (SELECT 1) TO '/tmp/x.csv'");
        assert!(matches!(check(&copy), Err(Error::Refused(_))));
    }
}
