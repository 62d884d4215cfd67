//! Who may connect: JWT verification for the hub and the server peer, and TURN REST credentials.
//!
//! Pure: no sockets and no clock (the caller passes the current Unix time), so every decision is
//! testable. The cryptography is jsonwebtoken's and aws-lc-rs's; nothing here is hand-written
//! crypto.

mod claims;
mod jwt;
pub mod turn;

pub use claims::{Claims, RoomPatterns};
pub use jwt::{KeyError, TokenError, Verifier, VerifierConfig, VerifyKey};
