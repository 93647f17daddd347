//! member's persistence: sea-orm entities and the queries handlers need.

pub mod follows;
pub mod keys;
pub mod members;
pub mod oauth_accounts;

/// Whether a database error is a unique-constraint violation (23505).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
