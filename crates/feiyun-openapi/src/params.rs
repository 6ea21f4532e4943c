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
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Params, ApiError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if v.len() > MAX_PARAM_LEN {
                return Err(ApiError::invalid_because(&k, "value too long"));
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

    /// One of a fixed set of values.
    pub fn choice<'a>(&self, name: &str, allowed: &[&'a str]) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => allowed.iter().find(|a| **a == v).copied().map(Some).ok_or_else(|| ApiError::invalid(name)),
        }
    }

    /// `Name.1`, `Name.2`, ... in index order (at most `max`).
    pub fn list(&self, name: &str, max: usize) -> Result<Vec<String>, ApiError> {
        let mut items: Vec<(usize, String)> = Vec::new();
        let prefix = format!("{name}.");
        for (k, v) in self.map.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            if let Ok(n) = rest.parse::<usize>() {
                if n == 0 {
                    return Err(ApiError::invalid(k));
                }
                if !v.is_empty() {
                    items.push((n, v.clone()));
                }
            }
        }
        items.sort();
        if items.len() > max {
            return Err(ApiError::invalid_because(name, &format!("at most {max} items")));
        }
        Ok(items.into_iter().map(|(_, v)| v).collect())
    }

    /// `Tag.N.Key` / `Tag.N.Value` pairs (N 1..=max), in index order.
    pub fn tags(&self, name: &str, max: usize) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let mut out: BTreeMap<usize, (Option<String>, Option<String>)> = BTreeMap::new();
        let prefix = format!("{name}.");
        for (k, v) in self.map.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            if n == 0 || n > max {
                return Err(ApiError::invalid_because(name, &format!("at most {max} tags")));
            }
            let e = out.entry(n).or_default();
            match field {
                "Key" => e.0 = Some(v.clone()),
                "Value" => e.1 = Some(v.clone()),
                _ => {}
            }
        }
        let mut tags = Vec::new();
        for (n, (k, v)) in out {
            match k {
                Some(k) if !k.is_empty() => {
                    if k.chars().count() > 128
                        || k.starts_with("aliyun")
                        || k.starts_with("acs:")
                        || k.contains("http://")
                        || k.contains("https://")
                    {
                        return Err(ApiError::invalid(&format!("{name}.{n}.Key")));
                    }
                    if v.as_ref().map(|v| v.chars().count() > 128).unwrap_or(false) {
                        return Err(ApiError::invalid(&format!("{name}.{n}.Value")));
                    }
                    tags.push((k, v));
                }
                _ => {
                    if v.is_some() {
                        return Err(ApiError::missing(&format!("{name}.{n}.Key")));
                    }
                }
            }
        }
        Ok(tags)
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
        assert!(p("Tag.21.Key=x").tags("Tag", 20).is_err());
        assert!(p("Tag.1.Value=x").tags("Tag", 20).is_err());
        assert!(p("Tag.1.Key=aliyun-x").tags("Tag", 20).is_err());
    }
}
