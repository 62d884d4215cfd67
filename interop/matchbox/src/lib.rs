//! No code: this crate holds interop tests (`tests/`) that run the real `matchbox_socket` client
//! against Switchboard's `/matchbox/{room}` endpoint.
