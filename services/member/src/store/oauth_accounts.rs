//! The `oauth_accounts` table: which provider identities log in as which member.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub member_id: i64,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    provider: &str,
    subject: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((provider.to_owned(), subject.to_owned()))
        .one(conn)
        .await
}

pub async fn of_member<C: ConnectionTrait>(conn: &C, member_id: i64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::MemberId.eq(member_id))
        .all(conn)
        .await
}

pub async fn link<C: ConnectionTrait>(
    conn: &C,
    provider: &str,
    subject: &str,
    member_id: i64,
    email: Option<&str>,
) -> Result<Model, DbErr> {
    ActiveModel {
        provider: Set(provider.to_owned()),
        subject: Set(subject.to_owned()),
        member_id: Set(member_id),
        email: Set(email.map(str::to_owned)),
        created_at: Set(Utc::now()),
    }
    .insert(conn)
    .await
}

pub async fn unlink<C: ConnectionTrait>(
    conn: &C,
    member_id: i64,
    provider: &str,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::MemberId.eq(member_id))
        .filter(Column::Provider.eq(provider))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Unlinks every provider of `member_id`; returns the providers that were linked.
pub async fn unlink_all<C: ConnectionTrait>(
    conn: &C,
    member_id: i64,
) -> Result<Vec<String>, DbErr> {
    let linked = of_member(conn, member_id).await?;
    Entity::delete_many()
        .filter(Column::MemberId.eq(member_id))
        .exec(conn)
        .await?;
    let mut providers: Vec<String> = linked.into_iter().map(|a| a.provider).collect();
    providers.sort();
    providers.dedup();
    Ok(providers)
}
