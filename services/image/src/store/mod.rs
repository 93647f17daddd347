//! image's persistence: metadata rows in Postgres ([`images`]) and bytes in object storage
//! ([`objects`]).

pub mod images;
pub mod objects;

/// Binds a statement for Postgres.
pub(crate) fn sql<I>(text: &str, values: I) -> sea_orm::Statement
where
    I: IntoIterator<Item = sea_orm::Value>,
{
    sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, text, values)
}
