//! content's persistence. Every write function takes the caller's transaction, so the
//! change, its counters and its outbox event commit together or not at all.

pub mod comments;
pub mod idempotency;
pub mod likes;
pub mod posts;

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Binds a statement for Postgres.
pub(crate) fn sql<I>(text: &str, values: I) -> sea_orm::Statement
where
    I: IntoIterator<Item = sea_orm::Value>,
{
    sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, text, values)
}
