//! `--query PATH`: a small subset of JMESPath to pick values out of an answer.
//!
//! - `Key.Other` walks into objects (`"Key with.dots"` quotes a key);
//! - `[N]` takes an element of a list (`[-1]` is the last);
//! - `[*]` projects the rest of the path over each element of a list;
//! - `[]` flattens a list of lists one level, then projects the rest over each element.
//!
//! As in JMESPath, a projection leaves out the elements the rest of the path finds nothing in,
//! and a path that finds nothing is null.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
    Project,
    Flatten,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    text: String,
    steps: Vec<Step>,
}

/// Why a path does not parse: what was expected, and where (a character offset).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub path: String,
    pub at: usize,
    pub expected: &'static str,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read the path {:?}: expected {} at character {} (paths are like Instances.Instance[0].InstanceId, Items[].Id)",
            self.path,
            self.expected,
            self.at + 1
        )
    }
}

impl std::error::Error for QueryError {}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let chars: Vec<char> = text.chars().collect();
        let err = |at: usize, expected: &'static str| QueryError { path: text.to_string(), at, expected };
        let mut steps = Vec::new();
        let mut i = 0;
        let mut first = true;
        while i < chars.len() || first {
            if !first {
                match chars[i] {
                    '.' => {
                        i += 1;
                        if chars.get(i) == Some(&'[') {
                            return Err(err(i, "a key"));
                        }
                    }
                    '[' => {}
                    _ => return Err(err(i, "'.' or '['")),
                }
            }
            first = false;
            match chars.get(i) {
                Some('[') => {
                    let close = chars[i..].iter().position(|c| *c == ']').map(|p| p + i);
                    let Some(close) = close else { return Err(err(i, "']'")) };
                    let inner: String = chars[i + 1..close].iter().collect();
                    steps.push(match inner.as_str() {
                        "" => Step::Flatten,
                        "*" => Step::Project,
                        n => Step::Index(n.parse().map_err(|_| err(i + 1, "an index, '*' or nothing"))?),
                    });
                    i = close + 1;
                }
                Some('"') => {
                    let close = chars[i + 1..].iter().position(|c| *c == '"').map(|p| p + i + 1);
                    let Some(close) = close else { return Err(err(i, "a closing '\"'")) };
                    steps.push(Step::Key(chars[i + 1..close].iter().collect()));
                    i = close + 1;
                }
                Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                    let start = i;
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    steps.push(Step::Key(chars[start..i].iter().collect()));
                }
                _ => return Err(err(i, "a key")),
            }
        }
        Ok(Query { text: text.to_string(), steps })
    }

    /// The value the path finds in `v` (null when it finds nothing).
    pub fn eval(&self, v: &Value) -> Value {
        eval(v, &self.steps)
    }
}

fn eval(v: &Value, steps: &[Step]) -> Value {
    // A flatten ends the projections to its left: evaluate them, flatten, project the rest.
    if let Some(k) = steps.iter().rposition(|s| *s == Step::Flatten) {
        let Value::Array(left) = eval(v, &steps[..k]) else { return Value::Null };
        let mut flat = Vec::new();
        for e in left {
            match e {
                Value::Array(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        return project(&flat, &steps[k + 1..]);
    }
    let mut cur = v;
    for (i, step) in steps.iter().enumerate() {
        cur = match step {
            Step::Key(k) => match cur.get(k.as_str()) {
                Some(x) => x,
                None => return Value::Null,
            },
            Step::Index(n) => {
                let Value::Array(a) = cur else { return Value::Null };
                let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                match usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    Some(x) => x,
                    None => return Value::Null,
                }
            }
            Step::Project => {
                let Value::Array(a) = cur else { return Value::Null };
                return project(a, &steps[i + 1..]);
            }
            Step::Flatten => unreachable!("flattens are taken first"),
        };
    }
    cur.clone()
}

fn project(items: &[Value], rest: &[Step]) -> Value {
    Value::Array(items.iter().map(|e| eval(e, rest)).filter(|r| !r.is_null()).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn q(path: &str, v: &Value) -> Value {
        Query::parse(path).expect(path).eval(v)
    }

    #[test]
    fn keys_indexes_and_projections() {
        let v = json!({
            "InstanceIdSets": {"InstanceIdSet": ["i-1", "i-2"]},
            "Instances": {"Instance": [
                {"InstanceId": "i-1", "Status": "Running", "Tags": {"Tag": [{"Key": "a"}, {"Key": "b"}]}},
                {"InstanceId": "i-2", "Status": "Stopped", "Tags": {"Tag": []}},
                {"InstanceId": "i-3"}
            ]},
            "TotalCount": 3,
            "odd.key": true
        });
        assert_eq!(q("InstanceIdSets.InstanceIdSet[0]", &v), json!("i-1"));
        assert_eq!(q("InstanceIdSets.InstanceIdSet[-1]", &v), json!("i-2"));
        assert_eq!(q("InstanceIdSets.InstanceIdSet[5]", &v), Value::Null);
        assert_eq!(q("TotalCount", &v), json!(3));
        assert_eq!(q("\"odd.key\"", &v), json!(true));
        assert_eq!(q("Instances.Instance[].InstanceId", &v), json!(["i-1", "i-2", "i-3"]));
        assert_eq!(q("Instances.Instance[*].Status", &v), json!(["Running", "Stopped"]), "nulls are left out");
        assert_eq!(q("Instances.Instance[0].Tags.Tag[1].Key", &v), json!("b"));
        // A projection inside a projection nests; a flatten after it makes one list.
        assert_eq!(q("Instances.Instance[*].Tags.Tag[*].Key", &v), json!([["a", "b"], []]));
        assert_eq!(q("Instances.Instance[].Tags.Tag[].Key", &v), json!(["a", "b"]));
        // An index inside a projection applies to each element.
        assert_eq!(q("Instances.Instance[].Tags.Tag[0].Key", &v), json!(["a"]));
        assert_eq!(q("Missing.Path", &v), Value::Null);
        assert_eq!(q("TotalCount[0]", &v), Value::Null);
        assert_eq!(q("TotalCount[]", &v), Value::Null);
        assert_eq!(q("[1]", &json!(["x", "y"])), json!("y"));
        assert_eq!(q("[]", &json!([[1, 2], [3], 4])), json!([1, 2, 3, 4]));
    }

    #[test]
    fn malformed_paths_say_where() {
        for (bad, at) in [
            ("", 0),
            ("a..b", 2),
            ("a.", 2),
            ("a[", 1),
            ("a[x]", 2),
            ("a b", 1),
            (".a", 0),
            ("a.[0]", 2),
            ("\"a", 0),
            ("9a", 0),
        ] {
            let e = Query::parse(bad).expect_err(bad);
            assert_eq!(e.at, at, "{bad}: {e}");
            assert!(e.to_string().contains("expected"), "{e}");
        }
    }
}
