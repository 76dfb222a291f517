//! Realistic Meta webhook traffic, generated without I/O: the payloads `metahook simulate`
//! posts and the tests build their inputs from.
//!
//! A [`Generator`] draws events of any kind in the [`catalog`] from a seed: plausible ids,
//! timestamps in the unit Meta uses for each kind, text in several scripts. [`conversation`]
//! writes coherent threads (a message, the reply's echo, delivery and read watermarks or
//! WhatsApp statuses, a reaction, an edit). A [`batch::Batcher`] packs events into deliveries
//! the way Meta does (one object per POST, several entries, several events per entry, up to
//! 1000), and [`plan::Plan`] shapes a whole run: count, order, batches and redeliveries.
//! Bodies are written by [`meta_escape`], byte for byte as Meta writes them, and
//! [`signed_headers`] gives the headers Meta sends with them.
//! Objects keep their keys in the order built ([`json::Json`]), so a body reads like a capture.

pub mod batch;
pub mod catalog;
pub mod changes;
pub mod conversation;
pub mod ids;
pub mod json;
pub mod messaging;
pub mod plan;
pub mod rng;
pub mod whatsapp;
pub mod wire;
pub mod world;

pub use batch::{Batcher, Delivery, MAX_BATCH};
pub use catalog::{CATALOG, Object, Spec, UnknownSpec, resolve};
pub use json::Json;
pub use plan::{Plan, Shape, Source};
pub use rng::Rng;
pub use wire::{meta_escape, signed_headers};

use crate::event::Kind;
use messaging::Thread;
use whatsapp::{Line, WhatsappItem};
use world::World;

/// One generated event, not yet packed into a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// What it is.
    pub spec: &'static Spec,
    /// The entry it belongs in: Page id, Instagram account id or WABA id.
    pub entry_id: String,
    /// When it happened, in UTC milliseconds; the entry's `time` is derived from it.
    pub at_ms: i64,
    /// Where in the entry it goes, and its JSON.
    pub slot: Slot,
}

/// Where an event goes in its entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// `entry.messaging[]`; the entry's `time` is in milliseconds.
    Messaging(Json),
    /// `entry.changes[]` as `{"value", "field"}`; the entry's `time` is in seconds.
    Change(Json),
    /// A WhatsApp message or status, for a `messages` change of an entry without `time`.
    Whatsapp(WhatsappItem),
}

impl Item {
    /// An item of the catalog entry for `object` and `kind`.
    ///
    /// # Panics
    /// When the catalog has no such entry: generators only make kinds the catalog lists.
    pub fn new(object: Object, kind: Kind, entry_id: String, at_ms: i64, slot: Slot) -> Self {
        let spec = CATALOG
            .iter()
            .find(|s| s.object == object && s.kind == kind)
            .unwrap_or_else(|| panic!("no catalog entry for {} {kind}", object.platform()));
        Self { spec, entry_id, at_ms, slot }
    }
}

/// Draws events from a seed. The same seed and start time give the same events.
#[derive(Debug, Clone)]
pub struct Generator {
    pub(crate) rng: Rng,
    pub(crate) world: World,
    clock: i64,
}

impl Generator {
    /// A generator whose first event happens just after `start_ms` (UTC milliseconds).
    pub fn new(seed: u64, start_ms: i64) -> Self {
        let mut rng = Rng::new(seed);
        // The cast has its own stream so that changing how events are drawn leaves the
        // accounts and people of a seed as they were.
        let world = World::new(&mut rng.fork());
        Self { rng, world, clock: start_ms }
    }

    /// The accounts and people events are about.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The time of the latest event, in UTC milliseconds.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// Moves the clock forward to `now_ms` if it is behind, so a long run keeps its
    /// timestamps near the wall clock.
    pub fn sync_clock(&mut self, now_ms: i64) {
        self.clock = self.clock.max(now_ms);
    }

    /// One event of `spec`'s kind with random content.
    pub fn event(&mut self, spec: &Spec) -> Item {
        let from_changes = matches!(
            spec.kind,
            Kind::Comment
                | Kind::Mention
                | Kind::StoryInsights
                | Kind::LiveComment
                | Kind::Feed
                | Kind::Change
        );
        match spec.object {
            Object::Page if from_changes => changes::facebook(self, spec.kind),
            Object::Page => messaging::facebook(self, spec.kind),
            Object::Instagram if from_changes => changes::instagram(self, spec.kind),
            Object::Instagram => messaging::instagram(self, spec.kind),
            Object::Whatsapp => whatsapp::whatsapp(self, spec.kind),
        }
    }

    /// A coherent conversation on `object` with `turns` exchanges; see [`conversation`].
    pub fn conversation(&mut self, object: Object, turns: usize) -> Vec<Item> {
        conversation::build(self, object, turns)
    }

    /// Advances the clock a little and returns it: the time of the next event.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock += self.rng.between(1, 40);
        self.clock
    }

    /// A Page or Instagram account and one of its people.
    pub(crate) fn thread(&mut self, object: Object) -> Thread {
        let accounts =
            if object == Object::Instagram { &self.world.instagram } else { &self.world.pages };
        let account = self.rng.pick(accounts);
        let user = self.rng.pick(&account.users).id.clone();
        Thread { object, account: account.id.clone(), user }
    }

    /// A WhatsApp number and one of the people writing to it.
    pub(crate) fn line(&mut self) -> Line {
        let waba = self.rng.pick(&self.world.wabas);
        let (phone_number_id, display) = self.rng.pick(&waba.numbers).clone();
        let person = self.rng.pick(&waba.users).clone();
        Line { waba: waba.id.clone(), phone_number_id, display, person }
    }
}
