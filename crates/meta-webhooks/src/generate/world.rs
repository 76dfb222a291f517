//! The accounts, people and words a simulated run is made of.
//!
//! A run talks about a few Pages, Instagram accounts and WhatsApp numbers, each with a pool
//! of users, all drawn once from the seed: events then repeat users the way real traffic does
//! and a reproducible seed gives the same cast. Texts mix scripts on purpose (accented Latin,
//! Turkish dotted and dotless i, Cyrillic, Arabic, Japanese, emoji with skin tones and flags,
//! JSON metacharacters) because the escaping of exactly those is where receivers break.

use super::ids;
use super::rng::Rng;

/// Meta's Page Inbox app, which sends the echoes of messages typed by people in the inbox.
pub const PAGE_INBOX_APP_ID: &str = "263902037430900";

/// Users per account in a run.
const USERS: usize = 24;

/// A Page or an Instagram professional account, with the people who write to it.
#[derive(Debug, Clone)]
pub struct Account {
    /// Page id or Instagram account id.
    pub id: String,
    /// Display name, used where the account itself is an author.
    pub name: &'static str,
    /// People writing to it.
    pub users: Vec<Person>,
}

/// A person on the other side of a conversation.
#[derive(Debug, Clone)]
pub struct Person {
    /// PSID, IGSID, or WhatsApp `wa_id` (phone digits).
    pub id: String,
    /// Profile name.
    pub name: &'static str,
    /// Instagram username.
    pub username: &'static str,
}

/// A WhatsApp business account with its phone numbers and the people writing to them.
#[derive(Debug, Clone)]
pub struct Waba {
    /// The WABA id (the entry id).
    pub id: String,
    /// `(phone_number_id, display_phone_number)` pairs.
    pub numbers: Vec<(String, String)>,
    /// People writing to it; their id is their phone number.
    pub users: Vec<Person>,
}

/// Everything a run talks about.
#[derive(Debug, Clone)]
pub struct World {
    /// Facebook Pages.
    pub pages: Vec<Account>,
    /// Instagram professional accounts.
    pub instagram: Vec<Account>,
    /// WhatsApp business accounts.
    pub wabas: Vec<Waba>,
    /// The app subscribed to the webhooks (the sender of our own messages).
    pub app_id: String,
}

impl World {
    /// A cast drawn from `rng`.
    pub fn new(rng: &mut Rng) -> Self {
        let pages = vec![account(rng, ids::page_id, 0), account(rng, ids::page_id, 1)];
        let instagram = vec![
            account(rng, ids::instagram_account_id, 2),
            account(rng, ids::instagram_account_id, 3),
        ];
        let numbers = (0..2)
            .map(|_| (ids::page_id(rng), format!("1555{}", rng.between(1_000_000, 9_999_999))))
            .collect();
        let users = (0..USERS).map(|_| person(rng, ids::phone_number)).collect();
        let wabas = vec![Waba { id: ids::page_id(rng), numbers, users }];
        Self { pages, instagram, wabas, app_id: ids::page_id(rng) }
    }
}

fn account(rng: &mut Rng, id: fn(&mut Rng) -> String, n: usize) -> Account {
    let users = (0..USERS).map(|_| person(rng, ids::scoped_user_id)).collect();
    Account { id: id(rng), name: ACCOUNT_NAMES[n % ACCOUNT_NAMES.len()], users }
}

fn person(rng: &mut Rng, id: fn(&mut Rng) -> String) -> Person {
    let (name, username) = *rng.pick(PEOPLE);
    Person { id: id(rng), name, username }
}

const ACCOUNT_NAMES: &[&str] =
    &["Kahve Dünyası Moda", "Café Olá Lisboa", "atelier.léa", "Çiçekçi Ayşe"];

/// Profile names in several languages, with plausible usernames.
const PEOPLE: &[(&str, &str)] = &[
    ("Ayşe Yılmaz", "ayse.yilmaz"),
    ("Mehmet Öztürk", "mehmetozturk_"),
    ("Zeynep Çelik", "zeynepcelik"),
    ("Ömer Şahin", "omer.sahin34"),
    ("İrem Doğan", "iremdgn"),
    ("João Araújo", "joao.araujo"),
    ("Inês Gonçalves", "ines_goncalves"),
    ("Chloé Dubois", "chloe.dbs"),
    ("José Martínez", "jose_mtz"),
    ("Zoë Müller", "zoemueller"),
    ("Søren Østergaard", "soren.oster"),
    ("Łukasz Wójcik", "lukasz.wojcik"),
    ("Nguyễn Thị Lan", "lan.nguyen"),
    ("Sheena Nelson", "sheenanelson"),
    ("Emily Carter", "em.carter"),
];

/// What people write to a business.
pub const INBOUND: &[&str] = &[
    "Merhaba, siparişim ne zaman gelir?",
    "Teşekkür ederim, çok memnun kaldım! 👍🏽",
    "İade sürecini öğrenebilir miyim? Ürün ıslak geldi.",
    "Kargo takip numaram TR-88231, durum \"hazırlanıyor\" görünüyor",
    "Olá! Vocês entregam em Lisboa? 😊",
    "Quanto custa o frete para São Paulo?",
    "Bonjour, est-ce que la commande nº 4521 est déjà expédiée ?",
    "¿Tienen esta camiseta en talla M? Gracias 🙏",
    "Grüße aus Köln – ist der Laden heute geöffnet?",
    "Hi! Is the café open on Sunday?",
    "Can I change my delivery address?\nNew one: 12 Rue de la Paix, 75002 Paris",
    "Привет! Есть доставка в Алматы?",
    "ありがとうございます 🙇",
    "مرحبا، هل المنتج متوفر؟",
    "Đặt bàn cho 4 người lúc 19h được không?",
    "2× 🍕 + 1× 🥤, how much? 🇹🇷🇵🇹",
    "🥰🥰🥰",
    "C:\\Users\\ayşe\\fatura.pdf gönderemiyorum </script>",
];

/// What a business answers.
pub const REPLIES: &[&str] = &[
    "Merhaba! Siparişiniz yarın kargoya verilecek 🚚",
    "Teşekkürler, iyi günler dileriz 🌷",
    "Olá! Sim, entregamos em todo Portugal.",
    "Merci ! Votre colis est parti ce matin.",
    "¡Claro! Quedan 3 en talla M.",
    "Gern geschehen! Bis bald 👋",
    "Sure! We're open 9–18 on Sundays ☕",
    "Şu an yoğunuz, en kısa sürede döneceğiz 🙏",
];

/// Texts of edited messages: what a person changed their message to.
pub const EDITS: &[&str] = &[
    "Merhaba, siparişim bugün gelir mi?",
    "Olá! Vocês entregam no Porto? 😊",
    "Bonjour, la commande nº 4512 pardon !",
    "Hi! Is the café open on Saturday?",
    "İade sürecini öğrenebilir miyim? Ürün kırık geldi.",
];

/// Public comments on posts.
pub const COMMENTS: &[&str] = &[
    "Çok güzel olmuş 😍",
    "Fiyat nedir? DM attım",
    "Que lindo! ❤️",
    "Où est-ce que je peux l'acheter ?",
    "@zeynepcelik bak bunu görmelisin 👀",
    "Wow 🔥🔥",
    "Price pls",
];

/// Messenger reaction names with the emoji Meta sends beside them.
pub const MESSENGER_REACTIONS: &[(&str, &str)] = &[
    ("love", "❤️"),
    ("like", "👍"),
    ("smile", "😆"),
    ("wow", "😮"),
    ("sad", "😢"),
    ("angry", "😡"),
];

/// Emoji people react with on WhatsApp.
pub const WHATSAPP_REACTIONS: &[&str] = &["👍", "❤️", "😂", "🙏", "😮", "👍🏾"];
