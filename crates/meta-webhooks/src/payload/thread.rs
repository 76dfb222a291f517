//! What Messenger and Instagram say about the thread rather than one message: postbacks,
//! opt-ins, referrals, the handover protocol, policy enforcement and account linking. Each
//! type is the body of one key of a messaging item.

use serde::Deserialize;
use serde_json::Value;

use super::de;

/// A `postback`; in `standby` it has no `payload`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Postback {
    /// Present on newer postbacks.
    #[serde(deserialize_with = "de::text")]
    pub mid: Option<String>,
    /// The button's title.
    pub title: Option<String>,
    /// The developer-defined payload.
    #[serde(deserialize_with = "de::text")]
    pub payload: Option<String>,
    /// How the user entered the thread, on Get Started.
    pub referral: Option<Referral>,
}

/// An `optin`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Optin {
    /// `notification_messages`, `one_time_notif_req`, or absent for plugin opt-ins.
    #[serde(rename = "type")]
    pub optin_type: Option<String>,
    /// The plugin's `data-ref`.
    #[serde(rename = "ref", deserialize_with = "de::text")]
    pub reference: Option<String>,
    /// The checkbox plugin's user reference (such opt-ins have no `sender`).
    #[serde(deserialize_with = "de::text")]
    pub user_ref: Option<String>,
    /// The developer-defined payload.
    #[serde(deserialize_with = "de::text")]
    pub payload: Option<String>,
    /// The topic the user agreed to.
    pub title: Option<String>,
    /// `STOP NOTIFICATIONS` / `RESUME NOTIFICATIONS` (or `STOP`) on opt-out and back in.
    #[serde(rename = "notification_messages_status")]
    pub status: Option<String>,
    /// Token for sending marketing messages.
    #[serde(rename = "notification_messages_token", deserialize_with = "de::text")]
    pub token: Option<String>,
    /// When the token expires, in UTC milliseconds.
    #[serde(deserialize_with = "de::millis")]
    pub token_expiry_timestamp: Option<i64>,
}

/// A `referral`, on its own or inside a message or postback.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Referral {
    /// The `ref` parameter of the link or ad.
    #[serde(rename = "ref", deserialize_with = "de::text")]
    pub reference: Option<String>,
    /// `SHORTLINK`, `ADS`, `CUSTOMER_CHAT_PLUGIN`, ...
    pub source: Option<String>,
    /// `OPEN_THREAD`, ...
    #[serde(rename = "type")]
    pub referral_type: Option<String>,
    /// The ad, for `ADS`.
    #[serde(deserialize_with = "de::text")]
    pub ad_id: Option<String>,
    /// Ad details (`ad_title`, `photo_url`, `post_id`, ...), kept as JSON.
    pub ads_context_data: Option<Value>,
}

/// The body of a `pass_thread_control`, `take_thread_control` or `request_thread_control`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ThreadControl {
    /// The app that had the thread (may be null).
    #[serde(deserialize_with = "de::text")]
    pub previous_owner_app_id: Option<String>,
    /// The app that has the thread now.
    #[serde(deserialize_with = "de::text")]
    pub new_owner_app_id: Option<String>,
    /// The app asking for the thread.
    #[serde(deserialize_with = "de::text")]
    pub requested_owner_app_id: Option<String>,
    /// The string the calling app attached.
    pub metadata: Option<String>,
}

/// Which handover event a [`Handover`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoverAction {
    /// `pass_thread_control`
    Pass,
    /// `take_thread_control`
    Take,
    /// `request_thread_control`
    Request,
    /// `app_roles`
    AppRoles,
}

impl HandoverAction {
    /// The wire name of the event.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoverAction::Pass => "pass_thread_control",
            HandoverAction::Take => "take_thread_control",
            HandoverAction::Request => "request_thread_control",
            HandoverAction::AppRoles => "app_roles",
        }
    }
}

/// A handover event: one of the thread-control events, or `app_roles`.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    /// Which event it is.
    pub action: HandoverAction,
    /// The thread-control body (empty for `app_roles`).
    pub control: ThreadControl,
    /// For `app_roles`: app id to list of roles.
    pub app_roles: Option<Value>,
}

/// A `policy_enforcement` (or `policy-enforcement`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PolicyEnforcement {
    /// `warning`, `block` or `unblock`.
    pub action: Option<String>,
    /// Meta's explanation.
    pub reason: Option<String>,
}

/// An `account_linking`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AccountLinking {
    /// `linked` or `unlinked`.
    pub status: Option<String>,
    /// The code passed back by the linking flow.
    pub authorization_code: Option<String>,
}
