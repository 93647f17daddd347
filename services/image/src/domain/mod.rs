//! The rules of images, free of HTTP and storage: which bytes are an image we accept
//! ([`sniff`], [`jpeg`]), and how an accepted image becomes what we store ([`process`]).

pub mod jpeg;
pub mod process;
pub mod sniff;

pub use process::{Encoded, Processed, ProcessingLimits, process};
pub use sniff::{Rejection, SourceFormat};
