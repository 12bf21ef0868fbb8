//! `SmtpSender` (lettre) delivering to an SMTP server over a real socket:
//! a minimal in-test SMTP sink speaking the protocol (RFC 5321 greeting,
//! EHLO, MAIL, RCPT, DATA, QUIT) on 127.0.0.1:0, and a real SMTP server
//! (aiosmtpd, started by `scripts/test.sh` through `scripts/smtp.sh`) that
//! receives a registration's verification mail, parsed here.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use poem::http::StatusCode;
use portcullis::{Email, EmailSender, SmtpSender};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::oneshot,
};

use crate::common::{app_with, test_config};

/// Accepts one SMTP session and returns the DATA it received.
async fn sink() -> (u16, oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let mut data = String::new();
        let mut in_data = false;
        while let Some(line) = lines.next_line().await.unwrap() {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 OK queued\r\n").await.unwrap();
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 sink\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => b"502 not implemented\r\n",
            };
            write.write_all(reply).await.unwrap();
        }
        let _ = tx.send(data);
    });
    (port, rx)
}

#[tokio::test]
async fn smtp_sender_delivers_text_and_html() {
    let (port, received) = sink().await;
    let sender = SmtpSender::from_url(
        &format!("smtp://127.0.0.1:{port}"),
        "Portcullis <no-reply@example.com>",
    )
    .unwrap();
    sender
        .send(
            Email::new(
                "alice@example.com",
                "Verify your email",
                "Open https://x.test/verify?token=abc",
            )
            .with_html("<a href=\"https://x.test/verify?token=abc\">Verify</a>"),
        )
        .await
        .unwrap();
    let data = received.await.unwrap();
    assert!(data.contains("Subject: Verify your email"), "{data}");
    assert!(data.contains("To: alice@example.com"), "{data}");
    assert!(
        data.contains("From: Portcullis <no-reply@example.com>"),
        "{data}"
    );
    assert!(data.contains("text/html"), "{data}");
    assert!(data.contains("verify?token=abc"), "{data}");
}

#[tokio::test]
async fn smtp_errors_are_errors_not_panics() {
    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender =
        SmtpSender::from_url(&format!("smtp://127.0.0.1:{port}"), "a@example.com").unwrap();
    assert!(sender
        .send(Email::new("b@example.com", "s", "t"))
        .await
        .is_err());
    assert!(SmtpSender::from_url("not a url", "a@example.com").is_err());
    assert!(SmtpSender::from_url("smtp://127.0.0.1:25", "not an address").is_err());
}

#[tokio::test]
async fn outbox_keeps_what_was_sent() {
    let outbox = portcullis::Outbox::new();
    outbox
        .send(Email::new("a@example.com", "one", "1"))
        .await
        .unwrap();
    outbox
        .send(Email::new("A@example.com", "two", "2"))
        .await
        .unwrap();
    assert_eq!(outbox.sent().len(), 2);
    assert_eq!(outbox.last_to("a@example.com").unwrap().subject, "two");
    outbox.clear();
    assert!(outbox.sent().is_empty());
    portcullis::LogSender
        .send(Email::new("a@example.com", "log", "body"))
        .await
        .unwrap();
}

#[tokio::test]
async fn registration_mail_reaches_a_real_smtp_server_and_its_link_verifies() {
    let (url, dir) = test_smtp_server();
    let from = "Portcullis <no-reply@example.com>";
    let sender = SmtpSender::from_url(&url, from).unwrap();
    // The builder keeps the last sender: SMTP replaces the test outbox.
    let app = app_with(test_config(), |b| b.email_sender(sender)).await;
    let email = format!("smtp-{}@example.com", uuid::Uuid::new_v4().simple());
    app.register(&email).await;
    app.manager.wait_for_deliveries().await;
    assert!(app.outbox.sent().is_empty(), "{:?}", app.outbox.sent());

    let (raw, envelope) = received_mail(&dir, &email).await;
    assert_eq!(envelope["mail_from"], "no-reply@example.com", "{envelope}");
    assert_eq!(envelope["rcpt_tos"], json!([email]), "{envelope}");
    let message = Part::parse(&raw);
    assert_eq!(message.header("to"), Some(email.as_str()), "{raw}");
    assert_eq!(message.header("from"), Some(from), "{raw}");
    let subject = message.header("subject").unwrap_or_default();
    assert!(subject.contains("Confirm your email"), "{raw}");
    assert_eq!(message.mime_type(), "multipart/alternative", "{raw}");

    let text = Part::parse(&raw)
        .find("text/plain")
        .unwrap_or_else(|| panic!("no text/plain part: {raw}"))
        .decoded();
    let prefix = "https://api.example.com/auth/verify-email?token=";
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no verification link: {text}"))
        + prefix.len();
    let token: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "256-bit token, base64url: {text}");
    let html = Part::parse(&raw)
        .find("text/html")
        .unwrap_or_else(|| panic!("no text/html part: {raw}"))
        .decoded();
    assert!(html.contains(&token), "{html}");

    let (status, body) = app
        .post("/auth/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], email.as_str(), "{body}");
    assert_eq!(body["email_verified"], true, "{body}");
}

#[test]
fn the_mime_reader_undoes_both_transfer_encodings() {
    let raw = "To: a@example.com\r\nContent-Type: multipart/alternative;\r\n \
               boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
               Content-Transfer-Encoding: base64\r\n\r\naHR0cHM6Ly94LnRlc3QvP3Rva2Vu\r\n\
               PWFiYyDigJQgb2s=\r\n--b1\r\nContent-Type: text/html\r\n\
               Content-Transfer-Encoding: quoted-printable\r\n\r\n<a href=3D\"x\">=\r\n\
               =E2=80=94</a>\r\n--b1--\r\n";
    assert_eq!(Part::parse(raw).header("TO"), Some("a@example.com"));
    let text = Part::parse(raw).find("text/plain").unwrap().decoded();
    assert_eq!(text, "https://x.test/?token=abc \u{2014} ok");
    let html = Part::parse(raw).find("text/html").unwrap().decoded();
    assert_eq!(html, "<a href=\"x\">\u{2014}</a>");
}

/// Waits (up to 10 s) until the server has stored a message whose `To` is
/// `to`; returns it, raw, and its envelope.
async fn received_mail(dir: &Path, to: &str) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|err| {
            panic!(
                "cannot read the SMTP mail directory {}: {err}",
                dir.display()
            )
        });
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "eml") {
                continue;
            }
            let raw = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let addressed = Part::parse(&raw)
                .header("to")
                .is_some_and(|value| value.eq_ignore_ascii_case(to));
            if addressed {
                // Written before the message, so it is there.
                let envelope = std::fs::read_to_string(path.with_extension("json")).unwrap();
                return (raw, serde_json::from_str(&envelope).unwrap());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {to} in {} after 10 s",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SMTP server `scripts/test.sh` starts (aiosmtpd, via
/// `scripts/smtp.sh`): its URL and the directory where it stores every
/// message it receives as `<n>.eml` (plus the envelope as `<n>.json`).
fn test_smtp_server() -> (String, std::path::PathBuf) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set. Run `scripts/test.sh`, which installs and starts aiosmtpd \
                 (an SMTP server from PyPI that stores what it receives) and sets it, or run \
                 `scripts/smtp.sh start` and export the PORTCULLIS_TEST_SMTP_URL and \
                 PORTCULLIS_TEST_SMTP_DIR lines it prints (`scripts/smtp.sh stop` stops it)"
            )
        })
    };
    (
        var("PORTCULLIS_TEST_SMTP_URL"),
        var("PORTCULLIS_TEST_SMTP_DIR").into(),
    )
}

/// A MIME entity: unfolded headers and the raw (still encoded) body.
#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    /// Parses a message or body part (CRLF or LF line ends).
    fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a continuation after a header");
                last.1.push(' ');
                last.1.push_str(line.trim());
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lowercase, without parameters.
    fn mime_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("text/plain")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// A `Content-Type` parameter, unquoted.
    fn param(&self, name: &str) -> Option<String> {
        let content_type = self.header("content-type")?;
        content_type.split(';').skip(1).find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// The parts of a multipart body, in order.
    fn children(&self) -> Vec<Part> {
        let boundary = self.param("boundary").expect("a multipart boundary");
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut current: Option<String> = None;
        for line in self.body.lines() {
            if line.trim_end() == delimiter || line.trim_end() == format!("{delimiter}--") {
                if let Some(part) = current.take() {
                    parts.push(Part::parse(&part));
                }
                if line.trim_end() != delimiter {
                    break;
                }
                current = Some(String::new());
            } else if let Some(part) = current.as_mut() {
                part.push_str(line);
                part.push('\n');
            }
        }
        parts
    }

    /// The first part (this one or, depth first, a descendant) of `mime`.
    fn find(self, mime: &str) -> Option<Part> {
        if self.mime_type() == mime {
            return Some(self);
        }
        if self.mime_type().starts_with("multipart/") {
            return self.children().into_iter().find_map(|p| p.find(mime));
        }
        None
    }

    /// The body with its `Content-Transfer-Encoding` undone, as UTF-8.
    fn decoded(&self) -> String {
        let encoding = self
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "base64" => {
                use base64::Engine;
                let compact: String = self.body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("valid base64")
            }
            "quoted-printable" => quoted_printable(&self.body),
            "7bit" | "8bit" | "binary" => self.body.clone().into_bytes(),
            other => panic!("unexpected Content-Transfer-Encoding {other}"),
        };
        String::from_utf8(bytes).expect("a UTF-8 body")
    }
}

/// Decodes quoted-printable (RFC 2045 §6.7): `=XX` escapes and `=` soft
/// line breaks.
fn quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lines = body.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches([' ', '\t']);
        let (line, soft_break) = match line.strip_suffix('=') {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let mut at = 0;
        while at < line.len() {
            if line.as_bytes()[at] == b'=' {
                let hex = line.get(at + 1..at + 3).expect("a =XX escape");
                out.push(u8::from_str_radix(hex, 16).expect("a =XX escape"));
                at += 3;
            } else {
                out.push(line.as_bytes()[at]);
                at += 1;
            }
        }
        if !soft_break && lines.peek().is_some() {
            out.push(b'\n');
        }
    }
    out
}
