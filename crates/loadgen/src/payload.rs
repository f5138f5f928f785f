//! Signed Meta WhatsApp webhooks, built before the clock starts.
//!
//! Each body is one inbound text message the way Meta sends it (one line of JSON, the
//! `whatsapp_business_account` envelope, `metadata`, `contacts`, `messages`), with a unique
//! wamid, a sender taken from a fixed set of contacts and a text padded to the requested size.
//! The `X-Hub-Signature-256` header is `sha256=` + hex HMAC-SHA256(app secret, raw body).

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use serde_json::json;

/// What every generated webhook has in common.
#[derive(Clone, Debug)]
pub(crate) struct PayloadSpec {
    /// The channel's `app_secret`.
    pub(crate) app_secret: String,
    /// The channel's `phone_number_id` (a change for another number yields no event).
    pub(crate) phone_number_id: String,
    /// The channel's `waba_id` (the entry id).
    pub(crate) waba_id: String,
    /// Distinct senders to cycle through.
    pub(crate) contacts: u32,
    /// Approximate body size in bytes.
    pub(crate) body_bytes: usize,
}

/// One webhook ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    /// The message id (`wamid.…`), unique per request.
    pub(crate) wamid: String,
    /// The raw body.
    pub(crate) body: Bytes,
    /// `sha256=<hex>` over `body`.
    pub(crate) signature: HeaderValue,
}

const WORDS: &[&str] = &[
    "hello", "order", "delivery", "tomorrow", "please", "invoice", "thanks", "refund", "status",
    "address", "number", "support", "question", "account", "payment", "received", "could", "you",
    "check", "my", "the", "when", "will", "arrive", "again", "still", "waiting", "for", "reply",
];

/// A deterministic text of about `len` bytes, different for each `seed`.
fn text(seed: u64, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        // xorshift64: cheap, reproducible word choice.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if !out.is_empty() {
            out.push(' ');
        }
        let word = WORDS[usize::try_from(x % WORDS.len() as u64).unwrap_or(0)];
        out.push_str(word);
    }
    out
}

/// The signature header value for `body`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> anyhow::Result<HeaderValue> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .map_err(|e| anyhow::anyhow!("HMAC key: {e}"))?;
    mac.update(body);
    let value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    Ok(HeaderValue::from_str(&value)?)
}

/// Builds `count` distinct signed webhooks; ids are `wamid.LG<prefix>.<index>` padded to the
/// length of a real wamid.
pub(crate) fn build(
    spec: &PayloadSpec,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<Prepared>> {
    // The envelope without the text is about 450 bytes.
    let text_len = spec.body_bytes.saturating_sub(450).max(16);
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let contacts = u64::from(spec.contacts.max(1));
    (0..count)
        .map(|i| {
            let n = i as u64;
            let wamid = format!(
                "wamid.LG{prefix}.{n:012}{:024X}",
                n.wrapping_mul(0x2545_F491)
            );
            let contact = n % contacts;
            let from = format!("4915550{contact:07}");
            let value = json!({
                "object": "whatsapp_business_account",
                "entry": [{
                    "id": spec.waba_id,
                    "changes": [{
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550953877",
                                "phone_number_id": spec.phone_number_id,
                            },
                            "contacts": [{
                                "profile": { "name": format!("Load Test {contact}") },
                                "wa_id": from,
                            }],
                            "messages": [{
                                "from": from,
                                "id": wamid,
                                "timestamp": timestamp.to_string(),
                                "text": { "body": text(n, text_len) },
                                "type": "text",
                            }],
                        },
                        "field": "messages",
                    }],
                }],
            });
            let body = Bytes::from(serde_json::to_vec(&value)?);
            let signature = sign(spec.app_secret.as_bytes(), &body)?;
            Ok(Prepared {
                wamid,
                body,
                signature,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PayloadSpec {
        PayloadSpec {
            app_secret: "test_app_secret".into(),
            phone_number_id: "277321005464405".into(),
            waba_id: "264937493375603".into(),
            contacts: 10,
            body_bytes: 1200,
        }
    }

    #[test]
    fn bodies_are_unique_sized_and_signed() -> anyhow::Result<()> {
        let built = build(&spec(), "t", 50)?;
        let mut ids: Vec<_> = built.iter().map(|p| p.wamid.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 50);
        for p in &built {
            assert!((1000..=1600).contains(&p.body.len()), "{}", p.body.len());
            assert_eq!(p.signature, sign(b"test_app_secret", &p.body)?);
            let v: serde_json::Value = serde_json::from_slice(&p.body)?;
            assert_eq!(
                v["entry"][0]["changes"][0]["value"]["messages"][0]["id"],
                p.wamid.as_str()
            );
        }
        Ok(())
    }

    #[test]
    fn the_signature_matches_the_published_m2_vector() -> anyhow::Result<()> {
        // providers.md §2.6 vector M2 (fixtures/meta/wa_m2_signature_vector_text.json).
        let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/meta/wa_m2_signature_vector_text.json"
        ))?)?;
        let body = fixture["request"]["body"].as_str().unwrap_or_default();
        let header = fixture["request"]["headers"]
            .as_array()
            .and_then(|h| h.iter().find(|p| p[0] == "X-Hub-Signature-256"))
            .and_then(|p| p[1].as_str())
            .unwrap_or_default();
        let secret = fixture["channel"]["secrets"]["app_secret"]
            .as_str()
            .and_then(|s| s.strip_prefix("value:"))
            .unwrap_or_default();
        assert_eq!(sign(secret.as_bytes(), body.as_bytes())?, header);
        Ok(())
    }
}
