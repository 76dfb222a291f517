//! The command line of `metahook simulate`.

use std::path::PathBuf;

use meta_webhooks::generate::MAX_BATCH;

/// The flags of `metahook simulate`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Kinds to send: platform.kind (facebook.message, whatsapp.whatsapp_status), a bare kind
    /// (message: every platform that has it), a platform (instagram: all of its kinds), or all.
    #[arg(value_name = "KIND", conflicts_with_all = ["list", "handshake", "file", "conversation"])]
    pub kinds: Vec<String>,

    /// List every kind with a one-line description, then exit.
    #[arg(long)]
    pub list: bool,

    /// Endpoint to post to [default: http://127.0.0.1:<port of listen>/meta/webhook].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// App secret to sign with [default: the first of app_secrets]. Other users can see
    /// command lines: prefer METAHOOK_APP_SECRET.
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,

    /// Perform Meta's verification GET and report whether the endpoint would be verified
    /// (status 200 and the challenge as the whole body), with the reason when not.
    #[arg(long, conflicts_with_all = ["list", "file", "conversation", "dry_run"])]
    pub handshake: bool,

    /// Verify token for --handshake [default: verify_token].
    #[arg(long, value_name = "TOKEN", requires = "handshake")]
    pub verify_token: Option<String>,

    /// Send this file's bytes unchanged, signed (`-` reads standard input).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["list", "conversation"])]
    pub file: Option<PathBuf>,

    /// Send coherent conversations on these platforms (facebook, instagram, whatsapp, all;
    /// comma-separated) [default: facebook]: a message, the reply's echo, delivery and read
    /// watermarks (WhatsApp: statuses), a reaction and an edit.
    #[arg(long, value_name = "PLATFORMS", num_args = 0..=1, value_delimiter = ',')]
    pub conversation: Option<Vec<String>>,

    /// Exchanges (message and reply) per conversation.
    #[arg(long, default_value_t = 2, value_name = "N", requires = "conversation")]
    pub turns: usize,

    /// Events to send [default: one per kind]; with --conversation, conversations
    /// [default: 1]; with --file, times to send the file [default: 1].
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Events per POST, up to Meta's 1000, spread over several entries.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
    pub batch: u16,

    /// Fraction of deliveries sent a second time, byte for byte, later in the run (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = fraction)]
    pub duplicates: f64,

    /// Deliver events out of the order they happened in.
    #[arg(long)]
    pub shuffle: bool,

    /// Seed for every id, text and choice, to repeat a run [default: random, printed in the
    /// summary].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Time of the first event, Unix seconds or milliseconds [default: now, following the
    /// clock]. With --seed, runs are byte for byte identical.
    #[arg(long, value_name = "UNIX_TIME")]
    pub at: Option<i64>,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,

    /// Requests started per second at most, retries included [default: no limit].
    #[arg(long, value_name = "PER_SECOND", value_parser = positive)]
    pub rate: Option<f64>,

    /// Retries after a failed attempt: like Meta, the first at once, then with growing
    /// delays. A delivery is acknowledged only by a 200.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,

    /// Delay before the second retry, in milliseconds; each later one doubles it.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub retry_delay: u64,

    /// Longest delay between two attempts, in milliseconds.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    pub retry_max_delay: u64,

    /// Time allowed for one request, in milliseconds (Messenger waits 5 s for a 200).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,

    /// Print the summary (or the list, or the handshake report) as JSON.
    #[arg(long)]
    pub json: bool,

    /// Print the bodies that would be sent, one per line, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const EXAMPLES: &str = "Examples:
  metahook simulate --list
  metahook simulate message                  one Messenger and one Instagram message
  metahook simulate all --count 10000 --batch 100 --concurrency 16 --json
  metahook simulate --conversation all --count 20 --duplicates 0.2 --shuffle
  metahook simulate --file body.json --url http://127.0.0.1:8080/webhook --secret S
  metahook simulate --handshake --verify-token T

Exit codes: 0 everything acknowledged (or verified), 1 something was not or the endpoint
could not be reached, 2 invalid usage.";

fn fraction(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{value} is not a fraction between 0 and 1")),
    }
}

fn positive(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!("{value} is not a positive number")),
    }
}
