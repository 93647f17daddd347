//! timeline's schema, applied by `timeline migrate` (or at startup with
//! `DATABASE_MIGRATE_ON_START=true`). Migrations: none yet: the read model arrives with the timeline issue.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}
