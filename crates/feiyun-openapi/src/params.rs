//! Request parameters: form-decoded from the query and a form body, with typed accessors that
//! fail with the documented error.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// Largest accepted value of any single parameter (UserData is 32 KiB raw, about 43 KiB base64).
pub const MAX_PARAM_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

/// Decode `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte, UTF-8.
pub fn form_decode(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode_component(k)?, decode_component(v)?));
    }
    Ok(out)
}

fn decode_component(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(|| {
                    ApiError::new(400, "InvalidParameter", "Malformed percent-encoding in the request.")
                })?;
                let v =
                    std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| {
                        ApiError::new(400, "InvalidParameter", "Malformed percent-encoding in the request.")
                    })?;
                out.push(v);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::new(400, "InvalidParameter", "Request parameters must be UTF-8."))
}

impl Params {
    /// The parameters of a request, query and form body together. Names are exact (`regionId`
    /// is not `RegionId`: like any name an action does not read, it is ignored). A name given
    /// twice, whether in one part or across both, is refused: which of the values counts is
    /// documented nowhere, and a repeated list is written `Name.1`, `Name.2`.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Params, ApiError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if v.len() > MAX_PARAM_LEN {
                return Err(ApiError::invalid_because(&k, "value too long"));
            }
            if map.contains_key(&k) {
                return Err(ApiError::invalid_because(&k, "given more than once"));
            }
            map.insert(k, v);
        }
        Ok(Params { map })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter()
    }

    /// A present, non-empty value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::missing(name))
    }

    pub fn string(&self, name: &str, max_len: usize) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.chars().count() > max_len => {
                Err(ApiError::invalid_because(name, &format!("longer than {max_len} characters")))
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    }

    /// Booleans arrive as `true`/`false` or `True`/`False`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid(name)),
        }
    }

    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= min && n <= max => Ok(Some(n)),
                _ => Err(ApiError::invalid_because(name, &format!("must be an integer from {min} to {max}"))),
            },
        }
    }

    /// A finite, non-negative decimal number (memory sizes in GiB, for example).
    pub fn decimal(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(ApiError::invalid_because(name, "must be a non-negative number")),
            },
        }
    }

    /// A UTC time, `yyyy-MM-ddTHH:mm:ssZ` (or to the minute, `yyyy-MM-ddTHH:mmZ`).
    pub fn timestamp(&self, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => chrono::DateTime::parse_from_rfc3339(v)
                .or_else(|_| chrono::DateTime::parse_from_rfc3339(&v.replace('Z', ":00Z")))
                .map(|d| Some(d.with_timezone(&chrono::Utc)))
                .map_err(|_| ApiError::invalid_because(name, "yyyy-MM-ddTHH:mm:ssZ")),
        }
    }

    /// Item `n` of a repeated parameter written as its pattern: `nth("ModuleList.N.Config", 2)`
    /// reads `ModuleList.2.Config`. The pattern is the name the API description declares.
    pub fn nth(&self, pattern: &str, n: usize) -> Option<&str> {
        let name: Vec<String> =
            pattern.split('.').map(|s| if s == "N" { n.to_string() } else { s.to_string() }).collect();
        self.get(&name.join("."))
    }

    /// Like [`Params::int`], refusing a value that is not an integer from `min` to `max` with
    /// the action's own error.
    pub fn int_or(
        &self,
        name: &str,
        min: i64,
        max: i64,
        err: impl FnOnce() -> ApiError,
    ) -> Result<Option<i64>, ApiError> {
        self.int(name, min, max).map_err(|_| err())
    }

    /// Like [`Params::choice`], refusing a value outside the set with the action's own error.
    pub fn choice_or<'a>(
        &self,
        name: &str,
        allowed: &[&'a str],
        err: impl FnOnce() -> ApiError,
    ) -> Result<Option<&'a str>, ApiError> {
        self.choice(name, allowed).map_err(|_| err())
    }

    /// One of a fixed set of values.
    pub fn choice<'a>(&self, name: &str, allowed: &[&'a str]) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => allowed.iter().find(|a| **a == v).copied().map(Some).ok_or_else(|| ApiError::invalid(name)),
        }
    }

    /// `Name.1`, `Name.2`, ... in index order. An index is 1 to `max` written without leading
    /// zeros (the `Name.N` of the API description); empty values are left out.
    pub fn list(&self, name: &str, max: usize) -> Result<Vec<String>, ApiError> {
        let mut items: Vec<(usize, String)> = Vec::new();
        let prefix = format!("{name}.");
        for (k, v) in self.map.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            match crate::api::canonical_index(rest) {
                Some(n) if n <= max => {
                    if !v.is_empty() {
                        items.push((n, v.clone()));
                    }
                }
                Some(_) => return Err(ApiError::invalid_because(name, &format!("at most {max} items"))),
                None => return Err(ApiError::invalid(k)),
            }
        }
        items.sort();
        Ok(items.into_iter().map(|(_, v)| v).collect())
    }

    /// Like [`Params::list`], each item once: a list of resources to act on, where a repeated
    /// id would act twice on one resource.
    pub fn distinct_list(&self, name: &str, max: usize) -> Result<Vec<String>, ApiError> {
        let items = self.list(name, max)?;
        distinct(name, &items)?;
        Ok(items)
    }

    /// `Tag.N.Key` / `Tag.N.Value` pairs (N from 1 to `max`), in index order, as a filter: a key
    /// alone matches any value. Refused with the codes of ECS's tag errors: an index beyond `max`
    /// (`InvalidTagCount`), an empty or over-long key (`InvalidTagKey.Malformed`), an over-long
    /// value (`InvalidTagValue.Malformed`), a value without its key (`InvalidTag.Mismatch`).
    pub fn tags(&self, name: &str, max: usize) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let mut out: BTreeMap<usize, (Option<&String>, Option<&String>)> = BTreeMap::new();
        let prefix = format!("{name}.");
        for (k, v) in self.map.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            let Some((n, field)) = rest.split_once('.') else {
                return Err(ApiError::invalid(k));
            };
            let Some(n) = crate::api::canonical_index(n) else {
                return Err(ApiError::invalid(k));
            };
            if n > max {
                return Err(ApiError::new(
                    400,
                    "InvalidTagCount",
                    "The specified tags are beyond the permitted range.",
                ));
            }
            let e = out.entry(n).or_default();
            match field {
                "Key" => e.0 = Some(v),
                "Value" => e.1 = Some(v),
                _ => return Err(ApiError::invalid(k)),
            }
        }
        let mut tags = Vec::new();
        for (k, v) in out.into_values() {
            let Some(k) = k else {
                return Err(ApiError::new(
                    400,
                    "InvalidTag.Mismatch",
                    "The specified Tag.n.Key and Tag.n.Value are not match.",
                ));
            };
            if k.trim().is_empty() || k.chars().count() > 128 {
                return Err(tag_key_malformed());
            }
            if v.is_some_and(|v| v.chars().count() > 128) {
                return Err(tag_value_malformed());
            }
            tags.push((k.clone(), v.cloned()));
        }
        Ok(tags)
    }

    /// Tags to put on a resource: [`Params::tags`], and also refused are keys starting with
    /// `aliyun` or `acs:` or holding a URL (`InvalidTagKey.Malformed`), values holding a URL
    /// (`InvalidTagValue.Malformed`) and a key given twice (`Duplicate.TagKey`).
    pub fn resource_tags(&self, name: &str, max: usize) -> Result<Vec<(String, String)>, ApiError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in self.tags(name, max)? {
            let url = |s: &str| s.contains("http://") || s.contains("https://");
            if k.starts_with("aliyun") || k.starts_with("acs:") || url(&k) {
                return Err(tag_key_malformed());
            }
            let v = v.unwrap_or_default();
            if url(&v) {
                return Err(tag_value_malformed());
            }
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(ApiError::new(400, "Duplicate.TagKey", "The Tag.N.Key contain duplicate key."));
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// A JSON array of strings passed as one parameter (e.g. `InstanceIds=["i-1","i-2"]`).
    pub fn json_list(&self, name: &str, max: usize) -> Result<Option<Vec<String>>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let list: Vec<String> =
            serde_json::from_str(v).map_err(|_| ApiError::invalid_because(name, "must be a JSON array of strings"))?;
        if list.len() > max {
            return Err(ApiError::invalid_because(name, &format!("at most {max} items")));
        }
        Ok(Some(list))
    }
}

fn tag_key_malformed() -> ApiError {
    ApiError::new(400, "InvalidTagKey.Malformed", "The specified Tag.n.Key is not valid.")
}

fn tag_value_malformed() -> ApiError {
    ApiError::new(400, "InvalidTagValue.Malformed", "The specified Tag.n.Value is not valid.")
}

/// Refuse a list of resources naming one twice. (No code is documented for it; this is the
/// generic InvalidParameter.)
pub fn distinct(name: &str, items: &[String]) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(ApiError::invalid_because(name, &format!("{item} is given twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Params {
        Params::from_pairs(form_decode(q).expect("decodes")).expect("params")
    }

    #[test]
    fn decodes_like_a_form() {
        let x = p("Tag.1.Value=dev+test%2A~%2F&A=%E4%B8%AD&Empty=&Flag");
        assert_eq!(x.get("Tag.1.Value"), Some("dev test*~/"));
        assert_eq!(x.get("A"), Some("中"));
        assert_eq!(x.get("Empty"), None);
        assert!(form_decode("a=%zz").is_err());
        assert!(form_decode("a=%e4").is_err(), "not UTF-8");
        assert!(form_decode("a=%4").is_err());
    }

    #[test]
    fn names_are_exact_and_given_once() {
        let x = p("regionId=a&RegionId=b");
        assert_eq!(x.get("RegionId"), Some("b"));
        assert_eq!(x.get("regionid"), None);
        for twice in ["A=1&A=2", "A=1&A=1", "A=&A=x", "InstanceId.1=a&InstanceId.1=b"] {
            let e = Params::from_pairs(form_decode(twice).expect("decodes")).expect_err(twice);
            assert_eq!(e.code, "InvalidParameter", "{twice}");
            assert!(e.message.contains("given more than once"), "{}", e.message);
        }
        // The query and the form body of one request are one set of parameters.
        let both = form_decode("A=1").expect("query").into_iter().chain(form_decode("A=2").expect("body"));
        assert!(Params::from_pairs(both).is_err());
    }

    #[test]
    fn typed_accessors() {
        let x = p("B1=True&B2=false&B3=yes&N=5&Bad=5x&InstanceId.2=b&InstanceId.1=a&InstanceId.10=c");
        assert_eq!(x.bool("B1").expect("ok"), Some(true));
        assert_eq!(x.bool("B2").expect("ok"), Some(false));
        assert_eq!(x.bool("B3").expect_err("bad").code, "InvalidParameter");
        assert_eq!(x.int("N", 1, 10).expect("ok"), Some(5));
        assert!(x.int("N", 6, 10).is_err());
        assert!(x.int("Bad", 0, 10).is_err());
        assert_eq!(x.list("InstanceId", 100).expect("ok"), vec!["a", "b", "c"]);
        assert!(x.list("InstanceId", 2).is_err());
        assert_eq!(x.required("Nope").expect_err("missing").code, "MissingParameter");
    }

    #[test]
    fn tags_and_json_lists() {
        let x = p("Tag.1.Key=env&Tag.1.Value=dev&Tag.2.Key=team&Ids=%5B%22i-1%22%2C+%22i-2%22%5D");
        assert_eq!(
            x.tags("Tag", 20).expect("ok"),
            vec![("env".to_string(), Some("dev".to_string())), ("team".to_string(), None)]
        );
        assert_eq!(x.json_list("Ids", 100).expect("ok"), Some(vec!["i-1".to_string(), "i-2".to_string()]));
        assert!(p("Ids=notjson").json_list("Ids", 100).is_err());
        assert!(p("Ids=%5B%22i-1%22%2C+5%5D").json_list("Ids", 100).is_err(), "not all strings");
    }

    #[test]
    fn hostile_tags_are_refused_with_the_documented_codes() {
        let code = |q: &str| p(q).resource_tags("Tag", 20).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code("Tag.1.Key=env&Tag.1.Value=dev&Tag.2.Key=team"), Ok(()));
        assert_eq!(code("Tag.1.Key=env&Tag.1.Value="), Ok(()), "an empty value is a value");
        let long = "k".repeat(129);
        for (q, want) in [
            ("Tag.1.Key=", "InvalidTagKey.Malformed"),
            ("Tag.1.Key=+++&Tag.1.Value=x", "InvalidTagKey.Malformed"),
            (&format!("Tag.1.Key={long}") as &str, "InvalidTagKey.Malformed"),
            ("Tag.1.Key=aliyun-x", "InvalidTagKey.Malformed"),
            ("Tag.1.Key=acs%3Aecs", "InvalidTagKey.Malformed"),
            ("Tag.1.Key=see+http%3A%2F%2Fx", "InvalidTagKey.Malformed"),
            ("Tag.1.Key=k&Tag.1.Value=https%3A%2F%2Fx", "InvalidTagValue.Malformed"),
            (&format!("Tag.1.Key=k&Tag.1.Value={long}"), "InvalidTagValue.Malformed"),
            ("Tag.1.Value=x", "InvalidTag.Mismatch"),
            ("Tag.1.Key=a&Tag.2.Key=a", "Duplicate.TagKey"),
            ("Tag.21.Key=x", "InvalidTagCount"),
            ("Tag.0.Key=x", "InvalidParameter"),
            ("Tag.01.Key=x", "InvalidParameter"),
            ("Tag.x.Key=x", "InvalidParameter"),
            ("Tag.1.key=x", "InvalidParameter"),
            ("Tag.1=x", "InvalidParameter"),
        ] {
            assert_eq!(code(q), Err(want.to_string()), "{q}");
        }
        // As a filter, reserved keys and repeats are only names to look for.
        assert!(p("Tag.1.Key=acs%3Aecs&Tag.2.Key=acs%3Aecs").tags("Tag", 20).is_ok());
        assert_eq!(p("Tag.1.Value=x").tags("Tag", 20).map_err(|e| e.code), Err("InvalidTag.Mismatch".to_string()));
    }

    #[test]
    fn lists_take_canonical_indexes_and_distinct_lists_refuse_repeats() {
        assert_eq!(p("I.2=b&I.1=a&I.3=").list("I", 3).expect("ok"), ["a", "b"]);
        for bad in ["I.0=a", "I.01=a", "I.x=a", "I.4=a", "I.1.Key=a"] {
            assert!(p(bad).list("I", 3).is_err(), "{bad}");
        }
        assert!(p("I.1=a&I.2=a").list("I", 3).is_ok());
        assert!(p("I.1=a&I.2=a").distinct_list("I", 3).is_err());
    }

    #[test]
    fn numbers_and_times() {
        assert_eq!(p("M=1.5").decimal("M").expect("ok"), Some(1.5));
        for bad in ["M=-1", "M=NaN", "M=inf", "M=1e999", "M=x"] {
            assert!(p(bad).decimal("M").is_err(), "{bad}");
        }
        assert!(p("T=2026-01-02T03%3A04%3A05Z").timestamp("T").expect("ok").is_some());
        assert!(p("T=2026-01-02T03%3A04Z").timestamp("T").expect("ok").is_some());
        assert!(p("T=yesterday").timestamp("T").is_err());
        assert_eq!(p("ModuleList.2.Config=c").nth("ModuleList.N.Config", 2), Some("c"));
    }
}
