//! Writing answers. Every handler builds its answer once, as an ordered tree ([`Node`]); this
//! module writes that tree as JSON or as Alibaba Cloud's XML, whichever the request asked for
//! ([`Format::of_request`]). No action has a renderer of its own.
//!
//! The XML form is the gateway's: the `<?xml version="1.0" encoding="UTF-8"?>` declaration, a root
//! element named after the action (`<DescribeInstancesResponse>`, or `<Error>` for an error), one
//! element per field in the tree's order, and a list written as its items repeated under the
//! list's own name, so the JSON `{"Instances":{"Instance":[a,b]}}` is
//! `<Instances><Instance>a</Instance><Instance>b</Instance></Instances>`. An empty list writes
//! nothing (its wrapper stays, empty); booleans and numbers are written as their JSON text.
//!
//! `RequestId` goes where the tree puts [`Node::RequestId`] (real answers do not always start with
//! it), or first when the tree has none.

use std::borrow::Cow;
use std::io::Write;

use serde_json::Value;

use crate::error::ApiError;

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The `Content-Type` the gateway sends with it (the tea SDKs compare the XML one exactly).
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json;charset=utf-8",
            Format::Xml => "text/xml;charset=utf-8",
        }
    }

    /// The format a request asks for: its `Format` parameter (`JSON` or `XML`, any case) when it
    /// has one, else the first JSON or XML media type of its `Accept` header, else JSON. Another
    /// `Format` is refused with the gateway's `InvalidParameter.Format`.
    pub fn of_request(format: Option<&str>, accept: Option<&str>) -> Result<Format, ApiError> {
        match format.map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) if f.eq_ignore_ascii_case("json") => Ok(Format::Json),
            Some(f) if f.eq_ignore_ascii_case("xml") => Ok(Format::Xml),
            Some(_) => Err(ApiError::new(
                400,
                "InvalidParameter.Format",
                "The specified parameter \"Format\" is not valid: use JSON or XML.",
            )),
            None => Ok(accept.and_then(Format::of_accept).unwrap_or(Format::Json)),
        }
    }

    fn of_accept(accept: &str) -> Option<Format> {
        accept.split(',').find_map(|part| {
            let media = part.split(';').next().unwrap_or("").trim();
            if media.eq_ignore_ascii_case("application/json") || media.eq_ignore_ascii_case("text/json") {
                Some(Format::Json)
            } else if media.eq_ignore_ascii_case("application/xml") || media.eq_ignore_ascii_case("text/xml") {
                Some(Format::Xml)
            } else {
                None
            }
        })
    }
}

/// One answer, as a tree whose maps keep their fields in order. Text borrows where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Node<'a>>),
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
    /// The request's id, filled in when the answer is written.
    RequestId,
}

impl<'a> Node<'a> {
    /// An ECS wrapped list: `{"<item>": [..]}`.
    pub fn wrapped(item: &'static str, items: Vec<Node<'a>>) -> Node<'a> {
        Node::Map(vec![(Cow::Borrowed(item), Node::List(items))])
    }

    /// A field of a map, if this is one and has it.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Builds a map field by field, in order.
#[derive(Debug, Default)]
pub struct Obj<'a>(Vec<(Cow<'a, str>, Node<'a>)>);

impl<'a> Obj<'a> {
    pub fn with_capacity(n: usize) -> Obj<'a> {
        Obj(Vec::with_capacity(n))
    }

    pub fn put(mut self, key: &'static str, value: impl Into<Node<'a>>) -> Obj<'a> {
        self.0.push((Cow::Borrowed(key), value.into()));
        self
    }

    pub fn build(self) -> Node<'a> {
        Node::Map(self.0)
    }
}

impl<'a> From<Obj<'a>> for Node<'a> {
    fn from(o: Obj<'a>) -> Node<'a> {
        o.build()
    }
}

impl<'a> From<&'a str> for Node<'a> {
    fn from(s: &'a str) -> Node<'a> {
        Node::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Node<'_> {
    fn from(s: String) -> Self {
        Node::Str(Cow::Owned(s))
    }
}

impl<'a> From<Cow<'a, str>> for Node<'a> {
    fn from(s: Cow<'a, str>) -> Node<'a> {
        Node::Str(s)
    }
}

impl From<bool> for Node<'_> {
    fn from(b: bool) -> Self {
        Node::Bool(b)
    }
}

impl From<i64> for Node<'_> {
    fn from(n: i64) -> Self {
        Node::Int(n)
    }
}

impl From<u32> for Node<'_> {
    fn from(n: u32) -> Self {
        Node::UInt(n.into())
    }
}

impl From<u64> for Node<'_> {
    fn from(n: u64) -> Self {
        Node::UInt(n)
    }
}

impl From<usize> for Node<'_> {
    fn from(n: usize) -> Self {
        Node::UInt(n as u64)
    }
}

impl From<f64> for Node<'_> {
    fn from(x: f64) -> Self {
        Node::Float(x)
    }
}

impl<'a> From<Vec<Node<'a>>> for Node<'a> {
    fn from(items: Vec<Node<'a>>) -> Node<'a> {
        Node::List(items)
    }
}

impl From<Value> for Node<'static> {
    /// The same tree, fields in the value's order (the crate keeps JSON objects in insertion
    /// order); a field `RequestId` whose value is null is where the request id goes.
    fn from(v: Value) -> Node<'static> {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Node::Int(i),
                (None, Some(u)) => Node::UInt(u),
                (None, None) => Node::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Node::Str(Cow::Owned(s)),
            Value::Array(items) => Node::List(items.into_iter().map(Node::from).collect()),
            Value::Object(m) => Node::Map(
                m.into_iter()
                    .map(|(k, v)| {
                        let v = if k == "RequestId" && v.is_null() { Node::RequestId } else { Node::from(v) };
                        (Cow::Owned(k), v)
                    })
                    .collect(),
            ),
        }
    }
}

/// How one call's answer is written: in its format, as the answer to its action, with its
/// request id.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub format: Format,
    pub action: &'a str,
    pub request_id: &'a str,
}

impl Reply<'_> {
    pub fn write(&self, tree: &Node<'_>) -> Vec<u8> {
        answer(self.format, self.action, self.request_id, tree)
    }
}

/// Write `tree` as the answer to `action` (its XML root is `<{action}Response>`).
pub fn answer(format: Format, action: &str, request_id: &str, tree: &Node<'_>) -> Vec<u8> {
    match format {
        Format::Json => json_document(tree, request_id),
        Format::Xml => xml_document(&format!("{action}Response"), tree, request_id),
    }
}

/// Write an error's `tree` (its XML root is `<Error>`).
pub fn error(format: Format, request_id: &str, tree: &Node<'_>) -> Vec<u8> {
    match format {
        Format::Json => json_document(tree, request_id),
        Format::Xml => xml_document("Error", tree, request_id),
    }
}

fn has_request_id(entries: &[(Cow<'_, str>, Node<'_>)]) -> bool {
    entries.iter().any(|(k, v)| k == "RequestId" || matches!(v, Node::RequestId))
}

// ---- JSON -------------------------------------------------------------------------------------

fn json_document(tree: &Node<'_>, rid: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match tree {
        Node::Map(entries) if !has_request_id(entries) => {
            out.extend_from_slice(b"{\"RequestId\":");
            json_str(&mut out, rid);
            for (k, v) in entries {
                out.push(b',');
                json_str(&mut out, k);
                out.push(b':');
                json(&mut out, v, rid);
            }
            out.push(b'}');
        }
        other => json(&mut out, other, rid),
    }
    out
}

fn json(out: &mut Vec<u8>, n: &Node<'_>, rid: &str) {
    match n {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Int(i) => scalar(out, i),
        Node::UInt(u) => scalar(out, u),
        Node::Float(x) => scalar(out, x),
        Node::Str(s) => json_str(out, s),
        Node::RequestId => json_str(out, rid),
        Node::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json(out, item, rid);
            }
            out.push(b']');
        }
        Node::Map(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, k);
                out.push(b':');
                json(out, v, rid);
            }
            out.push(b'}');
        }
    }
}

/// A scalar as serde_json writes it (a float that is not finite becomes `null`).
fn scalar<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing numbers and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(out, v);
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    scalar(out, s);
}

// ---- XML --------------------------------------------------------------------------------------

const XML_DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

fn xml_document(root: &str, tree: &Node<'_>, rid: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(XML_DECLARATION);
    open(&mut out, root);
    match tree {
        Node::Map(entries) => {
            if !has_request_id(entries) {
                open(&mut out, "RequestId");
                xml_text(&mut out, rid);
                close(&mut out, "RequestId");
            }
            for (k, v) in entries {
                xml_member(&mut out, k, v, rid);
            }
        }
        other => xml_value(&mut out, other, rid),
    }
    close(&mut out, root);
    out
}

/// One field: an element named after it, or, for a list, one such element per item.
fn xml_member(out: &mut Vec<u8>, key: &str, n: &Node<'_>, rid: &str) {
    if let Node::List(items) = n {
        for item in items {
            xml_member(out, key, item, rid);
        }
        return;
    }
    let name = xml_name(key);
    match n {
        Node::Null => empty(out, &name),
        // Nothing inside (no fields, or only empty lists): `<Name/>`, as the gateway writes an
        // empty wrapped list.
        Node::Map(entries) if entries.iter().all(|(_, v)| matches!(v, Node::List(l) if l.is_empty())) => {
            empty(out, &name)
        }
        _ => {
            open(out, &name);
            xml_value(out, n, rid);
            close(out, &name);
        }
    }
}

/// The content of an element.
fn xml_value(out: &mut Vec<u8>, n: &Node<'_>, rid: &str) {
    match n {
        Node::Null => {}
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Int(i) => scalar(out, i),
        Node::UInt(u) => scalar(out, u),
        Node::Float(x) if x.is_finite() => scalar(out, x),
        Node::Float(_) => {}
        Node::Str(s) => xml_text(out, s),
        Node::RequestId => xml_text(out, rid),
        Node::Map(entries) => {
            for (k, v) in entries {
                xml_member(out, k, v, rid);
            }
        }
        // A list directly inside a list: its items under the same name.
        Node::List(items) => {
            for item in items {
                xml_value(out, item, rid);
            }
        }
    }
}

fn open(out: &mut Vec<u8>, name: &str) {
    let _ = write!(out, "<{name}>");
}

fn close(out: &mut Vec<u8>, name: &str) {
    let _ = write!(out, "</{name}>");
}

fn empty(out: &mut Vec<u8>, name: &str) {
    let _ = write!(out, "<{name}/>");
}

/// A field name as an XML element name: letters, digits, `_`, `-` and `.`, not starting with a
/// digit, `-` or `.`. Every name the actions use already is one; anything else is replaced by
/// `_`, so a key can never break the document.
fn xml_name(key: &str) -> Cow<'_, str> {
    let ok_first = |c: char| c == '_' || c.is_alphabetic();
    let ok_rest = |c: char| ok_first(c) || c.is_alphanumeric() || c == '-' || c == '.';
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if ok_first(c) && chars.all(ok_rest) => Cow::Borrowed(key),
        _ => {
            let mut s: String = key.chars().map(|c| if ok_rest(c) { c } else { '_' }).collect();
            if !s.starts_with(ok_first) {
                s.insert(0, '_');
            }
            Cow::Owned(s)
        }
    }
}

/// Text content: `&`, `<` and `>` escaped, a carriage return kept as `&#13;` (parsers would
/// fold it into a newline), and the characters XML 1.0 cannot carry at all (other control
/// characters, U+FFFE, U+FFFF) replaced by U+FFFD.
fn xml_text(out: &mut Vec<u8>, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: &[u8] = match c {
            '&' => b"&amp;",
            '<' => b"&lt;",
            '>' => b"&gt;",
            '\r' => b"&#13;",
            '\t' | '\n' => continue,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[start..i]);
        out.extend_from_slice(rep);
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn xml(tree: &Node<'_>) -> String {
        String::from_utf8(answer(Format::Xml, "Test", "RID", tree)).expect("UTF-8")
    }

    fn json_text(tree: &Node<'_>) -> String {
        String::from_utf8(answer(Format::Json, "Test", "RID", tree)).expect("UTF-8")
    }

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><TestResponse>";

    #[test]
    fn the_request_id_goes_first_unless_the_tree_places_it() {
        let tree = Node::from(json!({"B": 1, "A": "x"}));
        assert_eq!(json_text(&tree), r#"{"RequestId":"RID","B":1,"A":"x"}"#);
        assert_eq!(xml(&tree), format!("{HEAD}<RequestId>RID</RequestId><B>1</B><A>x</A></TestResponse>"));
        let placed = Node::from(json!({"B": 1, "RequestId": null, "A": "x"}));
        assert_eq!(json_text(&placed), r#"{"B":1,"RequestId":"RID","A":"x"}"#);
        assert_eq!(xml(&placed), format!("{HEAD}<B>1</B><RequestId>RID</RequestId><A>x</A></TestResponse>"));
        let empty = Node::Map(vec![]);
        assert_eq!(json_text(&empty), r#"{"RequestId":"RID"}"#);
        assert_eq!(xml(&empty), format!("{HEAD}<RequestId>RID</RequestId></TestResponse>"));
    }

    #[test]
    fn lists_repeat_their_items_under_the_list_name() {
        let tree = Node::from(json!({
            "Instances": {"Instance": [{"InstanceId": "i-1"}, {"InstanceId": "i-2"}]},
            "Ids": ["a", "b"],
            "Empty": {"Item": []},
            "Bare": [],
            "Total": 2,
        }));
        assert_eq!(
            xml(&tree),
            format!(
                "{HEAD}<RequestId>RID</RequestId><Instances><Instance><InstanceId>i-1</InstanceId></Instance>\
                 <Instance><InstanceId>i-2</InstanceId></Instance></Instances><Ids>a</Ids><Ids>b</Ids>\
                 <Empty/><Total>2</Total></TestResponse>"
            )
        );
        assert_eq!(
            json_text(&tree),
            r#"{"RequestId":"RID","Instances":{"Instance":[{"InstanceId":"i-1"},{"InstanceId":"i-2"}]},"Ids":["a","b"],"Empty":{"Item":[]},"Bare":[],"Total":2}"#
        );
    }

    #[test]
    fn nesting_scalars_and_nulls() {
        let tree = Node::from(json!({
            "A": {"B": {"C": true, "D": false}},
            "N": null,
            "F": 1.5,
            "Whole": 2.0,
            "Neg": -3,
            "Big": u64::MAX,
            "S": "",
        }));
        assert_eq!(
            xml(&tree),
            format!(
                "{HEAD}<RequestId>RID</RequestId><A><B><C>true</C><D>false</D></B></A><N/><F>1.5</F>\
                 <Whole>2.0</Whole><Neg>-3</Neg><Big>18446744073709551615</Big><S></S></TestResponse>"
            )
        );
        assert_eq!(
            json_text(&tree),
            r#"{"RequestId":"RID","A":{"B":{"C":true,"D":false}},"N":null,"F":1.5,"Whole":2.0,"Neg":-3,"Big":18446744073709551615,"S":""}"#
        );
        // Not finite: null in JSON, empty in XML (never `NaN`).
        let odd = Obj::default().put("X", f64::NAN).build();
        assert_eq!(json_text(&odd), r#"{"RequestId":"RID","X":null}"#);
        assert_eq!(xml(&odd), format!("{HEAD}<RequestId>RID</RequestId><X></X></TestResponse>"));
    }

    #[test]
    fn text_is_escaped() {
        let tree = Obj::default().put("T", "a<b>&c \"q\" 'a' \r\n\t\u{1b}\u{0}\u{FFFF} 中").build();
        let x = xml(&tree);
        assert!(x.contains("<T>a&lt;b&gt;&amp;c \"q\" 'a' &#13;\n\t\u{FFFD}\u{FFFD}\u{FFFD} 中</T>"), "{x}");
        let j = json_text(&tree);
        assert_eq!(
            serde_json::from_str::<Value>(&j).expect("JSON")["T"],
            "a<b>&c \"q\" 'a' \r\n\t\u{1b}\u{0}\u{FFFF} 中"
        );
        // A request id is text too.
        let out = String::from_utf8(answer(Format::Xml, "T", "<&>", &Node::Map(vec![]))).expect("UTF-8");
        assert!(out.contains("<RequestId>&lt;&amp;&gt;</RequestId>"), "{out}");
    }

    #[test]
    fn names_that_are_not_xml_names_are_mended() {
        assert_eq!(xml_name("InstanceId"), "InstanceId");
        assert_eq!(xml_name("supportedInstanceType"), "supportedInstanceType");
        assert_eq!(xml_name("a.b-c_d"), "a.b-c_d");
        assert_eq!(xml_name("2026"), "_2026");
        assert_eq!(xml_name("a b<c>"), "a_b_c_");
        assert_eq!(xml_name(""), "_");
        assert_eq!(xml_name("-x"), "_-x");
        let tree = Node::from(json!({"1": "x", "a b": "y"}));
        assert!(xml(&tree).contains("<_1>x</_1><a_b>y</a_b>"));
    }

    #[test]
    fn errors_have_their_own_root() {
        let tree = Node::from(json!({"RequestId": null, "HostId": "h", "Code": "C", "Message": "m<"}));
        let x = String::from_utf8(error(Format::Xml, "RID", &tree)).expect("UTF-8");
        assert_eq!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>RID</RequestId><HostId>h</HostId>\
             <Code>C</Code><Message>m&lt;</Message></Error>"
        );
        let j = String::from_utf8(error(Format::Json, "RID", &tree)).expect("UTF-8");
        assert_eq!(j, r#"{"RequestId":"RID","HostId":"h","Code":"C","Message":"m<"}"#);
    }

    #[test]
    fn formats_come_from_the_parameter_then_the_accept_header() {
        use Format::{Json, Xml};
        let f = |p: Option<&str>, a: Option<&str>| Format::of_request(p, a).map_err(|e| e.code);
        assert_eq!(f(None, None), Ok(Json));
        assert_eq!(f(Some("XML"), None), Ok(Xml));
        assert_eq!(f(Some("xml"), Some("application/json")), Ok(Xml));
        assert_eq!(f(Some("json"), Some("application/xml")), Ok(Json));
        assert_eq!(f(Some("Json"), None), Ok(Json));
        assert_eq!(f(Some(""), Some("application/xml")), Ok(Xml));
        assert_eq!(f(None, Some("text/xml; charset=utf-8")), Ok(Xml));
        assert_eq!(f(None, Some("*/*")), Ok(Json));
        assert_eq!(f(None, Some("text/html, application/xml;q=0.9")), Ok(Xml));
        assert_eq!(f(None, Some("application/json, text/xml")), Ok(Json));
        assert_eq!(f(Some("YAML"), None), Err("InvalidParameter.Format".to_string()));
        assert_eq!(Xml.content_type(), "text/xml;charset=utf-8");
    }
}
