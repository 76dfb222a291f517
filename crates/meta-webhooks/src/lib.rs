//! The Meta webhook protocol, without I/O.
//!
//! Everything a receiver needs to know about what Meta sends lives here: the verification
//! handshake, the `X-Hub-Signature-256` check over the exact raw bytes, the minimal envelope
//! check done before a delivery is stored, and the typed model that splits a stored delivery
//! into events with natural keys. The service crate owns sockets, storage and time.

pub mod envelope;
pub mod event;
pub mod generate;
pub mod handshake;
pub mod payload;
pub mod signature;

pub use envelope::{Envelope, EnvelopeError};
pub use event::{DecodeError, Detail, Event, Kind, Platform, Source, split};
pub use handshake::{Handshake, HandshakeError};
pub use signature::{Secret, SignatureError, Verifier};
