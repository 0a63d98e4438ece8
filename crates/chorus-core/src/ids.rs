//! Identifiers. Public ids are short random strings with a prefix that says
//! what they name; internal ids are integers.

use std::fmt;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id from 64 random bits supplied by the caller.
            pub fn from_random(bits: u64) -> Self {
                Self(format!("{}{}", $prefix, base32(bits)).into())
            }

            /// An id the server gives a well-known thing (e.g. the room audio track).
            pub fn named(name: &str) -> Self {
                Self(name.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }
    };
}

prefixed_id!(
    /// A participant's session in a room (`PA_…`), new at every join.
    ParticipantId,
    "PA_"
);
prefixed_id!(
    /// A published track (`TR_…`).
    TrackId,
    "TR_"
);

/// One peer connection on the shared media socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Crockford-style base32 without padding: 13 characters for 64 bits.
fn base32(mut v: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut out = [0u8; 13];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("alphabet is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_and_differ_by_bits() {
        let a = TrackId::from_random(1);
        let b = TrackId::from_random(2);
        assert!(a.as_str().starts_with("TR_"));
        assert_eq!(a.as_str().len(), 3 + 13);
        assert_ne!(a, b);
        assert_eq!(ParticipantId::from_random(0).as_str(), "PA_0000000000000");
        assert_eq!(
            ParticipantId::from_random(u64::MAX).as_str(),
            "PA_fzzzzzzzzzzzz"
        );
    }
}
