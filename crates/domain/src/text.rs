//! Text values with rules: a value of one of these types exists only if it is valid (parse, don't
//! validate). Every text is stored Unicode NFC normalised, is not blank and has no space at either
//! end, has a maximum length in characters, and refuses control characters and the bidirectional
//! controls that make a name display as something other than what is stored (U+202E
//! "right-to-left override" and its kin).
//!
//! | Type | Maximum | Rule |
//! |---|---|---|
//! | [`NamePart`] | 100 | one line |
//! | [`ShortText`] | 200 | one line |
//! | [`LongText`] | 4,000 | line breaks and tabs allowed |
//! | [`DocumentNumber`] | 40 | letters, digits, space, `-`, `.`, `/`; starts with a letter or digit |
//! | [`Code`] | 40 | letters, digits, `-`, `_`, `.`; starts with a letter or digit |
//! | [`CountryCode`] | 2 | an ISO 3166-1 alpha-2 code in capitals |

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The bidirectional formatting characters: embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Check one text and normalise it to NFC: not blank, no space at either end, at most `max`
/// characters, no control characters (line breaks and tabs only where `lines`), no bidirectional
/// controls. Checked on the text as sent, so that the OpenAPI schema (length and pattern) and the
/// server accept exactly the same values.
fn clean(raw: &str, max: usize, lines: bool) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("is required and must not be blank".into());
    }
    if raw.trim() != raw {
        return Err("starts or ends with a space or line break; remove it".into());
    }
    let length = raw.chars().count();
    if length > max {
        return Err(format!("is {length} characters long; the limit is {max}"));
    }
    if let Some(c) = raw.chars().find(|&c| c.is_control() && !(lines && matches!(c, '\n' | '\r' | '\t'))) {
        return Err(format!("contains the control character U+{:04X}, which is not allowed", c as u32));
    }
    if let Some(c) = raw.chars().find(|&c| is_bidi_control(c)) {
        return Err(format!("contains the bidirectional control character U+{:04X}, which is not allowed", c as u32));
    }
    // Most names are already NFC (all ASCII ones are): the quick check spares composing them again.
    match is_nfc_quick(raw.chars()) {
        IsNormalized::Yes => Ok(raw.to_string()),
        _ => Ok(raw.nfc().collect()),
    }
}

/// The characters a one-line text refuses, as a regular-expression class body.
#[cfg(feature = "openapi")]
const REFUSED_ONE_LINE: &str = r"\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069";
/// The same for a long text, which keeps tabs and line breaks.
#[cfg(feature = "openapi")]
const REFUSED_LONG: &str =
    r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069";

/// The schema pattern of a free text: no refused character, and no space at either end.
#[cfg(feature = "openapi")]
fn free_text_pattern(refused: &str) -> String {
    format!(r"^[^\s{refused}](?:[^{refused}]*[^\s{refused}])?$")
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, max = $max:expr, lines = $lines:expr, pattern = $pattern:expr, check = $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest value accepted, in characters.
            pub const MAX: usize = $max;

            /// Parse a value, saying what is wrong with it in words a records officer understands.
            pub fn parse(raw: &str) -> Result<Self, String> {
                let text = clean(raw, $max, $lines)?;
                let check: fn(&str) -> Result<(), String> = $check;
                check(&text)?;
                Ok(Self(text))
            }

            /// A value read back from storage, where it was written only after parsing. Not for
            /// input: hand edits of stored rows are caught by `audit verify`, not here.
            pub fn stored(text: String) -> Self {
                Self(text)
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                Self::parse(&raw)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = String;
            fn try_from(raw: &str) -> Result<Self, String> {
                Self::parse(raw)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(raw: &str) -> Result<Self, String> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let pattern: Option<String> = $pattern;
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .pattern(pattern)
                    .description(Some(concat!(
                        stringify!($name),
                        ": NFC-normalised and trimmed; no control or bidirectional control characters",
                    )))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

fn any(_: &str) -> Result<(), String> {
    Ok(())
}

/// ASCII letters and digits and the `extra` characters, starting with a letter or digit.
fn ascii_with(text: &str, extra: &[char], rule: &str) -> Result<(), String> {
    match text.chars().find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c))) {
        Some(c) => Err(format!("contains `{c}`; {rule}")),
        None if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) => {
            Err("must start with a letter or digit".into())
        }
        None => Ok(()),
    }
}

text_type!(
    /// One part of a person's name: given names, a surname, a contact's name.
    NamePart, max = 100, lines = false, pattern = Some(free_text_pattern(REFUSED_ONE_LINE)), check = any
);
text_type!(
    /// A short line of text: a place, an authority, a reference, a relationship.
    ShortText, max = 200, lines = false, pattern = Some(free_text_pattern(REFUSED_ONE_LINE)), check = any
);
text_type!(
    /// A note, a description or a reason; may run over several lines.
    LongText, max = 4000, lines = true, pattern = Some(free_text_pattern(REFUSED_LONG)), check = any
);
text_type!(
    /// An identity document's number as printed.
    DocumentNumber, max = 40, lines = false, pattern = Some(r"^[A-Za-z0-9](?:[A-Za-z0-9 ./-]*[A-Za-z0-9./-])?$".into()),
    check = |text| ascii_with(text, &[' ', '-', '.', '/'], "a document number has letters, digits, spaces, `-`, `.` and `/`")
);
text_type!(
    /// A code: a facility, unit, cell, group, document kind or vulnerability flag.
    Code, max = 40, lines = false, pattern = Some(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$".into()),
    check = |text| ascii_with(text, &['-', '_', '.'], "a code has letters, digits, `-`, `_` and `.`")
);
text_type!(
    /// An ISO 3166-1 alpha-2 country code in capitals, such as `SV`.
    CountryCode, max = 2, lines = false, pattern = Some("^[A-Z]{2}$".into()),
    check = |text| {
        if ISO_3166_ALPHA_2.binary_search(&text).is_ok() {
            Ok(())
        } else {
            Err(format!("`{text}` is not an ISO 3166-1 alpha-2 country code in capitals, such as SV or GT"))
        }
    }
);

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (user-assigned codes such as
/// `XK` are not in the standard and are refused).
const ISO_3166_ALPHA_2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// Refuse a list longer than `max`, naming the field and the limit.
pub fn at_most<T>(errors: &mut Vec<crate::FieldError>, field: &str, list: &[T], max: usize) {
    if list.len() > max {
        errors.push(crate::FieldError::new(field, format!("has {} entries; the limit is {max}", list.len())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_country_list_is_sorted_and_unique_so_binary_search_is_sound() {
        assert!(ISO_3166_ALPHA_2.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn country_codes_are_iso_alpha_2_in_capitals() {
        assert!(CountryCode::parse("SV").is_ok());
        for bad in ["sv", "SLV", "XX", "XK", "S", ""] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_normalised_trimmed_and_bounded() {
        // "José" with a combining acute accent becomes the single precomposed character.
        assert_eq!(NamePart::parse("Jose\u{301}").unwrap().as_str(), "Jos\u{e9}");
        assert!(NamePart::parse(" Ana").is_err(), "spaces at the ends are refused, as the schema says");
        assert!(NamePart::parse(&"a".repeat(100)).is_ok());
        let long = NamePart::parse(&"a".repeat(101)).unwrap_err();
        assert!(long.contains("limit is 100"), "{long}");
        assert!(NamePart::parse("   ").is_err());
    }

    #[test]
    fn control_and_bidirectional_characters_are_refused() {
        for bad in ["Ana\u{0}", "Ana\u{7}", "Ana\nMaría", "\u{202E}anA", "Ana\u{2066}x"] {
            assert!(NamePart::parse(bad).is_err(), "{bad:?}");
        }
        assert!(LongText::parse("line one\nline two\ttab").is_ok());
        assert!(LongText::parse("bell\u{7}").is_err());
    }

    #[test]
    fn codes_and_document_numbers_follow_their_patterns() {
        assert!(Code::parse("MS-13").is_ok());
        assert!(Code::parse("M2_24.a").is_ok());
        assert!(Code::parse("-x").is_err());
        assert!(Code::parse("a b").is_err());
        assert!(DocumentNumber::parse("01234567-8").is_ok());
        assert!(DocumentNumber::parse("A 123/45.6").is_ok());
        assert!(DocumentNumber::parse("12<script>").is_err());
    }

    #[test]
    fn serde_refuses_what_parse_refuses() {
        assert!(serde_json::from_str::<NamePart>("\"Ana\\u0000\"").is_err());
        assert_eq!(serde_json::from_str::<NamePart>("\"Ana\"").unwrap(), "Ana");
        assert_eq!(serde_json::to_string(&NamePart::parse("Ana").unwrap()).unwrap(), "\"Ana\"");
    }
}
