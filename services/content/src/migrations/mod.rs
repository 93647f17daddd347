//! content's schema, applied by `content migrate` (or at startup with
//! `DATABASE_MIGRATE_ON_START=true`).

mod m20261125_000002_content;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(events::outbox::CreateOutbox),
            Box::new(m20261125_000002_content::Migration),
        ]
    }
}
