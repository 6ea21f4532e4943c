//! The host's own copies of its instances' statuses. The host applies each event it reports to
//! its copy (through the domain's state machine, as the control plane will) and goes on from
//! there at once. An intent drawn before the control plane applied those reports brings an
//! older status: the host keeps its copy when the region's status is the one the host's events
//! up to the last one applied (`InstanceIntent::applied_seq`) led to, and takes the region's
//! word otherwise (the region decided something of its own: a user's command, a guest's halt
//! read its way, a report it could not record). Taking steps again from an older status is
//! not safe: a reboot repeated halts the instance again after it booted, and the region reads
//! that halt as the guest shutting itself down.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use feiyun_domain::instance::{InstanceStatus, PowerState};
use feiyun_hostproto::{InstanceIntent, Intent};

/// The intent's word on one instance that a step acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Word {
    /// The intent's revision.
    pub revision: u64,
    pub status: InstanceStatus,
    pub desired: PowerState,
    pub applied_seq: Option<u64>,
}

impl Word {
    pub(crate) fn of(revision: u64, i: &InstanceIntent) -> Word {
        Word { revision, status: i.status, desired: i.desired, applied_seq: i.applied_seq }
    }
}

/// One instance's copy.
#[derive(Debug, Clone, PartialEq)]
struct OwnCopy {
    /// The intent revisions the copy stands for: the one it was started at, and the latest it
    /// was carried to.
    since: u64,
    revision: u64,
    desired: PowerState,
    /// The region's status it started from, and the region's last applied event then.
    base: InstanceStatus,
    base_seq: Option<u64>,
    /// The events reported since, in order: their numbers and the statuses they led to.
    trail: Vec<(u64, InstanceStatus)>,
}

impl OwnCopy {
    /// Whether the copy is the host's word on the instance for the intent at `revision`.
    fn stands_for(&self, revision: u64) -> bool {
        self.since <= revision && revision <= self.revision
    }

    fn status(&self) -> InstanceStatus {
        self.trail.last().map(|t| t.1).unwrap_or(self.base)
    }

    /// The copy carried to a newer intent's word `i` on the instance, if that intent was drawn
    /// before the region applied all of the copy's events and nothing else changed the region's
    /// copy since.
    fn carried(mut self, revision: u64, i: &InstanceIntent) -> Option<OwnCopy> {
        let applied = i.applied_seq?;
        let last = self.trail.last()?.0;
        if i.desired != self.desired || applied >= last || self.base_seq.is_some_and(|b| applied < b) {
            return None;
        }
        let expected = self.trail.iter().take_while(|(seq, _)| *seq <= applied).last().map(|t| t.1);
        if expected.unwrap_or(self.base) != i.status {
            return None;
        }
        self.trail.retain(|(seq, _)| *seq > applied);
        self.base = i.status;
        self.base_seq = Some(applied);
        self.revision = revision;
        Some(self)
    }
}

#[derive(Debug, Default)]
struct Copies {
    /// The latest intent's revision: copies are started at it only.
    revision: u64,
    by_instance: HashMap<String, OwnCopy>,
}

/// The host's copies, one lock for all (a newer intent and a step's report are ordered).
#[derive(Debug, Default)]
pub(crate) struct OwnCopies(Mutex<Copies>);

impl OwnCopies {
    fn lock(&self) -> std::sync::MutexGuard<'_, Copies> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A newer intent came: the copies it was drawn too early to reflect are kept, the others
    /// dropped (all of them when the host was fenced: what it reported under the old epoch is
    /// never applied).
    pub(crate) fn renew(&self, intent: &Intent, fenced: bool) {
        let mut copies = self.lock();
        copies.revision = intent.revision;
        let mut old = std::mem::take(&mut copies.by_instance);
        if fenced {
            return;
        }
        for i in &intent.instances {
            if let Some(copy) = old.remove(&i.id).and_then(|c| c.carried(intent.revision, i)) {
                copies.by_instance.insert(i.id.clone(), copy);
            }
        }
    }

    /// The status of the instance `i` of the intent at `revision` on this host.
    pub(crate) fn status(&self, i: &InstanceIntent, revision: u64) -> InstanceStatus {
        match self.lock().by_instance.get(&i.id) {
            Some(c) if c.stands_for(revision) => c.status(),
            _ => i.status,
        }
    }

    /// The host reported event `seq` of the instance `id`, observed by a step acting on the
    /// intent's `word`, and moved its copy to `after` (`None`: the region decides, the host
    /// waits for its word).
    pub(crate) fn note(&self, id: &str, word: Word, seq: u64, after: Option<InstanceStatus>) {
        let mut copies = self.lock();
        let latest = copies.revision;
        let revision = word.revision;
        let ours = copies.by_instance.get(id).is_some_and(|c| c.stands_for(revision));
        match after {
            None => {
                if ours {
                    copies.by_instance.remove(id);
                }
            }
            Some(status) if ours => {
                if let Some(c) = copies.by_instance.get_mut(id) {
                    c.trail.push((seq, status));
                }
            }
            // A step of an older intent whose copy was not carried: the latest intent's word
            // stands.
            Some(_) if revision != latest => {}
            Some(status) => {
                let copy = OwnCopy {
                    since: revision,
                    revision,
                    desired: word.desired,
                    base: word.status,
                    base_seq: word.applied_seq,
                    trail: vec![(seq, status)],
                };
                copies.by_instance.insert(id.to_string(), copy);
            }
        }
    }

    /// A report of these instances' events was refused: the region never applies them, so
    /// their copies go and the next intent's word stands.
    pub(crate) fn refused(&self, instances: &HashSet<&str>) {
        self.lock().by_instance.retain(|id, _| !instances.contains(id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{instance, intent_at};
    use InstanceStatus::*;

    fn said(status: InstanceStatus, applied_seq: Option<u64>) -> InstanceIntent {
        InstanceIntent { status, applied_seq, ..instance(0, status) }
    }

    fn intent(revision: u64, i: InstanceIntent) -> Intent {
        intent_at(revision, vec![i])
    }

    /// Copies that rebooted the instance at revision 2 (halted: event 11, booted: event 12)
    /// after booting it at revision 1 (events 1 and 2, both applied when revision 2 was drawn).
    fn rebooted() -> (OwnCopies, InstanceIntent) {
        let copies = OwnCopies::default();
        let first = said(Pending, None);
        copies.renew(&intent(1, first.clone()), false);
        copies.note("i-0", Word::of(1, &first), 1, Some(Starting));
        copies.note("i-0", Word::of(1, &first), 2, Some(Running));
        assert_eq!(copies.status(&first, 1), Running);
        let reboot = said(Stopping, Some(2));
        copies.renew(&intent(2, reboot.clone()), false);
        // The region asked for something of its own: its word stands.
        assert_eq!(copies.status(&reboot, 2), Stopping);
        copies.note("i-0", Word::of(2, &reboot), 11, Some(Starting));
        copies.note("i-0", Word::of(2, &reboot), 12, Some(Running));
        (copies, reboot)
    }

    #[test]
    fn an_intent_drawn_before_the_hosts_reports_landed_leaves_its_copy_ahead() {
        let (copies, stale) = rebooted();
        copies.renew(&intent(3, stale.clone()), false);
        assert_eq!(copies.status(&stale, 3), Running);
        // The region applied the halt only: still behind, and where the halt led.
        let halfway = said(Starting, Some(11));
        copies.renew(&intent(4, halfway.clone()), false);
        assert_eq!(copies.status(&halfway, 4), Running);
        // Caught up: nothing left to carry, the region's word is the host's.
        let caught_up = said(Running, Some(12));
        copies.renew(&intent(5, caught_up.clone()), false);
        assert_eq!(copies.0.lock().expect("lock").by_instance.len(), 0);
        assert_eq!(copies.status(&caught_up, 5), Running);
    }

    #[test]
    fn the_regions_own_decisions_are_taken_even_from_an_intent_drawn_early() {
        // A second reboot asked after the halt was applied: the region is not where the host's
        // halt led.
        let (copies, _) = rebooted();
        let again = said(Stopping, Some(11));
        copies.renew(&intent(3, again.clone()), false);
        assert_eq!(copies.status(&again, 3), Stopping);
        // A stop asked before the halt landed: what is desired changed.
        let (copies, _) = rebooted();
        let stop = InstanceIntent { desired: PowerState::Stopped, ..said(Stopping, Some(2)) };
        copies.renew(&intent(3, stop.clone()), false);
        assert_eq!(copies.status(&stop, 3), Stopping);
        // An older control plane, or one that restarted, says nothing of what it applied.
        let (copies, _) = rebooted();
        let silent = said(Stopping, None);
        copies.renew(&intent(3, silent.clone()), false);
        assert_eq!(copies.status(&silent, 3), Stopping);
        // A fenced host's reports are never applied.
        let (copies, stale) = rebooted();
        copies.renew(&intent(3, stale.clone()), true);
        assert_eq!(copies.status(&stale, 3), Stopping);
        // Nor are those of a refused report.
        let (copies, stale) = rebooted();
        copies.refused(&["i-0"].into_iter().collect());
        copies.renew(&intent(3, stale.clone()), false);
        assert_eq!(copies.status(&stale, 3), Stopping);
    }

    #[test]
    fn a_step_of_an_older_intent_adds_to_a_copy_carried_over_and_to_no_other() {
        let (copies, reboot) = rebooted();
        // Carried to revision 3; a step still running at revision 2 goes on adding to it.
        copies.renew(&intent(3, reboot.clone()), false);
        copies.note("i-0", Word::of(2, &reboot), 13, Some(Stopping));
        assert_eq!(copies.status(&reboot, 3), Stopping);
        // Not carried to revision 4 (the region applied everything): a late event of a step at
        // revision 3 starts no copy.
        let current = said(Stopping, Some(13));
        copies.renew(&intent(4, current.clone()), false);
        copies.note("i-0", Word::of(3, &reboot), 14, Some(Stopped));
        assert_eq!(copies.status(&current, 4), Stopping);
        // An event that leaves the status to the region ends the copy.
        copies.note("i-0", Word::of(4, &current), 15, Some(Stopped));
        assert_eq!(copies.status(&current, 4), Stopped);
        copies.note("i-0", Word::of(4, &current), 16, None);
        assert_eq!(copies.status(&current, 4), Stopping);
    }
}
