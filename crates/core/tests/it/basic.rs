//! `Basic`, `HeaderToken` and `None`.

use proptest::prelude::*;
use switchboard_core::webhook_auth::{AuthError, Verified, WebhookAuth};
use switchboard_core::{Method, Secrets, WebhookRequest};

use crate::support::*;

const USER: &str = "kaleyra";
const PASSWORD: &str = "pa:ss w0rd!";
const TOKEN: &str = "tok_9f8e7d6c5b4a";

fn basic() -> WebhookAuth {
    WebhookAuth::Basic {
        username: USER.into(),
        password: name("webhook_password"),
    }
}

fn header_token() -> WebhookAuth {
    WebhookAuth::HeaderToken {
        header: "X-Webhook-Token".into(),
        token: name("webhook_token"),
    }
}

fn keys() -> Secrets {
    secrets(&[("webhook_password", PASSWORD), ("webhook_token", TOKEN)])
}

fn with_auth(value: &str) -> WebhookRequest {
    WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/x")
        .with_header("Authorization", value)
        .with_body(b"{}".to_vec())
}

fn basic_value(user: &str, password: &str) -> String {
    format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))
}

fn with_token(value: &str) -> WebhookRequest {
    WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/x")
        .with_header("X-Webhook-Token", value)
        .with_body(b"{}".to_vec())
}

#[test]
fn basic_accepts_the_configured_credentials() {
    // The password contains `:`; the user name ends at the first one.
    for value in [
        basic_value(USER, PASSWORD),
        basic_value(USER, PASSWORD).replace("Basic", "basic"),
    ] {
        assert_eq!(
            check(&basic(), &keys(), &with_auth(&value), now()),
            Ok(Verified::Authentic)
        );
    }
}

#[test]
fn basic_rejects_wrong_credentials() {
    for (user, password) in [
        (USER, "pa:ss w0rd"),
        (USER, ""),
        ("Kaleyra", PASSWORD),
        ("", PASSWORD),
        ("kaleyra:pa", "ss w0rd!x"),
    ] {
        let req = with_auth(&basic_value(user, password));
        assert_eq!(
            check(&basic(), &keys(), &req, now()),
            Err(AuthError::Mismatch),
            "{user}:{password}"
        );
    }
}

#[test]
fn basic_malformed_headers_are_typed() {
    let creds = b64(format!("{USER}:{PASSWORD}").as_bytes());
    for value in [
        format!("Bearer {creds}"),
        creds.clone(),
        "Basic".to_owned(),
        "Basic !!!".to_owned(),
        format!("Basic {}", b64(b"no-colon")),
        format!("Basic {}", &creds[..creds.len() - 1]),
    ] {
        let result = check(&basic(), &keys(), &with_auth(&value), now());
        assert!(
            matches!(result, Err(AuthError::Malformed { .. })),
            "{value}: {result:?}"
        );
    }
    let bare = WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/x");
    assert_eq!(
        check(&basic(), &keys(), &bare, now()),
        Err(AuthError::MissingHeader("Authorization".into()))
    );
    assert_eq!(
        check(
            &basic(),
            &secrets(&[]),
            &with_auth(&basic_value(USER, PASSWORD)),
            now()
        ),
        Err(AuthError::MissingSecret(name("webhook_password")))
    );
    assert!(matches!(
        check(
            &basic(),
            &secrets(&[("webhook_password", "")]),
            &with_auth(&basic_value(USER, "")),
            now()
        ),
        Err(AuthError::InvalidSecret { .. })
    ));
}

#[test]
fn header_token_matches_exactly() {
    let s = keys();
    assert_eq!(
        check(&header_token(), &s, &with_token(TOKEN), now()),
        Ok(Verified::Authentic)
    );
    for wrong in [
        "tok_9f8e7d6c5b4",
        "tok_9f8e7d6c5b4a0",
        "TOK_9F8E7D6C5B4A",
        "Bearer tok_9f8e7d6c5b4a",
    ] {
        assert_eq!(
            check(&header_token(), &s, &with_token(wrong), now()),
            Err(AuthError::Mismatch),
            "{wrong}"
        );
    }
    let bare = WebhookRequest::new(Method::Post, "https://gw.example.com/hooks/x");
    assert_eq!(
        check(&header_token(), &s, &bare, now()),
        Err(AuthError::MissingHeader("X-Webhook-Token".into()))
    );
    // An empty configured token must never let an empty header through.
    let empty = secrets(&[("webhook_token", "")]);
    assert!(matches!(
        check(&header_token(), &empty, &with_token(TOKEN), now()),
        Err(AuthError::InvalidSecret { .. })
    ));
    assert!(matches!(
        check(&header_token(), &s, &with_token(""), now()),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn none_is_always_authentic() {
    let req = WebhookRequest::new(Method::Get, "not a url").with_header("X", "y");
    assert_eq!(
        check(&WebhookAuth::None, &secrets(&[]), &req, now()),
        Ok(Verified::Authentic)
    );
}

#[test]
fn schemes_round_trip_through_json() {
    for scheme in [basic(), header_token(), WebhookAuth::None] {
        let json = serde_json::to_string(&scheme).unwrap();
        assert_eq!(serde_json::from_str::<WebhookAuth>(&json).unwrap(), scheme);
    }
    let sinch: WebhookAuth = serde_json::from_str(r#"{"scheme":"sinch","secret":"s"}"#).unwrap();
    assert_eq!(
        sinch,
        WebhookAuth::Sinch {
            secret: name("s"),
            tolerance: std::time::Duration::from_secs(300)
        }
    );
}

#[test]
fn auth_errors_become_invalid_signature() {
    use switchboard_core::ConnectorError;
    let err: ConnectorError = AuthError::Mismatch.into();
    assert_eq!(
        err,
        ConnectorError::InvalidSignature {
            reason: "signature mismatch".into()
        }
    );
    let err: ConnectorError = AuthError::MissingSecret(name("app_secret")).into();
    assert!(
        matches!(err, ConnectorError::InvalidSignature { ref reason } if reason.contains("app_secret"))
    );
}

fn mutate(text: &str, alphabet: &str, pos: usize, pick: usize) -> String {
    let i = pos % text.len();
    replace_ascii(
        text,
        i,
        other_char(alphabet, char::from(text.as_bytes()[i]), pick),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Changing any one character of the user or the password fails.
    #[test]
    fn basic_mutations_never_verify(
        user in "[ -9;-~]{0,16}",
        password in "[ -~]{1,24}",
        pos in any::<usize>(),
        pick in any::<usize>(),
        mutate_user in any::<bool>(),
    ) {
        let printable: String = (' '..='~').collect();
        let scheme = WebhookAuth::Basic { username: user.clone(), password: name("p") };
        let s = secrets(&[("p", &password)]);
        prop_assert_eq!(check(&scheme, &s, &with_auth(&basic_value(&user, &password)), now()), Ok(Verified::Authentic));
        let value = if mutate_user && !user.is_empty() {
            let no_colon: String = printable.chars().filter(|&c| c != ':').collect();
            basic_value(&mutate(&user, &no_colon, pos, pick), &password)
        } else {
            basic_value(&user, &mutate(&password, &printable, pos, pick))
        };
        assert_rejected_quietly(check(&scheme, &s, &with_auth(&value), now()), &[&password]);
    }

    /// Changing any one character of the token, or cutting or extending it, fails.
    #[test]
    fn header_token_mutations_never_verify(
        token in "[!-~]{1,40}",
        pos in any::<usize>(),
        pick in any::<usize>(),
        how in 0..3u8,
    ) {
        let visible: String = ('!'..='~').collect();
        let scheme = WebhookAuth::HeaderToken { header: "X-Webhook-Token".into(), token: name("t") };
        let s = secrets(&[("t", &token)]);
        prop_assert_eq!(check(&scheme, &s, &with_token(&token), now()), Ok(Verified::Authentic));
        let given = match how {
            0 => mutate(&token, &visible, pos, pick),
            1 => format!("{token}{}", other_char(&visible, ' ', pick)),
            _ => token[..pos % token.len()].to_owned(),
        };
        let result = if given.is_empty() {
            check(&scheme, &s, &with_token(""), now())
        } else {
            check(&scheme, &s, &with_token(&given), now())
        };
        assert_rejected_quietly(result, &[&token]);
    }
}
