//! Unit tests of `aws.rs`.

use super::*;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// The credentials of AWS's published SigV4 test suite.
const SUITE_KEY: SigningKey<'static> = SigningKey {
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    session_token: None,
};

fn suite_time() -> SystemTime {
    // 2015-08-30T12:36:00Z
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
}

fn authorization(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .map(|(_, value)| value.as_str())
}

#[test]
fn signing_matches_the_published_sigv4_vectors() -> Result<(), StoreFailure> {
    // aws-sig-v4-test-suite `get-vanilla` and `post-vanilla`.
    let url = "https://example.amazonaws.com/";
    let get = sign_request(
        "GET",
        url,
        &[],
        b"",
        SUITE_KEY,
        "us-east-1",
        "service",
        suite_time(),
    )?;
    assert_eq!(
        authorization(&get),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    );
    assert!(get.contains(&("x-amz-date".to_owned(), "20150830T123600Z".to_owned())));
    let post = sign_request(
        "POST",
        url,
        &[],
        b"",
        SUITE_KEY,
        "us-east-1",
        "service",
        suite_time(),
    )?;
    assert!(
        authorization(&post).is_some_and(|value| value.ends_with(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )),
        "{post:?}"
    );
    Ok(())
}

#[test]
fn a_session_token_is_sent_and_signed() -> Result<(), StoreFailure> {
    let key = SigningKey {
        session_token: Some("FwoGZXIvYXdzEXAMPLE"),
        ..SUITE_KEY
    };
    let url = "https://secretsmanager.eu-west-1.amazonaws.com/";
    let signed = sign_request(
        "POST",
        url,
        &[],
        b"{}",
        key,
        "eu-west-1",
        SERVICE,
        suite_time(),
    )?;
    assert!(signed.contains(&(
        "x-amz-security-token".to_owned(),
        "FwoGZXIvYXdzEXAMPLE".to_owned()
    )));
    assert!(
        authorization(&signed).is_some_and(
            |value| value.contains("SignedHeaders=host;x-amz-date;x-amz-security-token")
        ),
        "{signed:?}"
    );
    Ok(())
}

#[test]
fn the_endpoint_is_the_regional_one_unless_one_is_given() -> Result<(), StoreFailure> {
    let mut connection = StoreConnection {
        provider_id: uuid::Uuid::nil(),
        revision: 1,
        kind: StoreKind::AwsSecretsManager {
            region: "eu-central-2".to_owned(),
            endpoint_url: None,
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: SecretString::from("s3cr3t".to_owned()),
            session_token: None,
        },
        allow_internal_network: false,
    };
    let regional = Aws::of(&connection)?.endpoint;
    assert_eq!(
        regional.as_str(),
        "https://secretsmanager.eu-central-2.amazonaws.com/"
    );
    if let StoreKind::AwsSecretsManager { endpoint_url, .. } = &mut connection.kind {
        *endpoint_url = Some("http://127.0.0.1:4566".to_owned());
    }
    assert_eq!(
        Aws::of(&connection)?.endpoint.as_str(),
        "http://127.0.0.1:4566/"
    );
    Ok(())
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
        headers: HeaderMap::new(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn error_types_come_from_json_or_xml_bodies() {
    let json = reply(
        400,
        r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"gone"}"#,
    );
    assert_eq!(
        error_of(&json),
        (
            Some("ResourceNotFoundException".to_owned()),
            Some("gone".to_owned())
        )
    );
    let xml = reply(
        403,
        "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error></ErrorResponse>",
    );
    assert_eq!(
        error_of(&xml),
        (
            Some("SignatureDoesNotMatch".to_owned()),
            Some("no".to_owned())
        )
    );
}

#[test]
fn binary_secrets_are_text_when_they_are_utf8() {
    let text = value_of(json!({ "SecretBinary": "aMOpbGxv" }), "bin").expect("utf-8");
    assert_eq!(text.expose_secret(), "héllo");
    let failure = value_of(json!({ "SecretBinary": "/w==" }), "bin").expect_err("not utf-8");
    assert!(failure.to_string().contains("bin"), "{failure}");
}
