//! Identifiers shaped like Meta's: lengths, prefixes and encodings as seen in real payloads.
//!
//! Page ids and PSIDs are 15-17 digit decimal strings; Instagram professional accounts start
//! with `17841`; Messenger mids are `m_` and base64url; Instagram mids are base64 of an
//! `ig_message_item` path; a WhatsApp message id is `wamid.` and the standard base64 of a
//! small binary record holding the user's phone number and a hexadecimal message id (inbound
//! and outbound records differ in one byte, as in the real captures).

use super::rng::Rng;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX_UPPER: &[u8] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8] = b"0123456789abcdef";

/// Standard base64 with `=` padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A Page id, a Meta app id or a WhatsApp business account id: 15 digits starting with 1.
pub fn page_id(rng: &mut Rng) -> String {
    format!("1{}", rng.digits(14))
}

/// A page-scoped or Instagram-scoped user id: 16 or 17 digits.
pub fn scoped_user_id(rng: &mut Rng) -> String {
    let len = if rng.chance(0.7) { 16 } else { 17 };
    rng.digits(len)
}

/// An Instagram professional account id.
pub fn instagram_account_id(rng: &mut Rng) -> String {
    format!("17841{}", rng.digits(12))
}

/// An Instagram media or comment id: 17 digits starting with 17 or 18.
pub fn instagram_object_id(rng: &mut Rng) -> String {
    format!("1{}{}", rng.between(7, 8), rng.digits(15))
}

/// A Messenger message id.
pub fn messenger_mid(rng: &mut Rng) -> String {
    format!("m_{}", rng.chars(BASE64URL, 86))
}

/// An Instagram message id for a message in `account`'s inbox.
pub fn instagram_mid(rng: &mut Rng, account: &str) -> String {
    // Real ids are base64 of "ig_message_item:1:IGMessageID:<account>:<thread>:<item>" with
    // Graph's `Z` markers inserted; the prefix is that encoding of the fixed part, and the
    // thread number starts like 2^128 as in every captured id.
    let path = format!(":{account}:340282366841710301244{}:3{}", rng.digits(18), rng.digits(34));
    let encoded = base64(path.as_bytes());
    format!("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE{}ZDZD", encoded.trim_end_matches('='))
}

/// A WhatsApp message id for a message to or from `phone`; `inbound` for user messages.
pub fn wamid(rng: &mut Rng, phone: &str, inbound: bool) -> String {
    let id = if inbound { rng.chars(HEX_UPPER, 20) } else { rng.chars(HEX_UPPER, 18) };
    let mut record = vec![0x1c, 0x18, phone.len() as u8];
    record.extend_from_slice(phone.as_bytes());
    record.extend_from_slice(&[0x15, 0x02, 0x00, if inbound { 0x12 } else { 0x11 }, 0x18]);
    record.push(id.len() as u8);
    record.extend_from_slice(id.as_bytes());
    record.push(0x00);
    format!("wamid.{}", base64(&record))
}

/// A WhatsApp media id.
pub fn media_id(rng: &mut Rng) -> String {
    rng.digits(16)
}

/// A sha256 in base64, as WhatsApp gives for media.
pub fn media_sha256(rng: &mut Rng) -> String {
    let bytes: Vec<u8> = (0..32).map(|_| rng.below(256) as u8).collect();
    base64(&bytes)
}

/// A lowercase hex string of `len` characters (conversation ids, tokens).
pub fn hex(rng: &mut Rng, len: usize) -> String {
    rng.chars(HEX_LOWER, len)
}

/// A token of URL-safe characters, like the signatures in CDN links.
pub fn token(rng: &mut Rng, len: usize) -> String {
    rng.chars(BASE64URL, len)
}

/// A phone number as WhatsApp writes it (digits, country code first).
pub fn phone_number(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => format!("905{}", rng.digits(9)),
        1 => format!("5511{}", rng.between(900_000_000, 999_999_999)),
        2 => format!("1{}555{}", rng.between(200, 989), rng.between(1000, 9999)),
        3 => format!("4915{}", rng.digits(9)),
        _ => format!("351912{}", rng.between(100_000, 999_999)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_encodings() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn wamids_have_the_layout_of_real_ones() {
        // The inbound record of the documentation's example message, rebuilt field by field.
        let mut record = vec![0x1c, 0x18, 11];
        record.extend_from_slice(b"16503879439");
        record.extend_from_slice(&[0x15, 0x02, 0x00, 0x12, 0x18, 20]);
        record.extend_from_slice(b"3A4A6599AEE03810144F");
        record.push(0);
        assert_eq!(base64(&record), "HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
        let mut rng = Rng::new(1);
        assert!(wamid(&mut rng, "16503879439", true).starts_with("wamid.HBgLMTY1MDM4Nzk0MzkVAgAS"));
        assert!(
            wamid(&mut rng, "16503879439", false).starts_with("wamid.HBgLMTY1MDM4Nzk0MzkVAgAR")
        );
    }

    #[test]
    fn ids_have_plausible_shapes() {
        let mut rng = Rng::new(2);
        assert_eq!(page_id(&mut rng).len(), 15);
        assert!(instagram_account_id(&mut rng).starts_with("17841"));
        assert_eq!(messenger_mid(&mut rng).len(), 88);
        assert!(instagram_mid(&mut rng, "17841400538867190").starts_with("aWdfZAG1faXRlbT"));
        assert!(phone_number(&mut rng).bytes().all(|b| b.is_ascii_digit()));
    }
}
