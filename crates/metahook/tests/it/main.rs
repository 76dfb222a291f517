//! The integration suite: one binary, each test with its own port and database.

mod binary;
mod cluster;
mod fixtures;
mod helpers;
mod limits;
mod observe;
mod order;
mod payloads;
mod pipeline;
mod process;
mod simulate;
mod webhook;
