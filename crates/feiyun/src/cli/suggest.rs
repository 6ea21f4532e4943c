//! "Did you mean": the names closest to a misspelt one, by edit distance, ignoring case.

/// Edit distance between two strings, ignoring ASCII case: insertions, deletions, substitutions
/// and transpositions of two neighbours each count one (optimal string alignment).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Three rows: two back (for transpositions), one back, current.
    let mut two: Vec<usize> = vec![0; b.len() + 1];
    let mut one: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (one[j] + 1).min(cur[j - 1] + 1).min(one[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(two[j - 2] + 1);
            }
        }
        std::mem::swap(&mut two, &mut one);
        std::mem::swap(&mut one, &mut cur);
    }
    one[b.len()]
}

/// How far a name may be from a candidate to be suggested: one edit for short names, up to
/// three for long ones.
fn tolerance(len: usize) -> usize {
    match len {
        0..=4 => 1,
        5..=12 => 2,
        _ => 3,
    }
}

/// The candidates closest to `given` within the tolerance, best first (at most three; ties keep
/// the candidates' order).
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = tolerance(given.chars().count());
    let mut scored: Vec<(usize, usize, &str)> = candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| (distance(given, c), i, c))
        .filter(|(d, _, _)| *d <= limit)
        .collect();
    scored.sort();
    let Some(best) = scored.first().map(|s| s.0) else { return Vec::new() };
    let mut out: Vec<&str> = Vec::new();
    for (d, _, c) in scored {
        // Only the best distance, and one more when it is close behind.
        if d <= best + 1 && !out.contains(&c) && out.len() < 3 {
            out.push(c);
        }
    }
    out
}

/// "; did you mean X?" / "; did you mean X or Y?", or nothing.
pub fn did_you_mean(prefix: &str, names: &[impl AsRef<str>]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("; did you mean {prefix}{}?", one.as_ref()),
        [first @ .., last] => {
            let first: Vec<String> = first.iter().map(|n| format!("{prefix}{}", n.as_ref())).collect();
            format!("; did you mean {} or {prefix}{}?", first.join(", "), last.as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("InstanceIDs", "InstanceIds"), 0, "case does not count");
        assert_eq!(distance("DescribeInstance", "DescribeInstances"), 1);
        assert_eq!(distance("Stauts", "Status"), 1, "a transposition is one edit");
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", ""), 3);
    }

    #[test]
    fn closest_names() {
        let actions = ["DescribeInstances", "DescribeInstanceStatus", "DescribeImages", "RunInstances"];
        assert_eq!(closest("describeinstance", actions), vec!["DescribeInstances"]);
        assert_eq!(closest("RunInstance", actions), vec!["RunInstances"]);
        assert_eq!(closest("Unicorns", actions), Vec::<&str>::new());
        assert_eq!(closest("Tpye", ["Type", "Name"]), vec!["Type"]);
        assert!(closest("Amount", ["Name"]).is_empty(), "too far for a name this short");
    }

    #[test]
    fn phrases() {
        assert_eq!(did_you_mean("--", &Vec::<String>::new()), "");
        assert_eq!(did_you_mean("--", &["InstanceIds"]), "; did you mean --InstanceIds?");
        assert_eq!(did_you_mean("", &["A", "B", "C"]), "; did you mean A, B or C?");
    }
}
