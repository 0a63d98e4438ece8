//! Reading a section's `a=` lines by key: shared by the offer reader and the simulcast
//! reader.

use rtc::sdp::description::common::Attribute;

/// The first value of `key`.
pub(super) fn value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_deref())
}

/// Every value of `key`, in order.
pub(super) fn values<'a>(attrs: &'a [Attribute], key: &'a str) -> impl Iterator<Item = &'a str> {
    attrs
        .iter()
        .filter(move |a| a.key == key)
        .filter_map(|a| a.value.as_deref())
}
