//! image's handlers.

pub mod form;
pub mod serve;
pub mod upload;
pub mod view;
