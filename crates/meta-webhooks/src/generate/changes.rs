//! Graph `changes` for Pages and Instagram: `entry[].changes[]` items `{"value", "field"}`.
//!
//! Their entries carry `time` in seconds, and feed values a `created_time` in seconds; the
//! Page feed is the Page's posts, comments, replies and reactions; Instagram sends comments,
//! live comments, mentions and story insights.

use super::catalog::Object;
use super::json::{Json, Opt, obj};
use super::rng::Rng;
use super::world::{self, Person};
use super::{Generator, Item, Slot, ids};
use crate::event::Kind;

/// A change `{"value": ..., "field": ...}`, keys in the order Meta writes them.
pub fn change(field: &str, value: Json) -> Json {
    obj! {"value" => value, "field" => field}
}

/// One Page change of `kind` (`feed`, else a leadgen `change`) with random content.
pub(super) fn facebook(g: &mut Generator, kind: Kind) -> Item {
    let page = g.rng.pick(&g.world.pages).clone();
    let person = g.rng.pick(&page.users).clone();
    let at = g.tick();
    let secs = at / 1000;
    let rng = &mut g.rng;
    let item = if kind == Kind::Feed {
        change("feed", feed(rng, &page.id, page.name, &person, secs))
    } else {
        let value = obj! {"created_time" => secs, "leadgen_id" => rng.digits(15),
        "page_id" => &page.id, "form_id" => rng.digits(15),
        "ad_id" => Opt(rng.chance(0.5).then(|| rng.digits(17)))};
        change("leadgen", value)
    };
    Item::new(Object::Page, kind, page.id, at, Slot::Change(item))
}

fn feed(rng: &mut Rng, page: &str, page_name: &str, person: &Person, secs: i64) -> Json {
    let post = rng.digits(18);
    let post_id = format!("{page}_{post}");
    let from = obj! {"id" => ids::scoped_user_id(rng), "name" => person.name};
    let comment_id = format!("{post}_{}", rng.digits(16));
    let post_info = obj! {
        "status_type" => "added_photos",
        "is_published" => true,
        "updated_time" => iso8601(secs - rng.between(60, 86_400)),
        "promotion_status" => "inactive",
        "id" => &post_id,
    };
    match rng.weighted(&[20, 40, 15, 20, 5]) {
        0 => obj! {"from" => obj! {"id" => page, "name" => page_name},
        "message" => *rng.pick(world::REPLIES), "post_id" => post_id,
        "created_time" => secs, "item" => "status", "published" => 1_i64, "verb" => "add"},
        kind @ (1 | 2 | 4) => {
            // A top-level comment, a reply to another comment, or an edit of a comment.
            let parent =
                if kind == 2 { format!("{post}_{}", rng.digits(16)) } else { post_id.clone() };
            let verb = if kind == 4 { "edited" } else { "add" };
            obj! {"from" => from, "post" => post_info, "message" => *rng.pick(world::COMMENTS),
            "post_id" => &post_id, "comment_id" => comment_id, "created_time" => secs,
            "item" => "comment", "parent_id" => parent, "verb" => verb}
        }
        _ => {
            let reaction = *rng.pick(&["like", "love", "haha", "wow", "care"]);
            obj! {"from" => from, "post_id" => &post_id, "created_time" => secs,
            "item" => "reaction", "parent_id" => &post_id, "reaction_type" => reaction,
            "verb" => "add"}
        }
    }
}

/// One Instagram change of `kind` with random content.
pub(super) fn instagram(g: &mut Generator, kind: Kind) -> Item {
    let account = g.rng.pick(&g.world.instagram).clone();
    let person = g.rng.pick(&account.users).clone();
    let at = g.tick();
    let rng = &mut g.rng;
    let media = ids::instagram_object_id(rng);
    let from = obj! {"id" => &person.id, "username" => person.username};
    let item = match kind {
        Kind::Comment => {
            let product = *rng.pick(&["FEED", "REELS"]);
            let parent = Opt(rng.chance(0.25).then(|| ids::instagram_object_id(rng)));
            let value = obj! {"from" => from,
            "media" => obj! {"id" => media, "media_product_type" => product},
            "id" => ids::instagram_object_id(rng), "parent_id" => parent,
            "text" => *rng.pick(world::COMMENTS)};
            change("comments", value)
        }
        Kind::LiveComment => {
            let value = obj! {"from" => from,
            "media" => obj! {"id" => media, "media_product_type" => "LIVE"},
            "id" => ids::instagram_object_id(rng),
            "text" => *rng.pick(world::COMMENTS)};
            change("live_comments", value)
        }
        Kind::Mention => {
            let comment = Opt(rng.chance(0.6).then(|| ids::instagram_object_id(rng)));
            change("mentions", obj! {"media_id" => media, "comment_id" => comment})
        }
        _ => change("story_insights", story_insights(rng, media)),
    };
    Item::new(Object::Instagram, kind, account.id, at, Slot::Change(item))
}

fn story_insights(rng: &mut Rng, media: String) -> Json {
    let reach = rng.between(40, 5000);
    obj! {
        "media_id" => media,
        "exits" => rng.between(0, reach / 5),
        "replies" => rng.between(0, reach / 50),
        "reach" => reach,
        "taps_forward" => rng.between(0, reach / 2),
        "taps_back" => rng.between(0, reach / 10),
        "impressions" => reach + rng.between(0, reach / 3),
    }
}

/// `2025-03-22T18:20:04+0000` for a Unix time in seconds, as the feed writes `updated_time`.
pub fn iso8601(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar), by eras of
    // 400 years starting on 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}+0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+0000");
        assert_eq!(iso8601(1_742_667_604), "2025-03-22T18:20:04+0000");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00+0000");
    }
}
