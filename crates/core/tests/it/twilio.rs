//! `Twilio`: `X-Twilio-Signature`, every vector of providers.md §1.6 (T1–T16), the JSON-body
//! variant, port and encoding variants, and `rebase_url`.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use switchboard_core::webhook_auth::{AuthError, Verified, WebhookAuth, rebase_url};
use switchboard_core::{Method, Secrets, WebhookRequest};

use crate::support::*;

const TOKEN: &str = "12345";
const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const P: [(&str, &str); 5] = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
];
const JSON_BODY: &str = r#"{"property": "value", "boolean": true}"#;
const T8: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const T10: &str = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn scheme() -> WebhookAuth {
    WebhookAuth::Twilio {
        auth_token: name("auth_token"),
    }
}

fn token() -> Secrets {
    secrets(&[("auth_token", TOKEN)])
}

fn form_post(url: &str, params: &[(&str, &str)], sig: &str) -> WebhookRequest {
    WebhookRequest::new(Method::Post, url)
        .with_header("Content-Type", "application/x-www-form-urlencoded")
        .with_header("X-Twilio-Signature", sig)
        .with_body(form(params))
}

fn json_post(url: &str, body: &str, sig: &str) -> WebhookRequest {
    WebhookRequest::new(Method::Post, url)
        .with_header("Content-Type", "application/json")
        .with_header("X-Twilio-Signature", sig)
        .with_body(body.as_bytes().to_vec())
}

fn ok(req: &WebhookRequest) {
    assert_eq!(
        check(&scheme(), &token(), req, now()),
        Ok(Verified::Authentic),
        "{req:?}"
    );
}

fn mismatch(req: &WebhookRequest) {
    assert_eq!(
        check(&scheme(), &token(), req, now()),
        Err(AuthError::Mismatch),
        "{req:?}"
    );
}

#[test]
fn t1_url_as_given() {
    ok(&form_post(U, &P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    assert_eq!(
        twilio_signature(TOKEN, U, &P),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[test]
fn t2_https_default_port_added() {
    assert_eq!(
        twilio_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &P),
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    );
    ok(&form_post(U, &P, "kvajT1Ptam85bY51eRf/AJRuM3w="));
    // And the explicit-port request URL, as given.
    ok(&form_post(
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &P,
        "kvajT1Ptam85bY51eRf/AJRuM3w=",
    ));
    // The explicit :443 URL also matches a signature over the stripped form.
    ok(&form_post(
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &P,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    ));
}

#[test]
fn t3_http_default_port_added() {
    let sig = "0ZXoZLH/DfblKGATFgpif+LLRf4=";
    assert_eq!(
        twilio_signature(TOKEN, "http://mycompany.com:80/myapp.php?foo=1&bar=2", &P),
        sig
    );
    ok(&form_post(
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
    ok(&form_post(
        "http://mycompany.com:80/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
    // :443 is not http's default.
    mismatch(&form_post(
        "http://mycompany.com:443/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
}

#[test]
fn t4_http_explicit_port_as_given() {
    let sig = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=";
    assert_eq!(
        twilio_signature(TOKEN, "http://mycompany.com:1234/myapp.php?foo=1&bar=2", &P),
        sig
    );
    ok(&form_post(
        "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
    mismatch(&form_post(
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
    mismatch(&form_post(
        "http://mycompany.com:1235/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
}

#[test]
fn t5_non_default_port_stripped() {
    ok(&form_post(
        "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
        &P,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    ));
}

#[test]
fn t6_repeated_names_sorted_and_deduplicated() {
    let sig = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
    let orders: [&[(&str, &str)]; 3] = [
        &[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ],
        &[
            ("Digits", "1234"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Sid", "CA123"),
        ],
        &[
            ("Digits", "1234"),
            ("Digits", "1234"),
            ("Digits", "5678"),
            ("SidAccount", "AC123"),
            ("Sid", "CA123"),
        ],
    ];
    for params in orders {
        ok(&form_post(U, params, sig));
    }
    mismatch(&form_post(
        U,
        &[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
        ],
        sig,
    ));
}

#[test]
fn t7_array_parameter_either_order() {
    let sig = "83O6e2vORAoJHUNzJjDWN1jz+BA=";
    ok(&form_post(
        U,
        &[
            ("MessagingBinding.Address", "+1325xxxxxxx"),
            ("MessagingBinding.Address", "+1415xxxxxxx"),
        ],
        sig,
    ));
    ok(&form_post(
        U,
        &[
            ("MessagingBinding.Address", "+1415xxxxxxx"),
            ("MessagingBinding.Address", "+1325xxxxxxx"),
        ],
        sig,
    ));
}

#[test]
fn t8_t10_body_hashes() {
    assert_eq!(hex::encode(Sha256::digest(JSON_BODY)), T8);
    assert_eq!(hex::encode(Sha256::digest("{}")), T10);
}

#[test]
fn t9_json_body_with_body_sha256() {
    let url = format!("{U}&bodySHA256={T8}");
    let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
    assert_eq!(twilio_signature(TOKEN, &url, &[]), sig);
    ok(&json_post(&url, JSON_BODY, sig));
    // Another body under the same signed URL: the hash no longer matches.
    mismatch(&json_post(
        &url,
        r#"{"property": "value", "boolean": false}"#,
        sig,
    ));
    mismatch(&json_post(&url, "", sig));
    // A tampered hash in the URL breaks the signature.
    let bad_hash = format!("{U}&bodySHA256={}", T8.replace("0a1f", "0a1e"));
    mismatch(&json_post(&bad_hash, JSON_BODY, sig));
    // The body hash may be given in upper case.
    let upper = format!("{U}&bodySHA256={}", T8.to_uppercase());
    let upper_sig = twilio_signature(TOKEN, &upper, &[]);
    ok(&json_post(&upper, JSON_BODY, &upper_sig));
}

#[test]
fn t11_empty_json_matches_only_with_port() {
    let url = format!("{U}&bodySHA256={T10}");
    let sig = "Ldidvp12m26NI7eqEvxnEpkd9Hc=";
    assert_ne!(
        twilio_signature(TOKEN, &url, &[]),
        sig,
        "must not match the URL as given"
    );
    assert_eq!(
        twilio_signature(TOKEN, &url.replace(".com/", ".com:443/"), &[]),
        sig,
        "matches the :443 variant"
    );
    ok(&json_post(&url, "{}", sig));
    mismatch(&json_post(&url, "{ }", sig));
}

#[test]
fn t12_only_body_sha256_param() {
    let url = format!("https://mycompany.com/myapp.php?bodySHA256={T8}");
    ok(&json_post(&url, JSON_BODY, "y77kIzt2vzLz71DgmJGsen2scGs="));
}

#[test]
fn t13_t14_t16_user_info_stays_signed() {
    let with_creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    ok(&form_post(with_creds, &P, "CukzLTc1tT5dXEDIHm/tKBanW10="));
    ok(&form_post(with_creds, &P, "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="));
    assert_eq!(
        twilio_signature(
            TOKEN,
            "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2",
            &P
        ),
        "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="
    );
    ok(&form_post(
        "https://user@mycompany.com/myapp.php?foo=1&bar=2",
        &P,
        "2YRLlVAflCqxaNicjMpJcSTgzSs=",
    ));
    // Without the user info the signature does not match.
    mismatch(&form_post(U, &P, "CukzLTc1tT5dXEDIHm/tKBanW10="));
    mismatch(&form_post(
        "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
        &P,
        "2YRLlVAflCqxaNicjMpJcSTgzSs=",
    ));
}

#[test]
fn t15_query_re_encoded() {
    let request_url = format!("{U}&Body=It's+amazing");
    let sig = "TfZzewPq8wqrGlMfyAud8+/IvJ0=";
    assert_eq!(
        twilio_signature(TOKEN, &format!("{U}&Body=It%27s+amazing"), &P),
        sig
    );
    ok(&form_post(&request_url, &P, sig));
    // The same request signed over the URL exactly as received also verifies, and so does
    // the legacy `querystring` form (`+` as `%20`).
    ok(&form_post(
        &request_url,
        &P,
        &twilio_signature(TOKEN, &request_url, &P),
    ));
    let legacy = format!("{U}&Body=It's%20amazing");
    ok(&form_post(
        &request_url,
        &P,
        &twilio_signature(TOKEN, &legacy, &P),
    ));
    // Re-encoding never stands in for a different value.
    let other = format!("{U}&Body=Its+amazing");
    mismatch(&form_post(&other, &P, sig));
}

#[test]
fn get_requests_sign_the_url_only() {
    let url = "https://mycompany.com/status?MessageSid=SM1&MessageStatus=delivered";
    let sig = twilio_signature(TOKEN, url, &[]);
    let get = WebhookRequest::new(Method::Get, url).with_header("X-Twilio-Signature", sig.as_str());
    ok(&get);
    let with_body = get.clone().with_body(b"MessageStatus=failed".to_vec());
    assert!(matches!(
        check(&scheme(), &token(), &with_body, now()),
        Err(AuthError::Malformed { .. })
    ));
    let changed = WebhookRequest::new(Method::Get, url.replace("delivered", "failed"))
        .with_header("X-Twilio-Signature", sig.as_str());
    mismatch(&changed);
}

#[test]
fn tampering_fails() {
    let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    let mut extra = P.to_vec();
    extra.push(("Body", "hi"));
    mismatch(&form_post(U, &extra, sig));
    mismatch(&form_post(U, &P[1..], sig));
    let mut changed = P;
    changed[2] = ("Digits", "1235");
    mismatch(&form_post(U, &changed, sig));
    mismatch(&form_post(
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        &P,
        sig,
    ));
    mismatch(&form_post(
        "https://MyCompany.com/myapp.php?foo=1&bar=2",
        &P,
        sig,
    ));
    mismatch(&form_post(
        "https://mycompany.com/myapp.php?foo=1&bar=2&x",
        &P,
        sig,
    ));
    mismatch(&form_post(U, &P, "RSOYDt4T1cUTdK1PDd94/VVr8B8="));
    // The same params in a JSON body under a bodySHA256 URL do not verify as a form.
    let url = format!("{U}&bodySHA256={T8}");
    mismatch(&json_post(&url, JSON_BODY, sig));
}

#[test]
fn malformed_input_is_typed() {
    let s = token();
    let base = form_post(U, &P, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    let no_sig = WebhookRequest {
        headers: vec![],
        ..base.clone()
    };
    assert_eq!(
        check(&scheme(), &s, &no_sig, now()),
        Err(AuthError::MissingHeader("X-Twilio-Signature".into()))
    );
    for sig in [
        "WRONG_SIGNATURE",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8==",
        "RSOYDt4T1cUTdK1PDd93/VVr8B!=",
        "sha1=RSOYDt4T1cUTdK1PDd93/VV=",
    ] {
        let req = form_post(U, &P, sig);
        assert!(
            matches!(
                check(&scheme(), &s, &req, now()),
                Err(AuthError::Malformed { .. })
            ),
            "{sig}"
        );
    }
    for url in [
        "/myapp.php?foo=1",
        "mycompany.com/myapp.php",
        "ftp://mycompany.com/x",
        "https://",
        "https://h:x/",
    ] {
        let req = form_post(url, &P, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(
            matches!(
                check(&scheme(), &s, &req, now()),
                Err(AuthError::Malformed { .. })
            ),
            "{url}"
        );
    }
    let not_utf8 = base.clone().with_body(b"Body=%FF%FE&From=x".to_vec());
    assert!(matches!(
        check(&scheme(), &s, &not_utf8, now()),
        Err(AuthError::Malformed { .. })
    ));
    let bad_hash = json_post(
        &format!("{U}&bodySHA256=xyz"),
        JSON_BODY,
        "a9nBmqA0ju/hNViExpshrM61xv4=",
    );
    assert!(matches!(
        check(&scheme(), &s, &bad_hash, now()),
        Err(AuthError::Malformed { .. })
    ));
    assert_eq!(
        check(&scheme(), &secrets(&[]), &base, now()),
        Err(AuthError::MissingSecret(name("auth_token")))
    );
    assert!(matches!(
        check(&scheme(), &secrets(&[("auth_token", "")]), &base, now()),
        Err(AuthError::InvalidSecret { .. })
    ));
}

#[test]
fn behind_a_tls_proxy_rebase_then_verify() {
    // What the server saw behind the proxy, and the channel's configured public base URL.
    let received = "http://10.0.0.5:8080/myapp.php?foo=1&bar=2";
    let rebased = rebase_url(received, "https://mycompany.com").unwrap();
    assert_eq!(rebased, U);
    ok(&form_post(&rebased, &P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    mismatch(&form_post(received, &P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));

    // A gateway that strips a path prefix, with user info in the configured URL.
    let rebased = rebase_url("/myapp.php?foo=1&bar=2", "https://user:pass@mycompany.com/").unwrap();
    ok(&form_post(&rebased, &P, "CukzLTc1tT5dXEDIHm/tKBanW10="));
    let rebased = rebase_url("http://internal/hook?x=1", "https://pub.example.com/sb/").unwrap();
    assert_eq!(rebased, "https://pub.example.com/sb/hook?x=1");
    // The received query is kept byte for byte.
    let rebased = rebase_url(
        "http://internal/myapp.php?foo=1&bar=2&Body=It's+amazing",
        "https://mycompany.com",
    )
    .unwrap();
    ok(&form_post(&rebased, &P, "TfZzewPq8wqrGlMfyAud8+/IvJ0="));
    assert!(matches!(
        rebase_url(received, "mycompany.com"),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        rebase_url(received, "https://mycompany.com/?a=1"),
        Err(AuthError::Malformed { .. })
    ));
}

#[derive(Debug, Clone)]
enum Mutation {
    ChangeValue {
        param: usize,
        pos: usize,
        pick: usize,
    },
    AddParam(String),
    RemoveParam(usize),
    UrlChar {
        pos: usize,
        pick: usize,
    },
    SignatureChar {
        pos: usize,
        pick: usize,
    },
    OtherToken,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(param, pos, pick)| Mutation::ChangeValue { param, pos, pick }),
        "[ -~]{0,12}".prop_map(Mutation::AddParam),
        any::<usize>().prop_map(Mutation::RemoveParam),
        (any::<usize>(), any::<usize>()).prop_map(|(pos, pick)| Mutation::UrlChar { pos, pick }),
        (any::<usize>(), any::<usize>())
            .prop_map(|(pos, pick)| Mutation::SignatureChar { pos, pick }),
        Just(Mutation::OtherToken),
    ]
}

const PROP_URL: &str = "https://gw.example.com:8443/hooks/twilio/ch42?tenant=acme7&v=2";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A signed form POST verifies; each mutation changes the signed string or the signature
    /// and fails. Names are distinct, so changing one value always changes the signed string.
    #[test]
    fn mutations_never_verify(
        values in proptest::collection::vec("\\PC{1,16}", 1..12),
        m in mutation(),
    ) {
        let names: Vec<String> = (0..values.len()).map(|i| format!("Param{i}")).collect();
        let params: Vec<(&str, &str)> = names.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
        let sig = twilio_signature(TOKEN, PROP_URL, &params);
        prop_assert_eq!(check(&scheme(), &token(), &form_post(PROP_URL, &params, &sig), now()), Ok(Verified::Authentic));

        let mut url = PROP_URL.to_owned();
        let mut sig2 = sig.clone();
        let mut params2: Vec<(String, String)> = params.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        let mut tok = TOKEN;
        match m {
            Mutation::ChangeValue { param, pos, pick } => {
                let value = &mut params2[param % values.len()].1;
                let chars: Vec<char> = value.chars().collect();
                let at = pos % chars.len();
                let replacement = other_char("abcXYZ019 +&=%'é", chars[at], pick);
                *value = chars.iter().enumerate().map(|(i, c)| if i == at { replacement } else { *c }).collect();
            }
            Mutation::AddParam(v) => params2.push(("Extra".to_owned(), v)),
            Mutation::RemoveParam(i) => { params2.remove(i % values.len()); }
            Mutation::UrlChar { pos, pick } => {
                // Only path and query characters: the port is legitimately variable.
                let start = PROP_URL.find("/hooks").unwrap();
                let candidates: Vec<usize> = (start..PROP_URL.len()).filter(|&i| PROP_URL.as_bytes()[i].is_ascii_alphanumeric()).collect();
                let i = candidates[pos % candidates.len()];
                url = replace_ascii(PROP_URL, i, other_char(ALNUM, char::from(PROP_URL.as_bytes()[i]), pick));
            }
            Mutation::SignatureChar { pos, pick } => sig2 = mutate_base64(&sig, pos, pick),
            Mutation::OtherToken => tok = "54321",
        }
        let pairs: Vec<(&str, &str)> = params2.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let tampered = form_post(&url, &pairs, &sig2);
        let s = secrets(&[("auth_token", tok)]);
        assert_rejected_quietly(check(&scheme(), &s, &tampered, now()), &[TOKEN, "54321", &sig, &sig2]);
    }

    /// JSON bodies: any change to the body breaks the `bodySHA256` binding.
    #[test]
    fn json_body_mutations_never_verify(body in proptest::collection::vec(any::<u8>(), 0..256), index in any::<usize>(), xor in 1..=255u8) {
        let url = format!("{PROP_URL}&bodySHA256={}", hex::encode(Sha256::digest(&body)));
        let sig = twilio_signature(TOKEN, &url, &[]);
        let req = WebhookRequest::new(Method::Post, url.as_str()).with_header("X-Twilio-Signature", sig.as_str()).with_body(body.clone());
        prop_assert_eq!(check(&scheme(), &token(), &req, now()), Ok(Verified::Authentic));
        let mut body2 = body.clone();
        if body2.is_empty() { body2.push(xor) } else { let i = index % body2.len(); body2[i] ^= xor }
        let tampered = req.with_body(body2);
        prop_assert_eq!(check(&scheme(), &token(), &tampered, now()), Err(AuthError::Mismatch));
    }
}
