//! A whole simulated run: which events, in what order, in which deliveries, sent how often.
//!
//! A [`Plan`] is an iterator of deliveries, produced a window at a time so that a run of
//! millions of events needs memory for one window only. In each window it draws the events,
//! shuffles them if asked (out-of-order delivery happens within a window, as Meta's does
//! within minutes), packs them with a [`Batcher`], then inserts redeliveries: a fraction of the
//! deliveries is sent again, byte for byte, at a random later point of the window, as Meta
//! does when an acknowledgement was lost.
//!
//! The events depend only on the seed and the start time; the shaping (order, grouping,
//! redeliveries) draws from its own stream. So the same seed sent once in order or shuffled
//! with duplicates carries the same events, which is what a convergence test compares.

use std::collections::VecDeque;

use super::batch::{Batcher, Delivery};
use super::catalog::{Object, Spec};
use super::rng::Rng;
use super::{Generator, Item};

/// Events drawn per window.
const WINDOW: usize = 4096;

/// What a run sends.
#[derive(Debug, Clone)]
pub enum Source {
    /// `count` events, cycling through `specs` in order.
    Kinds {
        /// The kinds, each at least once when `count` allows.
        specs: Vec<&'static Spec>,
        /// Events in total.
        count: u64,
    },
    /// `count` conversations, cycling through `objects`, of `turns` exchanges each.
    Conversations {
        /// Platforms, as objects.
        objects: Vec<Object>,
        /// Conversations in total.
        count: u64,
        /// Exchanges per conversation.
        turns: usize,
    },
}

/// How a run's events are grouped and ordered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Events per delivery, at most (1 to 1000).
    pub batch: usize,
    /// Deliver in random order instead of in the order the events happened.
    pub shuffle: bool,
    /// Fraction of deliveries sent a second time (0 to 1).
    pub duplicates: f64,
}

impl Default for Shape {
    fn default() -> Self {
        Self { batch: 1, shuffle: false, duplicates: 0.0 }
    }
}

/// The deliveries of a run, in sending order.
#[derive(Debug)]
pub struct Plan {
    generator: Generator,
    rng: Rng,
    source: Source,
    shape: Shape,
    drawn: u64,
    ready: VecDeque<Delivery>,
}

impl Plan {
    /// A run of `source` shaped by `shape`, with events drawn from `seed` from `start_ms` on.
    pub fn new(seed: u64, start_ms: i64, source: Source, shape: Shape) -> Self {
        let generator = Generator::new(seed, start_ms);
        let rng = Rng::new(seed ^ 0x5348_4150_4553_0001);
        Self { generator, rng, source, shape, drawn: 0, ready: VecDeque::new() }
    }

    /// The generator, to keep its clock in step with the wall clock between windows.
    pub fn generator_mut(&mut self) -> &mut Generator {
        &mut self.generator
    }

    /// Every event of the run, in the order they happened, without shaping: what a
    /// receiver should end up knowing. Consumes a fresh plan.
    pub fn events(mut self) -> Vec<Item> {
        let mut items = Vec::new();
        while let Some(window) = self.draw_window() {
            items.extend(window);
        }
        items
    }

    fn draw_window(&mut self) -> Option<Vec<Item>> {
        let mut items = Vec::new();
        while items.len() < WINDOW {
            match &self.source {
                Source::Kinds { specs, count } if self.drawn < *count && !specs.is_empty() => {
                    let spec = specs[(self.drawn % specs.len() as u64) as usize];
                    items.push(self.generator.event(spec));
                }
                Source::Conversations { objects, count, turns }
                    if self.drawn < *count && !objects.is_empty() =>
                {
                    let object = objects[(self.drawn % objects.len() as u64) as usize];
                    items.extend(self.generator.conversation(object, *turns));
                }
                _ => break,
            }
            self.drawn += 1;
        }
        (!items.is_empty()).then_some(items)
    }

    fn fill(&mut self) -> bool {
        let Some(mut items) = self.draw_window() else {
            return false;
        };
        if self.shape.shuffle {
            self.rng.shuffle(&mut items);
        }
        let mut batcher = Batcher::new(self.shape.batch, self.rng.fork());
        let mut deliveries: Vec<Delivery> =
            items.into_iter().filter_map(|item| batcher.push(item)).collect();
        deliveries.extend(batcher.flush());
        if self.shape.shuffle {
            // The batcher closes deliveries per object; mix the objects' deliveries as well.
            self.rng.shuffle(&mut deliveries);
        }
        // A redelivery of delivery i goes after delivery j, for a random j >= i.
        let n = deliveries.len();
        let mut after: Vec<Vec<Delivery>> = vec![Vec::new(); n];
        for (i, delivery) in deliveries.iter().enumerate() {
            if self.shape.duplicates > 0.0 && self.rng.chance(self.shape.duplicates) {
                let j = self.rng.between(i as i64, n as i64 - 1) as usize;
                after[j].push(Delivery { redelivery: true, ..delivery.clone() });
            }
        }
        let mut out = Vec::with_capacity(n);
        for (delivery, copies) in deliveries.into_iter().zip(after) {
            out.push(delivery);
            out.extend(copies);
        }
        self.ready.extend(out);
        true
    }
}

impl Iterator for Plan {
    type Item = Delivery;

    fn next(&mut self) -> Option<Delivery> {
        while self.ready.is_empty() {
            if !self.fill() {
                return None;
            }
        }
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::CATALOG;

    fn kinds(count: u64) -> Source {
        Source::Kinds { specs: CATALOG.iter().collect(), count }
    }

    #[test]
    fn redeliveries_follow_their_original_and_repeat_its_bytes() {
        let shape = Shape { batch: 3, shuffle: true, duplicates: 0.4 };
        let deliveries: Vec<Delivery> =
            Plan::new(1, 1_760_000_000_000, kinds(9000), shape).collect();
        let originals = deliveries.iter().filter(|d| !d.redelivery).count();
        let copies = deliveries.len() - originals;
        assert!(copies > originals / 4 && copies < originals / 2, "{copies} of {originals}");
        for (i, d) in deliveries.iter().enumerate().filter(|(_, d)| d.redelivery) {
            let first = deliveries.iter().position(|o| !o.redelivery && o.body == d.body);
            assert!(first.is_some_and(|f| f < i), "a redelivery comes after its original");
        }
        let sent: usize = deliveries.iter().filter(|d| !d.redelivery).map(|d| d.events).sum();
        assert_eq!(sent, 9000);
    }

    #[test]
    fn events_lists_what_the_run_is_made_of_in_order() {
        let items = Plan::new(4, 1_760_000_000_000, kinds(100), Shape::default()).events();
        assert_eq!(items.len(), 100);
        assert_eq!(items[0].spec, &CATALOG[0]);
        assert!(items.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        let conversations =
            Source::Conversations { objects: vec![Object::Page], count: 2, turns: 1 };
        let items = Plan::new(4, 1_760_000_000_000, conversations, Shape::default()).events();
        assert_eq!(items.len(), 2 * 6);
    }
}
