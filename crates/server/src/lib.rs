//! Switchboard server.
//!
//! * [`hub`]: the signaling hub core, a pure state machine (rooms, names, routing, limits).
//! * The shell around it moves bytes between WebSockets and the core.

pub mod hub;
