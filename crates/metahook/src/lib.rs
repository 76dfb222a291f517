//! metahook: a durable gateway for Meta webhooks.
//!
//! The path of one notification through this crate: [`http`] receives and verifies it,
//! [`inbox`] makes it durable in the [`store`] before the 200 goes out, [`pipeline`] splits
//! it into events and applies what they mean to the [`domain`] tables, and [`status`] and
//! [`metrics`] show what happened. [`config`] and [`app`] put it together.

pub mod app;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod pipeline;
pub mod simulate;
pub mod status;
pub mod store;
