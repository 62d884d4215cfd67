//! Which room names and user names the hub accepts.

/// The longest room or user name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a room name: 1 to [`MAX_NAME_LEN`] characters from `A-Z a-z 0-9 _ - .`.
/// Returns a human-readable reason when it is not acceptable.
pub fn validate_room_name(name: &str) -> Result<(), &'static str> {
    validate(name)
}

/// Checks a user name: same alphabet and length as a room name.
pub fn validate_user_name(name: &str) -> Result<(), &'static str> {
    validate(name)
}

fn validate(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("is longer than 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err("may only contain A-Z a-z 0-9 _ - .");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        assert!(validate_room_name("lobby-1.eu_west").is_ok());
        assert!(validate_user_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "has space", "slash/", "ünï", "a\0b"] {
            assert!(validate_room_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_user_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
