//! Converters from public traces into [`TraceRequest`]s, and the Alibaba host inventory.
//!
//! The rules (documented per function, and in `docs/replay.md`) were chosen after reading the
//! data, not only the upstream description; each function says what it found. Inputs are streamed
//! row by row; a malformed row is an error naming its line, never skipped silently.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::decimal::parse_scaled;
use crate::fleet::HostShape;
use crate::trace::TraceRequest;

/// Width of an Azure arrival bin: a VM arrived in `(arrival_bin_end_s - 300, arrival_bin_end_s]`.
pub const AZURE_ARRIVAL_BIN_S: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("Cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} has no column {column:?}", path.display())]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("{} line {line}: {message}", path.display())]
    Line { path: PathBuf, line: u64, message: String },
    #[error("{} has no rows of split {split:?}", path.display())]
    NoSuchSplit { path: PathBuf, split: String },
}

/// How to turn the Azure 2017 VM trace into requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureOptions {
    /// Seeds the `StdRng` that places arrivals within their bin and lifetimes within theirs.
    pub seed: u64,
    /// Which splits to keep (`dev`, `test`). Default: both, on one timeline — they share the
    /// trace clock and `test` starts where `dev` ends (dev arrivals 1,800,000–2,099,700 s,
    /// censored at 2,100,000; test arrivals 2,100,000–2,591,100, censored at 2,591,400).
    pub splits: Vec<String>,
}

impl Default for AzureOptions {
    fn default() -> Self {
        AzureOptions { seed: 0, splits: vec!["dev".to_string(), "test".to_string()] }
    }
}

/// One host of the Alibaba GPU cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The node's serial (`sn`), e.g. `openb-node-0227`.
    pub name: String,
    pub shape: HostShape,
}

/// Reads the Azure Public Dataset V1 (2017) VM trace (`vms.csv.gz`; gzip when the name ends in
/// `.gz`). See [`azure_2017_from_reader`] for the rules.
pub fn azure_2017(path: &Path, options: &AzureOptions) -> Result<Vec<TraceRequest>, ConvertError> {
    let file = File::open(path).map_err(|source| ConvertError::Read { path: path.to_path_buf(), source })?;
    if path.extension().is_some_and(|e| e == "gz") {
        azure_rows(flate2::read::MultiGzDecoder::new(BufReader::new(file)), path, options)
    } else {
        azure_rows(BufReader::new(file), path, options)
    }
}

/// The Azure 2017 VM trace, uncompressed CSV text, into requests. For each row of a chosen split,
/// in file order, one seeded `StdRng` draws two integers:
///
/// - `offset` uniform in `[0, 300)`; `arrival = arrival_bin_end_s - offset` (the VM arrived in
///   the 5-minute window ending at `arrival_bin_end_s`);
/// - `drawn` uniform in `[duration_bin_lo_s, duration_bin_hi_s]` (inclusive; bins 0–12 have
///   `lo == hi`); `lifetime = drawn`, except that a row with `duration_censored = 1` was still
///   running when its split's observation ended and gets no lifetime ("still running at
///   the end"), not `censor_time_s - arrival`: the true lifetime is unknown and at least that
///   long, and cutting it short would free capacity the VM really held. With both splits on one
///   timeline a censored `dev` VM therefore runs through the `test` window too (an upper bound).
///   Both numbers are drawn for every row, censored or not, so one row's draws never depend on
///   another's censoring.
///
/// Then every arrival is shifted so the earliest is 0, and requests are sorted stably by arrival.
/// `cpu_milli = vcpu × 1000`; `memory_mib = memory_gb × 1024` (Azure's "GB" sizes are GiB:
/// 1.75 → 1792 MiB); `tenant = "<split>-<tenant_batch_seq>"` (VMs that arrived together from
/// one tenant); no GPUs, priority, instance type, zone or deployment set. Same seed and input
/// give the same requests (for the pinned `rand` 0.8, whose `StdRng` is ChaCha12).
pub fn azure_2017_from_reader<R: Read>(reader: R, options: &AzureOptions) -> Result<Vec<TraceRequest>, ConvertError> {
    azure_rows(reader, Path::new("<input>"), options)
}

fn azure_rows<R: Read>(reader: R, path: &Path, options: &AzureOptions) -> Result<Vec<TraceRequest>, ConvertError> {
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    let columns = Columns::new(&mut csv, path)?;
    let col = |name| columns.index(name, path);
    let (split_i, end_i, batch_i) = (col("split")?, col("arrival_bin_end_s")?, col("tenant_batch_seq")?);
    let (vcpu_i, mem_i, censored_i) = (col("vcpu")?, col("memory_gb")?, col("duration_censored")?);
    let (lo_i, hi_i) = (col("duration_bin_lo_s")?, col("duration_bin_hi_s")?);

    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut seen = vec![false; options.splits.len()];
    let mut requests = Vec::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut csv, &mut record, path)? {
        let row = Row { record: &record, path };
        let split = row.text(split_i);
        let Some(which) = options.splits.iter().position(|s| s == split) else { continue };
        seen[which] = true;
        let bin_end = row.int(end_i, "arrival_bin_end_s")?;
        let cpu_milli = row.scaled(vcpu_i, "vcpu", 1000)?;
        let memory_mib = row.scaled(mem_i, "memory_gb", 1024)?;
        let censored = match row.text(censored_i) {
            "0" => false,
            "1" => true,
            other => return Err(row.error(format!("duration_censored is {other:?}, expected 0 or 1"))),
        };
        let (lo, hi) = (row.int(lo_i, "duration_bin_lo_s")?, row.int(hi_i, "duration_bin_hi_s")?);
        if lo > hi {
            return Err(row.error(format!("duration bin [{lo}, {hi}] is empty")));
        }
        let offset = rng.gen_range(0..AZURE_ARRIVAL_BIN_S);
        let drawn = rng.gen_range(lo..=hi);
        requests.push(TraceRequest {
            arrival_ms: bin_end.saturating_sub(offset).saturating_mul(1000),
            lifetime_ms: (!censored).then_some(drawn.saturating_mul(1000)),
            cpu_milli,
            memory_mib,
            gpu_milli: 0,
            tenant: Some(format!("{split}-{}", row.text(batch_i))),
            priority: None,
            instance_type: None,
            zone: None,
            deployment_set: None,
        });
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(ConvertError::NoSuchSplit { path: path.to_path_buf(), split: options.splits[i].clone() });
    }
    Ok(normalise(requests))
}

/// Reads Alibaba's cluster-trace-gpu-v2023 pod list (`openb_pod_list_*.csv`). See
/// [`alibaba_gpu_2023_from_reader`] for the rules.
pub fn alibaba_gpu_2023(path: &Path) -> Result<Vec<TraceRequest>, ConvertError> {
    let file = File::open(path).map_err(|source| ConvertError::Read { path: path.to_path_buf(), source })?;
    alibaba_pods(BufReader::new(file), path)
}

/// Alibaba's GPU pod list into requests, one per pod, none skipped:
///
/// - `arrival = creation_time`, shifted so the earliest is 0 (it already is in the default list).
///   Times are seconds; decimals are read to the millisecond (the default list has whole seconds).
/// - `lifetime = deletion_time - creation_time` (the time the pod held its request, including the
///   seconds it waited to be scheduled: median 2 s). `deletion_time` equal to the largest one in
///   the file is the end of observation, not a deletion: those pods (34 in the default list, all
///   `Running`, and every creation is earlier) get `None`, as does an empty or `nan` deletion
///   time. A deletion before creation is an error.
/// - Pods that never got scheduled (`Pending`, empty `scheduled_time`: 897 in the default list)
///   are kept: their demand was real even though the cluster did not place them; their lifetime
///   is how long they waited before being withdrawn (median 94 s).
/// - `cpu_milli`, `memory_mib` as given. `gpu_milli = num_gpu × gpu_milli`: upstream's
///   `gpu_milli` is the share of *each* GPU and is below 1000 only for single-GPU (sharing) pods
///   — the data agrees (every pod with `num_gpu > 1` has 1000) — so 1 × 460 is 46 % of one GPU
///   and 8 × 1000 is eight whole GPUs. Other combinations are errors.
/// - `priority` from `qos`: `Guaranteed` 3, `LS` (latency-sensitive) 2, `Burstable` 1, `BE`
///   (best effort) 0; empty → none; anything else is an error.
/// - `gpu_spec` (GPU model constraint) has no place in the neutral format and is dropped; it is
///   empty in the default list. `pod_phase` and `scheduled_time` are only used as described.
///   No tenant, instance type, zone or deployment set.
pub fn alibaba_gpu_2023_from_reader<R: Read>(reader: R) -> Result<Vec<TraceRequest>, ConvertError> {
    alibaba_pods(reader, Path::new("<input>"))
}

fn alibaba_pods<R: Read>(reader: R, path: &Path) -> Result<Vec<TraceRequest>, ConvertError> {
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    let columns = Columns::new(&mut csv, path)?;
    let col = |name| columns.index(name, path);
    let (cpu_i, mem_i, num_gpu_i, gpu_milli_i) =
        (col("cpu_milli")?, col("memory_mib")?, col("num_gpu")?, col("gpu_milli")?);
    let (qos_i, created_i, deleted_i) = (col("qos")?, col("creation_time")?, col("deletion_time")?);

    // Deletion times are kept aside until the end of observation (the largest) is known.
    let mut pods: Vec<(TraceRequest, Option<u64>)> = Vec::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut csv, &mut record, path)? {
        let row = Row { record: &record, path };
        let created = row.scaled(created_i, "creation_time", 1000)?;
        let deleted = match row.text(deleted_i) {
            "" | "nan" => None,
            _ => Some(row.scaled(deleted_i, "deletion_time", 1000)?),
        };
        if deleted.is_some_and(|d| d < created) {
            return Err(row.error(format!(
                "deletion_time {} is before creation_time {}",
                row.text(deleted_i),
                row.text(created_i)
            )));
        }
        let num_gpu = row.int(num_gpu_i, "num_gpu")?;
        let per_gpu = row.int(gpu_milli_i, "gpu_milli")?;
        let gpu_milli = match (num_gpu, per_gpu) {
            (0, _) => 0,
            (1, 1..=1000) | (_, 1000) => num_gpu.saturating_mul(per_gpu),
            _ => {
                return Err(row
                    .error(format!("num_gpu {num_gpu} with gpu_milli {per_gpu} (a share is only valid for one GPU)")))
            }
        };
        let priority = match row.text(qos_i) {
            "Guaranteed" => Some(3),
            "LS" => Some(2),
            "Burstable" => Some(1),
            "BE" => Some(0),
            "" => None,
            other => return Err(row.error(format!("unknown qos {other:?}"))),
        };
        let request = TraceRequest {
            arrival_ms: created,
            lifetime_ms: None,
            cpu_milli: row.int(cpu_i, "cpu_milli")?,
            memory_mib: row.int(mem_i, "memory_mib")?,
            gpu_milli,
            tenant: None,
            priority,
            instance_type: None,
            zone: None,
            deployment_set: None,
        };
        pods.push((request, deleted));
    }
    let observation_end = pods.iter().filter_map(|(_, deleted)| *deleted).max();
    let requests = pods
        .into_iter()
        .map(|(mut request, deleted)| {
            request.lifetime_ms =
                deleted.filter(|&d| Some(d) != observation_end).map(|d| d.saturating_sub(request.arrival_ms));
            request
        })
        .collect();
    Ok(normalise(requests))
}

/// Reads Alibaba's node list (`openb_node_list_all_node.csv` or `_gpu_node.csv`): columns `sn`,
/// `cpu_milli`, `memory_mib`, `gpu` (whole GPUs) and `model` (empty or `nan` for CPU-only nodes;
/// G1–G3 are undisclosed models). No zones.
pub fn alibaba_nodes(path: &Path) -> Result<Vec<HostSpec>, ConvertError> {
    let file = File::open(path).map_err(|source| ConvertError::Read { path: path.to_path_buf(), source })?;
    let mut csv = csv::ReaderBuilder::new().from_reader(BufReader::new(file));
    let columns = Columns::new(&mut csv, path)?;
    let col = |name| columns.index(name, path);
    let (sn_i, cpu_i, mem_i, gpu_i, model_i) =
        (col("sn")?, col("cpu_milli")?, col("memory_mib")?, col("gpu")?, col("model")?);
    let mut hosts = Vec::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut csv, &mut record, path)? {
        let row = Row { record: &record, path };
        let gpus = u32::try_from(row.int(gpu_i, "gpu")?).map_err(|_| row.error("gpu is too large".to_string()))?;
        let gpu_model = match row.text(model_i) {
            "" | "nan" => None,
            _ if gpus == 0 => None,
            model => Some(model.to_string()),
        };
        hosts.push(HostSpec {
            name: row.text(sn_i).to_string(),
            shape: HostShape {
                cpu_milli: row.int(cpu_i, "cpu_milli")?,
                memory_mib: row.int(mem_i, "memory_mib")?,
                gpus,
                gpu_model,
                zone: None,
            },
        });
    }
    Ok(hosts)
}

/// Shifts arrivals so the earliest is 0 and sorts stably by arrival.
fn normalise(mut requests: Vec<TraceRequest>) -> Vec<TraceRequest> {
    if let Some(start) = requests.iter().map(|r| r.arrival_ms).min() {
        for r in &mut requests {
            r.arrival_ms -= start;
        }
    }
    requests.sort_by_key(|r| r.arrival_ms);
    requests
}

/// Header name → position.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn new<R: Read>(csv: &mut csv::Reader<R>, path: &Path) -> Result<Columns, ConvertError> {
        let headers = csv.headers().map_err(|e| csv_error(e, path))?;
        Ok(Columns(headers.iter().enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect()))
    }

    fn index(&self, column: &'static str, path: &Path) -> Result<usize, ConvertError> {
        self.0.get(column).copied().ok_or_else(|| ConvertError::MissingColumn { path: path.to_path_buf(), column })
    }
}

/// One data row and where it came from, for error messages.
struct Row<'a> {
    record: &'a csv::StringRecord,
    path: &'a Path,
}

impl Row<'_> {
    fn text(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("").trim()
    }

    fn int(&self, i: usize, name: &str) -> Result<u64, ConvertError> {
        let text = self.text(i);
        text.parse().map_err(|_| self.error(format!("{name} {text:?} is not a non-negative integer")))
    }

    fn scaled(&self, i: usize, name: &str, unit: u64) -> Result<u64, ConvertError> {
        parse_scaled(self.text(i), unit).map_err(|e| self.error(format!("{name}: {e}")))
    }

    fn error(&self, message: String) -> ConvertError {
        let line = self.record.position().map_or(0, |p| p.line());
        ConvertError::Line { path: self.path.to_path_buf(), line, message }
    }
}

fn read_record<R: Read>(
    csv: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
    path: &Path,
) -> Result<bool, ConvertError> {
    csv.read_record(record).map_err(|e| csv_error(e, path))
}

fn csv_error(e: csv::Error, path: &Path) -> ConvertError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ConvertError::Read { path: path.to_path_buf(), source },
        csv::ErrorKind::Utf8 { .. } => {
            ConvertError::Line { path: path.to_path_buf(), line, message: "not valid UTF-8".to_string() }
        }
        other => ConvertError::Line { path: path.to_path_buf(), line, message: format!("{other:?}") },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const AZURE: &str = "split,vm_seq,arrival_bin_end_s,tenant_batch_seq,flavor,vcpu,memory_gb,duration_censored,duration_bin,duration_bin_lo_s,duration_bin_hi_s,censor_time_s
dev,0,1800000,0,m,8,14.0,0,1,300,300,2100000
dev,1,1800300,1,b,1,1.75,0,36,86700,172800,2100000
dev,2,1800300,1,b,1,1.75,1,13,3900,7200,2100000
test,0,2100000,0,g,2,3.5,0,0,0,0,2591400
";

    fn azure(options: &AzureOptions) -> Result<Vec<TraceRequest>, ConvertError> {
        azure_2017_from_reader(AZURE.as_bytes(), options)
    }

    #[test]
    fn azure_rows_follow_the_documented_rules() {
        let got = azure(&AzureOptions { seed: 7, ..AzureOptions::default() }).expect("converts");
        assert_eq!(got.len(), 4);
        assert_eq!(got.iter().map(|r| r.arrival_ms).min(), Some(0), "normalised");
        assert!(got.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms), "sorted");

        let by_tenant = |t: &str| got.iter().filter(|r| r.tenant.as_deref() == Some(t)).collect::<Vec<_>>();
        let first = by_tenant("dev-0")[0];
        assert_eq!((first.cpu_milli, first.memory_mib, first.lifetime_ms), (8000, 14336, Some(300_000)));
        let batch = by_tenant("dev-1");
        assert_eq!(batch.len(), 2);
        let long = batch.iter().find(|r| r.lifetime_ms.is_some()).expect("uncensored");
        let lifetime_ms = long.lifetime_ms.unwrap_or(0);
        assert!((86_700_000..=172_800_000).contains(&lifetime_ms) && lifetime_ms % 1000 == 0, "{lifetime_ms}");
        assert_eq!((long.cpu_milli, long.memory_mib), (1000, 1792));
        assert!(batch.iter().any(|r| r.lifetime_ms.is_none()), "censored → still running");
        assert_eq!(by_tenant("test-0")[0].lifetime_ms, Some(0));
    }

    #[test]
    fn azure_arrivals_stay_within_their_bins() {
        for seed in 0..50 {
            let got = azure(&AzureOptions { seed, splits: vec!["dev".into(), "test".into()] }).expect("converts");
            // The earliest arrival m is in [1799701, 1800000]; dev-0 arrives in that bin and
            // test-0 in [2099701, 2100000], so after subtracting m:
            let dev0 = got.iter().find(|r| r.tenant.as_deref() == Some("dev-0")).expect("dev row");
            let test0 = got.iter().find(|r| r.tenant.as_deref() == Some("test-0")).expect("test row");
            assert!(dev0.arrival_ms <= 299_000, "seed {seed}: {}", dev0.arrival_ms);
            assert!((299_701_000..=300_299_000).contains(&test0.arrival_ms), "seed {seed}: {}", test0.arrival_ms);
        }
    }

    #[test]
    fn azure_is_reproducible_and_seed_dependent() {
        let a = azure(&AzureOptions { seed: 1, ..AzureOptions::default() }).expect("converts");
        let b = azure(&AzureOptions { seed: 1, ..AzureOptions::default() }).expect("converts");
        assert_eq!(a, b);
        let differs =
            (2..20).any(|seed| azure(&AzureOptions { seed, ..AzureOptions::default() }).ok() != Some(a.clone()));
        assert!(differs);
    }

    #[test]
    fn azure_split_selection() {
        let dev = azure(&AzureOptions { seed: 1, splits: vec!["dev".into()] }).expect("converts");
        assert_eq!(dev.len(), 3);
        assert!(dev.iter().all(|r| r.tenant.as_deref().is_some_and(|t| t.starts_with("dev-"))));
        let test = azure(&AzureOptions { seed: 1, splits: vec!["test".into()] }).expect("converts");
        assert_eq!(test.len(), 1);
        assert_eq!(test[0].arrival_ms, 0);
        assert!(matches!(
            azure(&AzureOptions { seed: 1, splits: vec!["train".into()] }),
            Err(ConvertError::NoSuchSplit { split, .. }) if split == "train"
        ));
    }

    #[test]
    fn azure_bad_rows_name_their_line() {
        let bad = AZURE.replace("dev,2,1800300,1,b,1,1.75,1,", "dev,2,1800300,1,b,1,1.75,yes,");
        match azure_2017_from_reader(bad.as_bytes(), &AzureOptions::default()) {
            Err(ConvertError::Line { line: 4, message, .. }) => assert!(message.contains("duration_censored")),
            other => panic!("{other:?}"),
        }
        let missing = "split,vm_seq\ndev,0\n";
        assert!(matches!(
            azure_2017_from_reader(missing.as_bytes(), &AzureOptions::default()),
            Err(ConvertError::MissingColumn { column: "arrival_bin_end_s", .. })
        ));
    }

    const PODS: &str =
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p0,12000,16384,1,1000,,LS,Running,100,5000,100
p1,6000,12288,1,460,,BE,Pending,200,294,
p2,88000,327680,8,1000,,Burstable,Succeeded,150,9000,152
p3,4000,15258,0,0,,Guaranteed,Running,300,9000,300
p4,2000,4096,0,0,,,Failed,300,300,300
";

    #[test]
    fn alibaba_pods_follow_the_documented_rules() {
        let got = alibaba_gpu_2023_from_reader(PODS.as_bytes()).expect("converts");
        let rows: Vec<_> =
            got.iter().map(|r| (r.arrival_ms, r.lifetime_ms, r.cpu_milli, r.gpu_milli, r.priority)).collect();
        assert_eq!(
            rows,
            vec![
                (0, Some(4_900_000), 12000, 1000, Some(2)),
                (50_000, None, 88000, 8000, Some(1)),
                (100_000, Some(94_000), 6000, 460, Some(0)),
                (200_000, None, 4000, 0, Some(3)),
                (200_000, Some(0), 2000, 0, None),
            ]
        );
    }

    /// Exported pod lists sometimes carry times as decimals (`100.0`, or fractions of a second):
    /// they are read to the millisecond; anything else is refused naming the line.
    #[test]
    fn alibaba_times_may_be_decimal() {
        let decimal = PODS.replacen("100,5000,100", "100.0,5000.25,100", 1).replacen("200,294,", "200.5,294,", 1);
        let got = alibaba_gpu_2023_from_reader(decimal.as_bytes()).expect("converts");
        let p0 = got.iter().find(|r| r.cpu_milli == 12000).expect("p0");
        let p1 = got.iter().find(|r| r.cpu_milli == 6000).expect("p1");
        assert_eq!((p0.arrival_ms, p0.lifetime_ms), (0, Some(4_900_250)));
        assert_eq!((p1.arrival_ms, p1.lifetime_ms), (100_500, Some(93_500)));
        let bad = PODS.replacen("100,5000,100", "1e2,5000,100", 1);
        match alibaba_gpu_2023_from_reader(bad.as_bytes()) {
            Err(e @ ConvertError::Line { line: 2, .. }) => assert!(e.to_string().contains("creation_time"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(got.iter().all(|r| r.tenant.is_none() && r.instance_type.is_none() && r.zone.is_none()));
    }

    #[test]
    fn alibaba_rejects_inconsistent_rows() {
        for (from, to, needle) in [
            (",1,460,,BE,", ",2,460,,BE,", "share is only valid for one GPU"),
            (",LS,", ",Gold,", "unknown qos"),
            ("100,5000,100", "100,50,100", "before creation_time"),
        ] {
            let bad = PODS.replacen(from, to, 1);
            match alibaba_gpu_2023_from_reader(bad.as_bytes()) {
                Err(e @ ConvertError::Line { .. }) => assert!(e.to_string().contains(needle), "{e}"),
                other => panic!("{from} → {to}: {other:?}"),
            }
        }
    }

    #[test]
    fn alibaba_nodes_read_shapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nodes.csv");
        std::fs::write(
            &path,
            "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,\nn1,96000,393216,8,G2\nn2,8000,32768,0,nan\n",
        )
        .expect("write");
        let nodes = alibaba_nodes(&path).expect("reads");
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[1].name, "n1");
        assert_eq!(
            nodes[1].shape,
            HostShape { cpu_milli: 96000, memory_mib: 393216, gpus: 8, gpu_model: Some("G2".into()), zone: None }
        );
        assert_eq!(nodes[2].shape.gpu_model, None);
    }

    /// The real traces, which live beside the repository in `../shared/traces` (as in CI), or in
    /// the directory `FEIYUN_TRACES` names (for a checkout elsewhere).
    pub(crate) fn shared_trace(rel: &str) -> std::path::PathBuf {
        let dir = std::env::var_os("FEIYUN_TRACES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"));
        let p = dir.join(rel);
        assert!(p.exists(), "{} is missing: the real traces must sit beside the repository in ../shared", p.display());
        p
    }

    #[test]
    fn real_alibaba_trace_converts() {
        let got = alibaba_gpu_2023(&shared_trace("alibaba-gpu-2023/openb_pod_list_default.csv")).expect("converts");
        assert_eq!(got.len(), 8152);
        assert_eq!(got.iter().filter(|r| r.lifetime_ms.is_none()).count(), 34);
        let nodes = alibaba_nodes(&shared_trace("alibaba-gpu-2023/openb_node_list_all_node.csv")).expect("reads");
        assert_eq!(nodes.len(), 1523);
    }
}
