//! JSON documents split without re-serialising: the members of an object
//! or the elements of an array, each as the slice of the document that
//! holds it. Producers' values are relayed as sent (`150.10` stays
//! `150.10`), and a batch of events on the fleet bus (a JSON array) is cut
//! into its events. serde_json validates the document first, and the bytes
//! are checked to be UTF-8 (serde_json skips string contents it does not
//! decode, and a text frame must be UTF-8); the scanner only finds where
//! each value begins and ends.

use serde::de::IgnoredAny;

/// Why a document is not what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct JsonError(pub String);

/// A JSON object's members in order, values as their raw JSON (relayed as
/// sent, never re-serialised).
#[derive(Debug)]
pub struct Members<'a>(pub Vec<(String, &'a [u8])>);

impl<'a> Members<'a> {
    /// The members of `json`, which must be one JSON object.
    pub fn parse(json: &'a [u8]) -> Result<Self, JsonError> {
        std::str::from_utf8(json).map_err(|e| JsonError(format!("not UTF-8: {e}")))?;
        serde_json::from_slice::<IgnoredAny>(json).map_err(|e| JsonError(e.to_string()))?;
        let members =
            top_level(json, b'{').ok_or_else(|| JsonError("expected a JSON object".into()))?;
        members
            .into_iter()
            .map(|(key, value)| {
                let key = serde_json::from_slice(key.unwrap_or_default())
                    .map_err(|e| JsonError(e.to_string()))?;
                Ok((key, value))
            })
            .collect::<Result<_, _>>()
            .map(Members)
    }

    /// The last value of `key` (JSON parsers keep the last duplicate).
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The object without the members named in `skip`, as JSON.
    pub fn object_without(&self, skip: &[&str]) -> Vec<u8> {
        let mut json = vec![b'{'];
        for (key, value) in self.0.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            if json.len() > 1 {
                json.push(b',');
            }
            serde_json::to_writer(&mut json, key).expect("a string serialises");
            json.push(b':');
            json.extend_from_slice(value);
        }
        json.push(b'}');
        json
    }
}

/// One top-level entry of a JSON object or array: its key (a raw JSON
/// string; `None` in an array) and its value, as slices of the document.
pub type Entry<'a> = (Option<&'a [u8]>, &'a [u8]);

/// The top-level entries of `json`, an object (`open` = `{`: keys as raw
/// JSON strings) or an array (`[`: no keys), as slices of it; `None` when
/// `json` is not that. `json` must be valid JSON (checked by the caller,
/// or produced by a node): this only finds where each value begins and ends.
pub fn top_level(json: &[u8], open: u8) -> Option<Vec<Entry<'_>>> {
    let json = json.trim_ascii();
    let close = if open == b'{' { b'}' } else { b']' };
    let inner = json.strip_prefix(&[open])?.strip_suffix(&[close])?;
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        at += leading_space(&inner[at..]);
        if at == inner.len() {
            return Some(entries);
        }
        let key = if open == b'{' {
            let end = at + value_len(&inner[at..])?;
            let key = &inner[at..end];
            at = end + leading_space(&inner[end..]);
            at += usize::from(inner.get(at) == Some(&b':'));
            at += leading_space(&inner[at..]);
            Some(key)
        } else {
            None
        };
        let end = at + value_len(&inner[at..])?;
        entries.push((key, &inner[at..end]));
        at = end + leading_space(&inner[end..]);
        at += usize::from(inner.get(at) == Some(&b','));
    }
}

fn leading_space(json: &[u8]) -> usize {
    json.len() - json.trim_ascii_start().len()
}

/// The length of the JSON value `json` starts with.
fn value_len(json: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(i),
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' | b':' if depth == 0 => return Some(i),
            b if depth == 0 && b.is_ascii_whitespace() => return Some(i),
            _ => {}
        }
    }
    (depth == 0 && !in_string && !json.is_empty()).then_some(json.len())
}

/// The elements of `json`, a JSON array that serde_json accepts.
pub fn elements(json: &[u8]) -> Option<Vec<&[u8]>> {
    std::str::from_utf8(json).ok()?;
    serde_json::from_slice::<IgnoredAny>(json).ok()?;
    Some(top_level(json, b'[')?.into_iter().map(|(_, v)| v).collect())
}

/// `value` rounded to `places` decimals, as messages carry numbers: 0 for
/// anything not finite (no NaN or infinity ever reaches the wire), and
/// never `-0.0`.
pub fn round(value: f64, places: i32) -> f64 {
    if !value.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(places);
    let rounded = (value * scale).round() / scale;
    if rounded == 0.0 { 0.0 } else { rounded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_are_refused_even_inside_strings() {
        // serde_json skips the contents of strings it is not asked to decode.
        let bad = b"{\"data\":{\"note\":\"\xff\"}}";
        assert!(serde_json::from_slice::<IgnoredAny>(bad).is_ok());
        assert!(Members::parse(bad).unwrap_err().0.contains("UTF-8"));
        assert_eq!(elements(b"[\"\xfe\"]"), None);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    /// Arbitrary JSON values, nested, with awkward strings.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            "[a-z\"\\\\{}\\[\\],: é]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec(("[a-z\"\\\\:,{ ]{0,5}", inner), 0..4)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_scanner_splits_any_object_or_array_into_its_members(
            value in json_value(),
            pretty in any::<bool>(),
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            match &value {
                serde_json::Value::Object(map) => {
                    let members = Members::parse(text.as_bytes()).unwrap();
                    prop_assert_eq!(members.0.len(), map.len());
                    for ((key, raw), (k, v)) in members.0.iter().zip(map) {
                        prop_assert_eq!(key, k);
                        prop_assert_eq!(&serde_json::from_slice::<serde_json::Value>(raw).unwrap(), v);
                    }
                }
                serde_json::Value::Array(items) => {
                    let found = top_level(text.as_bytes(), b'[').unwrap();
                    prop_assert_eq!(found.len(), items.len());
                    for ((_, raw), v) in found.iter().zip(items) {
                        prop_assert_eq!(&serde_json::from_slice::<serde_json::Value>(raw).unwrap(), v);
                    }
                }
                _ => prop_assert!(Members::parse(text.as_bytes()).is_err()),
            }
            if let serde_json::Value::Array(items) = &value {
                prop_assert_eq!(elements(text.as_bytes()).map(|e| e.len()), Some(items.len()));
            }
        }
    }
}
