//! `SmtpSender` (lettre) delivering to an SMTP server over a real socket.
//! The server is a minimal SMTP sink speaking the protocol (RFC 5321
//! greeting, EHLO, MAIL, RCPT, DATA, QUIT) on 127.0.0.1:0.

use portcullis::{Email, EmailSender, SmtpSender};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::oneshot,
};

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
