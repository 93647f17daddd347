//! The `members` table.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder, QuerySelect};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email: Option<String>,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub nickname: String,
    pub bio: String,
    pub profile_image_id: Option<String>,
    pub role: String,
    pub followers_count: i64,
    pub followings_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A new member's row.
pub struct NewMember<'a> {
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub nickname: &'a str,
}

pub async fn insert<C: ConnectionTrait>(conn: &C, new: NewMember<'_>) -> Result<Model, DbErr> {
    ActiveModel {
        email: Set(new.email.map(str::to_owned)),
        email_verified: Set(new.email_verified),
        password_hash: Set(new.password_hash),
        nickname: Set(new.nickname.to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await
}

pub async fn by_id<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(conn).await
}

pub async fn by_email<C: ConnectionTrait>(conn: &C, email: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Email.eq(email))
        .one(conn)
        .await
}

/// The member with `email`, its row locked until the transaction ends (`FOR UPDATE`), so a
/// decision taken on it (link, or take over) cannot race another.
pub async fn by_email_locked<C: ConnectionTrait>(
    conn: &C,
    email: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Email.eq(email))
        .lock_exclusive()
        .one(conn)
        .await
}

pub async fn by_ids<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(Column::Id)
        .all(conn)
        .await
}

/// What `PATCH /members/me` may change; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChange {
    pub nickname: Option<String>,
    pub bio: Option<String>,
    /// `Some(None)` clears the image.
    pub profile_image_id: Option<Option<String>>,
}

pub async fn update_profile<C: ConnectionTrait>(
    conn: &C,
    member: Model,
    change: ProfileChange,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = member.into();
    if let Some(nickname) = change.nickname {
        active.nickname = Set(nickname);
    }
    if let Some(bio) = change.bio {
        active.bio = Set(bio);
    }
    if let Some(image) = change.profile_image_id {
        active.profile_image_id = Set(image);
    }
    active.updated_at = Set(Utc::now());
    active.update(conn).await
}

/// Links a verified email to a provider-only member that has none.
pub async fn set_verified_email<C: ConnectionTrait>(
    conn: &C,
    member: Model,
    email: &str,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = member.into();
    active.email = Set(Some(email.to_owned()));
    active.email_verified = Set(true);
    active.updated_at = Set(Utc::now());
    active.update(conn).await
}

/// The verified owner of the member's email takes the account over: the password (set by
/// whoever registered the address without proving it) is removed and the email is marked
/// verified. The caller also unlinks the other providers and revokes every session.
pub async fn reclaim_for_verified_owner<C: ConnectionTrait>(
    conn: &C,
    member: Model,
    email: &str,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = member.into();
    active.password_hash = Set(None);
    active.email = Set(Some(email.to_owned()));
    active.email_verified = Set(true);
    active.updated_at = Set(Utc::now());
    active.update(conn).await
}
