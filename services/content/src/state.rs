//! What handlers share.

use pagination::CursorCodec;
use sea_orm::DatabaseConnection;

pub struct AppState {
    pub db: DatabaseConnection,
    pub cursor: CursorCodec,
}
