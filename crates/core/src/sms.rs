//! SMS encoding and segmentation (3GPP TS 23.038 / 23.040), shared by every SMS connector.
//!
//! A text is sent in GSM-7 when every character is in the GSM 03.38 default alphabet or its
//! extension table, otherwise in UCS-2 (UTF-16 on real networks), for the **whole** message.
//!
//! | encoding | one segment | per segment when concatenated |
//! |---|---|---|
//! | GSM-7 | 160 septets | 153 septets (6-octet UDH) |
//! | UCS-2 | 70 UTF-16 code units | 67 code units |
//!
//! Extension-table characters (`^ { } \ [ ~ ] | €` and form feed) cost two septets (escape +
//! character); characters outside the Basic Multilingual Plane (most emoji) cost two UTF-16 code
//! units. When a message is split, neither an escape pair nor a surrogate pair is cut across two
//! segments: the character moves whole to the next segment, which can leave one unit unused.
//!
//! [`SmsInfo::of`] counts; [`segments`] gives the byte ranges of each segment's text, for a
//! session connector (SMPP) that encodes and sends the parts itself. Both walk the text the same
//! way, so the count always equals the number of parts.
//!
//! ```
//! use switchboard_core::sms::{SmsEncoding, SmsInfo};
//! let info = SmsInfo::of("Your code is 1234");
//! assert_eq!((info.encoding, info.segments, info.units), (SmsEncoding::Gsm7, 1, 17));
//!
//! // One character outside GSM-7 switches the whole message to UCS-2.
//! let info = SmsInfo::of("Merci ! 🙂");
//! assert_eq!((info.encoding, info.segments, info.units), (SmsEncoding::Ucs2, 1, 10));
//!
//! // 161 GSM-7 characters need two concatenated segments of up to 153 septets.
//! assert_eq!(SmsInfo::of(&"a".repeat(161)).segments, 2);
//! ```

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The character encoding of an SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit default alphabet with its extension table.
    Gsm7,
    /// UCS-2, counted in UTF-16 code units.
    Ucs2,
}

impl SmsEncoding {
    /// The encoding a text must be sent in: GSM-7 when every character has a GSM-7 form.
    pub fn of(text: &str) -> Self {
        if text.chars().all(|c| gsm7_septets(c).is_some()) {
            SmsEncoding::Gsm7
        } else {
            SmsEncoding::Ucs2
        }
    }

    /// The stable lowercase name: `gsm7` or `ucs2`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "gsm7",
            SmsEncoding::Ucs2 => "ucs2",
        }
    }

    /// The units (septets or UTF-16 code units) that fit a message sent as one segment.
    pub fn single_segment_units(self) -> u32 {
        match self {
            SmsEncoding::Gsm7 => 160,
            SmsEncoding::Ucs2 => 70,
        }
    }

    /// The units that fit each segment of a concatenated message (8-bit reference UDH).
    pub fn multi_segment_units(self) -> u32 {
        match self {
            SmsEncoding::Gsm7 => 153,
            SmsEncoding::Ucs2 => 67,
        }
    }

    /// The units `c` costs in this encoding; `None` when GSM-7 cannot represent it.
    fn units(self, c: char) -> Option<u32> {
        match self {
            SmsEncoding::Gsm7 => gsm7_septets(c),
            // `len_utf16` is 1 or 2.
            SmsEncoding::Ucs2 => Some(c.len_utf16() as u32),
        }
    }
}

impl fmt::Display for SmsEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The encoding, length and segment count of a text sent as SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SmsInfo {
    /// The encoding.
    pub encoding: SmsEncoding,
    /// The length in the encoding's units: GSM-7 septets (extension characters count two) or
    /// UTF-16 code units.
    pub units: u32,
    /// The number of segments (messages billed). An empty text is one segment.
    pub segments: u32,
}

impl SmsInfo {
    /// Measures `text`.
    pub fn of(text: &str) -> Self {
        let encoding = SmsEncoding::of(text);
        let mut segments = 0u32;
        let units = walk(text, encoding, |_| segments = segments.saturating_add(1));
        Self {
            encoding,
            units,
            segments,
        }
    }
}

/// The byte ranges of `text` that go into each segment, in order, never splitting a character,
/// an escape pair or a surrogate pair. An empty text is one empty segment.
///
/// ```
/// use switchboard_core::sms::segments;
/// let text = "€".repeat(81); // 162 septets: two segments of 76 and 5 characters
/// let parts = segments(&text);
/// assert_eq!(parts.len(), 2);
/// assert_eq!(text[parts[0].clone()].chars().count(), 76);
/// ```
pub fn segments(text: &str) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    walk(text, SmsEncoding::of(text), |range| parts.push(range));
    parts
}

/// Splits `text` into segments of `encoding`, reporting each segment's byte range; returns the
/// total length in units.
fn walk(text: &str, encoding: SmsEncoding, mut segment: impl FnMut(Range<usize>)) -> u32 {
    let total: u32 = text
        .chars()
        .map(|c| encoding.units(c).unwrap_or(2))
        .fold(0u32, u32::saturating_add);
    if total <= encoding.single_segment_units() {
        segment(0..text.len());
        return total;
    }
    let limit = encoding.multi_segment_units();
    let mut start = 0;
    let mut used = 0u32;
    for (index, c) in text.char_indices() {
        let cost = encoding.units(c).unwrap_or(2);
        if used + cost > limit {
            segment(start..index);
            start = index;
            used = 0;
        }
        used += cost;
    }
    segment(start..text.len());
    total
}

/// The septets a character costs in GSM-7: 1 in the default alphabet, 2 in the extension table,
/// `None` when GSM-7 cannot represent it.
pub fn gsm7_septets(c: char) -> Option<u32> {
    if is_gsm7_basic(c) {
        Some(1)
    } else if is_gsm7_extension(c) {
        Some(2)
    } else {
        None
    }
}

/// The GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1), escape excluded.
fn is_gsm7_basic(c: char) -> bool {
    matches!(c,
        'A'..='Z' | 'a'..='z' | '0'..='9'
        | '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r'
        | 'Å' | 'å' | 'Δ' | '_' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ'
        | 'Æ' | 'æ' | 'ß' | 'É' | ' ' | '!' | '"' | '#' | '¤' | '%' | '&' | '\'' | '(' | ')'
        | '*' | '+' | ',' | '-' | '.' | '/' | ':' | ';' | '<' | '=' | '>' | '?' | '¡'
        | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à')
}

/// The GSM 03.38 extension table (3GPP TS 23.038 §6.2.1.1), reached through the escape.
fn is_gsm7_extension(c: char) -> bool {
    matches!(
        c,
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€'
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(text: &str) -> (SmsEncoding, u32, u32) {
        let i = SmsInfo::of(text);
        (i.encoding, i.units, i.segments)
    }

    #[test]
    fn gsm7_limits_are_160_and_153() {
        assert_eq!(info(""), (SmsEncoding::Gsm7, 0, 1));
        assert_eq!(info(&"a".repeat(160)), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(info(&"a".repeat(161)), (SmsEncoding::Gsm7, 161, 2));
        assert_eq!(info(&"a".repeat(306)), (SmsEncoding::Gsm7, 306, 2));
        assert_eq!(info(&"a".repeat(307)), (SmsEncoding::Gsm7, 307, 3));
    }

    #[test]
    fn ucs2_limits_are_70_and_67() {
        assert_eq!(info(&"ж".repeat(70)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(info(&"ж".repeat(71)), (SmsEncoding::Ucs2, 71, 2));
        assert_eq!(info(&"ж".repeat(134)), (SmsEncoding::Ucs2, 134, 2));
        assert_eq!(info(&"ж".repeat(135)), (SmsEncoding::Ucs2, 135, 3));
    }

    #[test]
    fn extension_characters_count_double() {
        assert_eq!(info("{}"), (SmsEncoding::Gsm7, 4, 1));
        assert_eq!(info(&"€".repeat(80)), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(info(&"€".repeat(81)), (SmsEncoding::Gsm7, 162, 2));
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{0C}'] {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
    }

    #[test]
    fn escape_pair_is_never_split() {
        // 152 septets of 'a', then '€' (2 septets) would straddle the 153 boundary.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        let parts = segments(&text);
        assert_eq!(parts.len(), 2);
        assert_eq!(&text[parts[0].clone()], "a".repeat(152));
        assert!(text[parts[1].clone()].starts_with('€'));
    }

    #[test]
    fn surrogate_pair_is_never_split() {
        // 66 units, then an emoji (2 units) would straddle the 67 boundary.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        assert_eq!(info(&text), (SmsEncoding::Ucs2, 78, 2));
        let parts = segments(&text);
        assert_eq!(&text[parts[0].clone()], "ж".repeat(66));
        assert!(text[parts[1].clone()].starts_with('😀'));
        // 35 emoji = 70 units: one segment.
        assert_eq!(info(&"😀".repeat(35)), (SmsEncoding::Ucs2, 70, 1));
    }

    #[test]
    fn one_non_gsm_character_switches_everything() {
        assert_eq!(SmsEncoding::of("Hello `world`"), SmsEncoding::Ucs2);
        assert_eq!(SmsEncoding::of("Ça coûte 5€"), SmsEncoding::Ucs2); // û is not GSM-7
        assert_eq!(SmsEncoding::of("Ça coute 5€ à Paris"), SmsEncoding::Gsm7);
        // In UCS-2, extension characters are one unit like any other.
        assert_eq!(info("€ж"), (SmsEncoding::Ucs2, 2, 1));
    }

    #[test]
    fn json_names() {
        assert_eq!(
            serde_json::to_string(&SmsEncoding::Ucs2).unwrap(),
            "\"ucs2\""
        );
        assert_eq!(SmsEncoding::Gsm7.to_string(), "gsm7");
    }

    proptest! {
        #[test]
        fn parts_cover_the_text_and_fit(text in "\\PC{0,400}") {
            let parts = segments(&text);
            let info = SmsInfo::of(&text);
            prop_assert_eq!(parts.len() as u32, info.segments);
            let joined: String = parts.iter().map(|r| &text[r.clone()]).collect();
            prop_assert_eq!(&joined, &text);
            if parts.len() > 1 {
                for part in &parts {
                    let units: u32 = text[part.clone()]
                        .chars()
                        .map(|c| info.encoding.units(c).unwrap_or(2))
                        .sum();
                    prop_assert!(units <= info.encoding.multi_segment_units());
                }
            }
        }
    }
}
