//! The integration suite: one binary, each test with its own port and database.

mod binary;
mod cluster;
mod disclosure;
mod fixtures;
mod helpers;
mod hostile;
mod limits;
mod observe;
mod order;
mod payloads;
mod pipeline;
mod process;
mod raw;
mod secrets;
mod simulate;
mod soak;
mod webhook;
