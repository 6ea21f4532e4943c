//! An account's instances page by page: each page is its slice of the whole listing (oldest
//! first), with or without a filter, and another account's instances never show.

mod common;

use std::sync::Arc;

use common::{control, spec, ManualClock};
use feiyun_control::ControlPlane;
use feiyun_domain::ops::{InstanceFilter, Purchase};

fn page(cp: &ControlPlane, account: &str, f: &InstanceFilter, offset: usize, size: usize) -> (usize, Vec<String>) {
    cp.with_instances_page(account, f, offset, size, |total, page, _| {
        (total, page.iter().map(|i| i.id.clone()).collect())
    })
}

#[test]
fn pages_are_slices_of_the_whole_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(std::sync::Mutex::new(chrono::Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (alice, _) = cp.create_account("alice").expect("account");
    let (bob, _) = cp.create_account("bob").expect("account");
    // Launches of the two accounts interleaved, some in the same second (ordered by id then).
    for n in 0..9 {
        clock.set(n / 2);
        for (account, amount) in [(&alice.id, 2), (&bob.id, 1)] {
            let mut s = spec(Purchase::default());
            s.amount = amount;
            cp.create_instances(account, &s).expect("created");
        }
    }
    let unfiltered = InstanceFilter::default();
    let all: Vec<String> = cp.describe_instances(&alice.id, &unfiltered).into_iter().map(|i| i.id).collect();
    assert_eq!(all.len(), 18);
    // A filter every instance matches takes the other path; both must agree.
    let everything = InstanceFilter { zone_id: Some("z".into()), ..Default::default() };
    for f in [&unfiltered, &everything] {
        for size in [1, 5, 7, 18, 100] {
            for offset in [0, 1, 4, 7, 17, 18, 30] {
                let want: Vec<String> = all.iter().skip(offset).take(size).cloned().collect();
                assert_eq!(page(&cp, &alice.id, f, offset, size), (18, want), "offset {offset}, size {size}, {f:?}");
            }
        }
    }
    let bobs = page(&cp, &bob.id, &unfiltered, 0, 100).1;
    assert_eq!(bobs.len(), 9);
    assert!(bobs.iter().all(|id| !all.contains(id)));
}
