//! Where `herald run --once` stands on a Kafka source: which assigned partitions have been read
//! to their end.
//!
//! librdkafka reports an end as `PartitionEOF(partition)`, a partition *number* without its
//! topic. With several topics the numbers repeat (every topic has a partition 0), so an end is
//! not taken for every partition of that number: when one number is assigned in several
//! topics, each of them counts as ended only where its position (the next offset after what was
//! consumed here, or where consumption started) has reached its high watermark.

use std::collections::{BTreeMap, BTreeSet};

/// A topic and one of its partitions.
pub type Partition = (String, i32);

#[derive(Debug, Default)]
pub struct Progress {
    /// The next offset of each partition consumed from in this run.
    next: BTreeMap<Partition, i64>,
    /// Partitions read to their end (until another message from them arrives).
    done: BTreeSet<Partition>,
}

impl Progress {
    /// A message at `offset` was consumed from `partition`.
    pub fn consumed(&mut self, partition: &Partition, offset: i64) {
        self.next.insert(partition.clone(), offset + 1);
        self.done.remove(partition);
    }

    /// librdkafka reported the end of a partition numbered `number`. `assigned` is the current
    /// assignment; `high` a partition's high watermark (`None` when it cannot be had); `start`
    /// where consumption of a partition not consumed from in this run began (its committed
    /// offset, or where `start` points without one). Both are asked only when `number` is
    /// assigned in several topics.
    pub fn ended(
        &mut self,
        number: i32,
        assigned: &[Partition],
        high: impl Fn(&Partition) -> Option<i64>,
        mut start: impl FnMut(&Partition) -> Option<i64>,
    ) {
        let candidates: Vec<&Partition> = assigned.iter().filter(|p| p.1 == number).collect();
        if let [only] = candidates[..] {
            self.done.insert(only.clone());
            return;
        }
        for partition in candidates {
            let position = match self.next.get(partition) {
                Some(next) => Some(*next),
                None => start(partition),
            };
            if let (Some(position), Some(high)) = (position, high(partition))
                && position >= high
            {
                self.done.insert(partition.clone());
            }
        }
    }

    /// Every assigned partition has been read to its end (and at least one is assigned).
    pub fn all_read(&self, assigned: &[Partition]) -> bool {
        !assigned.is_empty() && assigned.iter().all(|p| self.done.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, partition: i32) -> Partition {
        (topic.to_owned(), partition)
    }

    /// Two topics share partition 0: the small one ends while the large one is half read. An
    /// end counted by number alone would end the run there.
    #[test]
    fn the_end_of_one_topics_partition_is_not_the_end_of_anothers() {
        let assigned = [p("small", 0), p("large", 0), p("large", 1)];
        let highs = BTreeMap::from([(p("small", 0), 1), (p("large", 0), 300), (p("large", 1), 1)]);
        let high = |x: &Partition| highs.get(x).copied();
        let mut progress = Progress::default();
        progress.consumed(&p("small", 0), 0);
        progress.consumed(&p("large", 1), 0);
        progress.ended(1, &assigned, high, |_| None);
        progress.consumed(&p("large", 0), 0);
        progress.consumed(&p("large", 0), 1);
        progress.ended(0, &assigned, high, |_| None);
        assert!(
            !progress.all_read(&assigned),
            "large/0 is at 2 of 300: {progress:?}"
        );
        for offset in 2..300 {
            progress.consumed(&p("large", 0), offset);
        }
        progress.ended(0, &assigned, high, |_| None);
        assert!(progress.all_read(&assigned), "{progress:?}");
    }

    /// A partition nothing was consumed from in this run is at its end when where it started
    /// (its committed offset) is its high watermark; one whose watermark is not known is not.
    #[test]
    fn a_partition_already_read_to_its_end_counts_by_where_it_started() {
        let assigned = [p("a", 0), p("b", 0)];
        let mut progress = Progress::default();
        let highs = BTreeMap::from([(p("a", 0), 40)]);
        progress.ended(0, &assigned, |x| highs.get(x).copied(), |_| Some(40));
        assert!(progress.done.contains(&p("a", 0)));
        assert!(!progress.all_read(&assigned), "b/0 has not been fetched");
        let highs = BTreeMap::from([(p("a", 0), 40), (p("b", 0), 7)]);
        progress.ended(0, &assigned, |x| highs.get(x).copied(), |_| Some(7));
        assert!(progress.all_read(&assigned));
        progress.consumed(&p("b", 0), 7);
        assert!(
            !progress.all_read(&assigned),
            "a new message: not at the end"
        );
    }

    /// One topic: the number names the partition, as librdkafka means it.
    #[test]
    fn with_one_topic_an_end_is_its_partitions() {
        let assigned = [p("audit", 0), p("audit", 1)];
        let mut progress = Progress::default();
        progress.ended(0, &assigned, |_| None, |_| None);
        progress.ended(1, &assigned, |_| None, |_| None);
        assert!(progress.all_read(&assigned));
    }
}
