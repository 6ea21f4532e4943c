//! The neutral request format every converter produces and every replay consumes, and its CSV.
//!
//! ```text
//! arrival_s,lifetime_s,vcpus,memory_gib[,tenant][,priority][,instance_type][,zone][,gpus][,deployment_set]
//! ```
//!
//! - `arrival_s`: seconds from the start of the trace, a decimal (`12`, `12.25`).
//! - `lifetime_s`: seconds the request holds its resources, a decimal; empty = still running at
//!   the end. Both are kept as whole milliseconds (rounded to the nearest, halves up), so ordering
//!   and replay never depend on floating point.
//! - `vcpus`, `memory_gib`, `gpus`: decimals; kept exactly as milli-CPUs, MiB (rounded to the
//!   nearest MiB) and milli-GPUs. `gpus` below 1 is a share of one GPU (0.46 = 46 %), 1 or more
//!   is a count of whole GPUs. Missing or empty `gpus` is 0.
//! - the other columns are optional; empty = none.
//!
//! The reader takes a header naming the four required columns plus any optional ones in any
//! order, or no header at all and 4 to 10 positional columns in the order above (a file is
//! headerless when its first field is a number). Requests come back sorted by arrival (in
//! milliseconds, after rounding), ties in file order. The writer always writes the header and all ten columns, numbers in their shortest
//! exact form, so write → read → write is byte-identical.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decimal::{format_scaled, parse_scaled};

/// One request for resources: what a replay asks the scheduler to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// Milliseconds from the start of the trace.
    pub arrival_ms: u64,
    /// Milliseconds the request holds its resources; `None`: still running when the trace ends.
    pub lifetime_ms: Option<u64>,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    /// 1000 = one whole GPU; 460 = 46 % of one GPU; 8000 = eight whole GPUs.
    pub gpu_milli: u64,
    pub tenant: Option<String>,
    /// Higher is more important.
    pub priority: Option<i32>,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub deployment_set: Option<String>,
}

impl TraceRequest {
    /// A request for CPU and memory only, with no GPU, tenant, priority, type, zone or set.
    /// Times are in milliseconds.
    pub fn new(arrival_ms: u64, lifetime_ms: Option<u64>, cpu_milli: u64, memory_mib: u64) -> TraceRequest {
        TraceRequest {
            arrival_ms,
            lifetime_ms,
            cpu_milli,
            memory_mib,
            gpu_milli: 0,
            tenant: None,
            priority: None,
            instance_type: None,
            zone: None,
            deployment_set: None,
        }
    }

    /// When it leaves, in milliseconds from the start; `None` when it is still running at the end.
    pub fn departure_ms(&self) -> Option<u64> {
        self.lifetime_ms.map(|l| self.arrival_ms.saturating_add(l))
    }
}

/// Milliseconds as seconds in JSON: a whole number when whole (`791374`), else a decimal with up to
/// three places (`12.25`), so reports of integer traces look as they always did.
pub fn serialize_ms_as_s<S: serde::Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    if ms.is_multiple_of(1000) {
        s.serialize_u64(ms / 1000)
    } else {
        // Below 2^53 ms the nearest f64 prints as the exact three-decimal text.
        s.serialize_f64(*ms as f64 / 1000.0)
    }
}

/// Counts a converter or a replay reports about a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    pub requests: u64,
    /// From the first arrival to the last, milliseconds (`span_s` in JSON, in seconds).
    #[serde(rename = "span_s", serialize_with = "serialize_ms_as_s")]
    pub span_ms: u64,
    /// Requests with no lifetime (still running at the end).
    pub still_running: u64,
}

impl TraceSummary {
    pub fn of(requests: &[TraceRequest]) -> TraceSummary {
        let first = requests.iter().map(|r| r.arrival_ms).min().unwrap_or(0);
        let last = requests.iter().map(|r| r.arrival_ms).max().unwrap_or(0);
        TraceSummary {
            requests: requests.len() as u64,
            span_ms: last - first,
            still_running: requests.iter().filter(|r| r.lifetime_ms.is_none()).count() as u64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("Cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Line {line}: {message}")]
    Line { line: u64, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    ArrivalS,
    LifetimeS,
    Vcpus,
    MemoryGib,
    Tenant,
    Priority,
    InstanceType,
    Zone,
    Gpus,
    DeploymentSet,
}

impl Column {
    /// Every column, in positional (and written) order.
    const ALL: [Column; 10] = [
        Column::ArrivalS,
        Column::LifetimeS,
        Column::Vcpus,
        Column::MemoryGib,
        Column::Tenant,
        Column::Priority,
        Column::InstanceType,
        Column::Zone,
        Column::Gpus,
        Column::DeploymentSet,
    ];
    const REQUIRED: usize = 4;

    fn name(self) -> &'static str {
        match self {
            Column::ArrivalS => "arrival_s",
            Column::LifetimeS => "lifetime_s",
            Column::Vcpus => "vcpus",
            Column::MemoryGib => "memory_gib",
            Column::Tenant => "tenant",
            Column::Priority => "priority",
            Column::InstanceType => "instance_type",
            Column::Zone => "zone",
            Column::Gpus => "gpus",
            Column::DeploymentSet => "deployment_set",
        }
    }

    fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// Parses a trace held in memory (see the module doc for the format).
pub fn parse_csv(text: &str) -> Result<Vec<TraceRequest>, TraceError> {
    parse_text(text, Path::new("<memory>"))
}

/// Reads a trace file; a name ending in `.gz` is decompressed first.
///
/// The text is read whole before parsing (the requests take several times its size anyway) so
/// that errors can name the exact line: the `csv` crate's own line numbers are off after blank
/// lines (rust-csv issue #208).
pub fn read_trace(path: &Path) -> Result<Vec<TraceRequest>, TraceError> {
    let read_err = |source| TraceError::Read { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(read_err)?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(BufReader::new(file)).read_to_string(&mut text).map_err(read_err)?;
    } else {
        BufReader::new(file).read_to_string(&mut text).map_err(read_err)?;
    }
    parse_text(&text, path)
}

/// What to call a trace in titles: its file name without directories, `.gz` or `.csv`
/// (`shared/azure.csv.gz` → `azure`).
pub fn trace_name(path: &Path) -> String {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.strip_suffix(".csv").unwrap_or(name).to_string()
}

/// The CSV text of `requests`: header and all columns, in the order given.
pub fn to_csv(requests: &[TraceRequest]) -> String {
    let mut out = header_line();
    for r in requests {
        push_row(&mut out, r);
    }
    out
}

/// Writes the CSV of `requests` (header and all columns, in the order given) to `writer`.
pub fn write_csv<W: Write>(mut writer: W, requests: &[TraceRequest]) -> io::Result<()> {
    writer.write_all(header_line().as_bytes())?;
    let mut line = String::with_capacity(128);
    for r in requests {
        line.clear();
        push_row(&mut line, r);
        writer.write_all(line.as_bytes())?;
    }
    writer.flush()
}

/// Writes `requests` to a file (see [`write_csv`]).
pub fn write_trace(path: &Path, requests: &[TraceRequest]) -> Result<(), TraceError> {
    let write_err = |source| TraceError::Write { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(write_err)?;
    write_csv(BufWriter::new(file), requests).map_err(write_err)
}

fn header_line() -> String {
    let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    format!("{}\n", names.join(","))
}

fn push_row(out: &mut String, r: &TraceRequest) {
    let text = |v: &Option<String>| v.as_deref().map(quote).unwrap_or_default();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{}",
        format_scaled(r.arrival_ms, 1000),
        r.lifetime_ms.map(|l| format_scaled(l, 1000)).unwrap_or_default(),
        format_scaled(r.cpu_milli, 1000),
        format_scaled(r.memory_mib, 1024),
        text(&r.tenant),
        r.priority.map(|p| p.to_string()).unwrap_or_default(),
        text(&r.instance_type),
        text(&r.zone),
        format_scaled(r.gpu_milli, 1000),
        text(&r.deployment_set),
    );
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn parse_text(text: &str, path: &Path) -> Result<Vec<TraceRequest>, TraceError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut layout: Option<Vec<Column>> = None;
    let mut requests = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, text, path)),
        }
        // Counting lines is linear in the offset, so only done for an error.
        let line = || record.position().map_or(0, |p| line_at(text, p.byte()));
        if first {
            first = false;
            let first_field = record.get(0).unwrap_or("").trim();
            if parse_scaled(first_field, 1000).is_err() {
                layout = Some(parse_header(&record, line())?);
                continue;
            }
        }
        let columns: &[Column] = match &layout {
            Some(columns) => {
                if record.len() != columns.len() {
                    return Err(line_err(line(), format!("Expected {} fields, found {}", columns.len(), record.len())));
                }
                columns
            }
            None => {
                if !(Column::REQUIRED..=Column::ALL.len()).contains(&record.len()) {
                    return Err(line_err(
                        line(),
                        format!(
                            "Expected {} to {} fields without a header, found {}",
                            Column::REQUIRED,
                            Column::ALL.len(),
                            record.len()
                        ),
                    ));
                }
                &Column::ALL[..record.len()]
            }
        };
        requests.push(parse_row(&record, columns).map_err(|message| line_err(line(), message))?);
    }
    requests.sort_by_key(|r| r.arrival_ms);
    Ok(requests)
}

fn parse_header(record: &csv::StringRecord, line: u64) -> Result<Vec<Column>, TraceError> {
    let mut columns = Vec::with_capacity(record.len());
    for name in record.iter() {
        let name = name.trim();
        let column = Column::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            line_err(line, format!("Unknown column {name:?} (known: {})", known.join(", ")))
        })?;
        if columns.contains(&column) {
            return Err(line_err(line, format!("Column {name:?} appears twice")));
        }
        columns.push(column);
    }
    if let Some(missing) = Column::ALL[..Column::REQUIRED].iter().find(|c| !columns.contains(c)) {
        return Err(line_err(line, format!("Missing required column {:?}", missing.name())));
    }
    Ok(columns)
}

fn parse_row(record: &csv::StringRecord, columns: &[Column]) -> Result<TraceRequest, String> {
    let mut r = TraceRequest::new(0, None, 0, 0);
    for (&column, raw) in columns.iter().zip(record.iter()) {
        let value = raw.trim();
        let bad = |e: String| format!("{}: {e}", column.name());
        let text = || (!raw.is_empty()).then(|| raw.to_string());
        match column {
            Column::ArrivalS => r.arrival_ms = parse_scaled(value, 1000).map_err(bad)?,
            Column::LifetimeS => {
                r.lifetime_ms = if value.is_empty() { None } else { Some(parse_scaled(value, 1000).map_err(bad)?) }
            }
            Column::Vcpus => r.cpu_milli = parse_scaled(value, 1000).map_err(bad)?,
            Column::MemoryGib => r.memory_mib = parse_scaled(value, 1024).map_err(bad)?,
            Column::Gpus => r.gpu_milli = if value.is_empty() { 0 } else { parse_scaled(value, 1000).map_err(bad)? },
            Column::Priority => {
                r.priority = if value.is_empty() {
                    None
                } else {
                    Some(value.parse::<i32>().map_err(|_| bad(format!("{value:?} is not an integer")))?)
                }
            }
            Column::Tenant => r.tenant = text(),
            Column::InstanceType => r.instance_type = text(),
            Column::Zone => r.zone = text(),
            Column::DeploymentSet => r.deployment_set = text(),
        }
    }
    Ok(r)
}

fn line_err(line: u64, message: String) -> TraceError {
    TraceError::Line { line, message }
}

/// The 1-based line of the record starting at `byte`, or at the first non-blank line after it.
fn line_at(text: &str, byte: u64) -> u64 {
    let start = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
    let skipped = text.as_bytes()[start..].iter().take_while(|b| matches!(b, b'\n' | b'\r')).count();
    let newlines = text.as_bytes()[..start + skipped].iter().filter(|&&b| b == b'\n').count();
    u64::try_from(newlines).unwrap_or(u64::MAX).saturating_add(1)
}

fn csv_error(e: csv::Error, text: &str, path: &Path) -> TraceError {
    let line = e.position().map_or(0, |p| line_at(text, p.byte()));
    match e.into_kind() {
        csv::ErrorKind::Io(source) => TraceError::Read { path: path.to_path_buf(), source },
        csv::ErrorKind::Utf8 { .. } => line_err(line, "Not valid UTF-8".to_string()),
        other => line_err(line, format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A request with times in whole seconds.
    fn req(arrival_s: u64, lifetime_s: Option<u64>, cpu_milli: u64, memory_mib: u64) -> TraceRequest {
        TraceRequest::new(arrival_s * 1000, lifetime_s.map(|l| l * 1000), cpu_milli, memory_mib)
    }

    #[test]
    fn reads_required_columns_and_converts_units() {
        let got = parse_csv("arrival_s,lifetime_s,vcpus,memory_gib\n10,300,0.5,1.75\n5,,2,4\n").expect("parses");
        assert_eq!(got, vec![req(5, None, 2000, 4096), req(10, Some(300), 500, 1792)]);
    }

    #[test]
    fn reads_optional_columns_in_any_order() {
        let text = "zone,gpus,memory_gib,tenant,arrival_s,vcpus,priority,lifetime_s,deployment_set,instance_type\n\
                    z1,0.46,8,acme,7,4,-2,60,ds-1,ecs.g7.xlarge\n\
                    ,,8,,8,4,,,,\n";
        let got = parse_csv(text).expect("parses");
        let mut want = req(7, Some(60), 4000, 8192);
        want.zone = Some("z1".into());
        want.gpu_milli = 460;
        want.tenant = Some("acme".into());
        want.priority = Some(-2);
        want.deployment_set = Some("ds-1".into());
        want.instance_type = Some("ecs.g7.xlarge".into());
        assert_eq!(got, vec![want, req(8, None, 4000, 8192)]);
    }

    #[test]
    fn reads_headerless_positional_columns() {
        let text = "3,10,1,2\n1,,1,2,t1\n2,5,1,2,t2,4,ecs.small,z9\n";
        let got = parse_csv(text).expect("parses");
        assert_eq!(got.iter().map(|r| r.arrival_ms).collect::<Vec<_>>(), vec![1000, 2000, 3000]);
        assert_eq!(got[0].tenant.as_deref(), Some("t1"));
        assert_eq!(got[1].priority, Some(4));
        assert_eq!(got[1].instance_type.as_deref(), Some("ecs.small"));
        assert_eq!(got[1].zone.as_deref(), Some("z9"));
        assert_eq!(got[2].tenant, None);
    }

    #[test]
    fn sorts_by_arrival_keeping_file_order_for_ties() {
        let got = parse_csv("5,1,1,1,b\n1,1,1,1,a\n5,1,1,1,c\n5,1,1,1,d\n").expect("parses");
        let tenants: Vec<_> = got.iter().map(|r| r.tenant.clone().unwrap_or_default()).collect();
        assert_eq!(tenants, ["a", "b", "c", "d"]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("arrival_s,lifetime_s,vcpus,memory_gib,colour\n", 1, "Unknown column \"colour\""),
            ("arrival_s,lifetime_s,vcpus\n", 1, "Missing required column \"memory_gib\""),
            ("arrival_s,lifetime_s,vcpus,memory_gib,zone,zone\n", 1, "appears twice"),
            ("arrival_s,lifetime_s,vcpus,memory_gib\n1,2,3,4\n\n1,2,x,4\n", 4, "vcpus"),
            ("arrival_s,lifetime_s,vcpus,memory_gib\n1,2,3\n", 2, "Expected 4 fields, found 3"),
            ("1,2,3,4\n1,2,3\n", 2, "Expected 4 to 10 fields"),
            ("1,2,3,4\n-1,2,3,4\n", 2, "arrival_s"),
            ("1,2,3,4,t,high\n", 1, "priority"),
            ("1,2,3,4\n\n\r\n\n1,2,3,x\n", 5, "memory_gib"),
            ("arrival_s,lifetime_s,vcpus,memory_gib\r\n1,2,3,4\r\n\r\n1,2,3\r\n", 4, "Expected 4 fields"),
            ("1,2,3,4,\"a\nb\"\n1,2,3,4,t,p\n", 3, "priority"),
        ];
        for (text, line, needle) in cases {
            match parse_csv(text) {
                Err(TraceError::Line { line: got, message }) => {
                    assert_eq!(got, line, "{text:?}: {message}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a line error, got {other:?}"),
            }
        }
    }

    #[test]
    fn fractional_seconds_are_kept_as_milliseconds() {
        let text =
            "arrival_s,lifetime_s,vcpus,memory_gib\n0.5,1.25,1,1\n12.3456,0.0004,1,1\n7,3600.0005,1,1\n.25,3.,1,1\n";
        let got = parse_csv(text).expect("parses");
        let times: Vec<(u64, Option<u64>)> = got.iter().map(|r| (r.arrival_ms, r.lifetime_ms)).collect();
        // 12.3456 s → 12,346 ms (nearest); 0.0004 s → 0 ms; 3,600.0005 s → 3,600,001 ms (halves up).
        assert_eq!(times, vec![(250, Some(3000)), (500, Some(1250)), (7000, Some(3_600_001)), (12_346, Some(0))]);
        // Headerless files may start with a fraction too.
        let got = parse_csv("1.5,2.5,1,1\n").expect("parses");
        assert_eq!((got[0].arrival_ms, got[0].lifetime_ms), (1500, Some(2500)));
    }

    /// Arrivals that round to the same millisecond are ties, kept in file order; nothing about
    /// the order depends on floating point, so the same text always gives the same requests.
    #[test]
    fn rounding_to_milliseconds_orders_deterministically() {
        let text = "arrival_s,lifetime_s,vcpus,memory_gib,tenant\n\
                    1.0004,1,1,1,a\n0.9995,1,1,1,b\n1.0001,1,1,1,c\n1,1,1,1,d\n0.9994,1,1,1,e\n1.0005,1,1,1,f\n";
        let got = parse_csv(text).expect("parses");
        let order: Vec<(u64, &str)> =
            got.iter().map(|r| (r.arrival_ms, r.tenant.as_deref().unwrap_or_default())).collect();
        assert_eq!(order, vec![(999, "e"), (1000, "a"), (1000, "b"), (1000, "c"), (1000, "d"), (1001, "f")]);
        assert_eq!(parse_csv(text).expect("parses"), got);
    }

    #[test]
    fn malformed_times_are_refused_naming_the_line() {
        let cases = [
            ("arrival_s,lifetime_s,vcpus,memory_gib\n1.5,2,1,1\n1.2.3,2,1,1\n", 3, "arrival_s: \"1.2.3\" is not"),
            ("arrival_s,lifetime_s,vcpus,memory_gib\n1,-2.5,1,1\n", 2, "lifetime_s: \"-2.5\" is not"),
            ("arrival_s,lifetime_s,vcpus,memory_gib\n1e3,2,1,1\n", 2, "arrival_s"),
            ("arrival_s,lifetime_s,vcpus,memory_gib\n1,nan,1,1\n", 2, "lifetime_s"),
            ("1.5,2,1,1\n2,1.0000000000000000001,1,1\n", 2, "more than 18 decimal places"),
        ];
        for (text, line, needle) in cases {
            match parse_csv(text) {
                Err(TraceError::Line { line: got, message }) => {
                    assert_eq!(got, line, "{text:?}: {message}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a line error, got {other:?}"),
            }
        }
    }

    #[test]
    fn times_are_written_in_their_shortest_exact_form() {
        let text =
            to_csv(&[TraceRequest::new(1500, Some(3_600_001), 1000, 1024), TraceRequest::new(2000, None, 1000, 1024)]);
        assert!(text.contains("\n1.5,3600.001,1,1,"), "{text}");
        assert!(text.contains("\n2,,1,1,"), "{text}");
        assert_eq!(to_csv(&parse_csv(&text).expect("parses")), text);
        let span = serde_json::to_string(&TraceSummary::of(&parse_csv(&text).expect("parses"))).expect("json");
        assert_eq!(span, r#"{"requests":2,"span_s":0.5,"still_running":1}"#);
    }

    #[test]
    fn traces_are_named_by_their_file() {
        assert_eq!(trace_name(Path::new("/data/traces/azure.csv.gz")), "azure");
        assert_eq!(trace_name(Path::new("gpu.csv")), "gpu");
        assert_eq!(trace_name(Path::new("requests.txt")), "requests.txt");
    }

    #[test]
    fn large_input_parses_in_linear_time() {
        // Quadratic work per row (e.g. counting lines from the start) would take minutes here.
        let rows: Vec<TraceRequest> = (0..200_000).map(|i| req(i, Some(i), 1000, 2048)).collect();
        let text = to_csv(&rows);
        assert_eq!(parse_csv(&text).expect("parses"), rows);
    }

    #[test]
    fn summary_counts() {
        let requests = [req(10, None, 1, 1), req(4, Some(1), 1, 1), req(90, Some(5), 1, 1)];
        assert_eq!(TraceSummary::of(&requests), TraceSummary { requests: 3, span_ms: 86_000, still_running: 1 });
        assert_eq!(TraceSummary::of(&[]), TraceSummary { requests: 0, span_ms: 0, still_running: 0 });
    }

    #[test]
    fn empty_input_is_an_empty_trace() {
        assert_eq!(parse_csv("").expect("parses"), vec![]);
        assert_eq!(parse_csv("arrival_s,lifetime_s,vcpus,memory_gib\n").expect("parses"), vec![]);
    }

    #[test]
    fn writes_every_column_without_float_noise() {
        let mut r = req(0, None, 500, 1792);
        r.gpu_milli = 460;
        r.tenant = Some("a,\"b\"".into());
        let text = to_csv(&[r, req(3, Some(7), 32000, 15258)]);
        assert_eq!(
            text,
            "arrival_s,lifetime_s,vcpus,memory_gib,tenant,priority,instance_type,zone,gpus,deployment_set\n\
             0,,0.5,1.75,\"a,\"\"b\"\"\",,,,0.46,\n\
             3,7,32,14.900390625,,,,,0,\n"
        );
    }

    #[test]
    fn files_round_trip_and_gz_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.csv");
        let requests = vec![req(1, Some(2), 3000, 4096), req(9, None, 250, 1)];
        write_trace(&path, &requests).expect("writes");
        assert_eq!(read_trace(&path).expect("reads"), requests);

        let gz = dir.path().join("t.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).expect("create"), flate2::Compression::fast());
        enc.write_all(to_csv(&requests).as_bytes()).expect("write");
        enc.finish().expect("finish");
        assert_eq!(read_trace(&gz).expect("reads gz"), requests);

        assert!(matches!(read_trace(&dir.path().join("missing.csv")), Err(TraceError::Read { .. })));
    }

    fn text_strategy() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-z0-9 ,\"-]{1,8}")
    }

    prop_compose! {
        fn arb_request()(
            arrival_ms in 0u64..1_000_000_000,
            lifetime_ms in proptest::option::of(0u64..1_000_000_000),
            cpu_milli in 0u64..1_000_000,
            memory_mib in 0u64..10_000_000,
            gpu_milli in 0u64..9000,
            tenant in text_strategy(),
            priority in proptest::option::of(any::<i32>()),
            instance_type in text_strategy(),
            zone in text_strategy(),
            deployment_set in text_strategy(),
        ) -> TraceRequest {
            TraceRequest {
                arrival_ms, lifetime_ms, cpu_milli, memory_mib, gpu_milli, tenant, priority, instance_type, zone,
                deployment_set,
            }
        }
    }

    proptest! {
        #[test]
        fn write_then_read_is_identity(mut requests in proptest::collection::vec(arb_request(), 0..20)) {
            requests.sort_by_key(|r| r.arrival_ms);
            let text = to_csv(&requests);
            let back = parse_csv(&text).expect("own output parses");
            prop_assert_eq!(&back, &requests);
            prop_assert_eq!(to_csv(&back), text);
        }
    }
}
