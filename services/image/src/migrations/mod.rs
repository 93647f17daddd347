//! image's schema, applied by `image migrate` (or at startup with
//! `DATABASE_MIGRATE_ON_START=true`): the event outbox (shared migration from the events
//! crate) and the image metadata.

mod m20261125_000002_images;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(events::outbox::CreateOutbox),
            Box::new(m20261125_000002_images::Migration),
        ]
    }
}
