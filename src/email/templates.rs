//! Email templates: what each flow's mail says, apart from how it is sent.

use std::fmt::Write as _;

use super::Email;

/// A message a flow sends. Links are absolute URLs built from the
/// configured `public_url`, never from a request's `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Confirm the address: sent after registration and on request.
    VerifyEmail {
        /// `…/auth/verify-email?token=…`
        link: String,
        /// Seconds the link stays valid.
        expires_in_secs: u64,
    },
    /// Reset a forgotten password.
    ResetPassword {
        /// `…/auth/reset-password?token=…`: the front-end reads the token
        /// and posts it with the new password.
        link: String,
        /// Seconds the link stays valid.
        expires_in_secs: u64,
    },
    /// Notice: the password was changed, reset or set.
    PasswordChanged,
    /// Sent to the new address: confirm an email change.
    ConfirmEmailChange {
        /// `…/auth/account/confirm-email-change?token=…`
        link: String,
        /// The new address.
        new_email: String,
        /// Seconds the link stays valid.
        expires_in_secs: u64,
    },
    /// Notice to the old address: a change to `new_email` was requested.
    EmailChangeRequested {
        /// The requested new address.
        new_email: String,
    },
    /// A sign-in link (magic link).
    MagicLink {
        /// `…/auth/magic-link/verify?token=…`
        link: String,
        /// Seconds the link stays valid.
        expires_in_secs: u64,
    },
    /// An invitation to join an organization (sent to the invited address).
    OrgInvitation {
        /// `…/orgs/invitations/accept?token=…`: the front-end signs the
        /// user in (with the invited, verified address) and posts the token
        /// to `POST /orgs/invitations/accept`.
        link: String,
        /// The organization's name.
        org_name: String,
        /// Who invited (their email).
        inviter: String,
        /// Seconds the link stays valid.
        expires_in_secs: u64,
    },
    /// A one-time sign-in code.
    EmailCode {
        /// The digits to type.
        code: String,
        /// Seconds the code stays valid.
        expires_in_secs: u64,
    },
    /// Notice: sign-in identities linked from an email their provider had
    /// not verified were removed, because the owner proved the address.
    AccountsUnlinked {
        /// The providers whose identities were removed (ids, e.g. `github`).
        providers: Vec<String>,
    },
    /// Notice to the owner of an address someone tried to register again
    /// (enumeration-safe registration).
    RegistrationAttempted,
    /// The code, mailed to the current address, confirming an email change
    /// (the re-authentication of users without a password).
    ConfirmEmailChangeCode {
        /// The code to send back in `POST /auth/account/change-email`.
        code: String,
        /// Seconds the code stays valid.
        expires_in_secs: u64,
    },
    /// Notice: a second factor was added to or removed from the account.
    SecondFactorChanged {
        /// `true` for an enrolment, `false` for a removal.
        enrolled: bool,
    },
    /// Notice: a new set of recovery codes replaced the old one.
    RecoveryCodesRegenerated,
    /// Notice: a passkey was added to or removed from the account.
    PasskeyChanged {
        /// The passkey's name.
        passkey: String,
        /// `true` when added, `false` when removed.
        added: bool,
    },
    /// Notice: a recovery code was used to sign in.
    RecoveryCodeUsed {
        /// Codes left.
        remaining: usize,
    },
    /// The code confirming the deletion of one's account.
    ConfirmAccountDeletion {
        /// The code to send back in `DELETE /auth/account`.
        code: String,
        /// Seconds the code stays valid.
        expires_in_secs: u64,
    },
}

impl Message {
    /// The snake_case name of the message, e.g. `verify_email`.
    pub fn name(&self) -> &'static str {
        match self {
            Message::VerifyEmail { .. } => "verify_email",
            Message::ResetPassword { .. } => "reset_password",
            Message::PasswordChanged => "password_changed",
            Message::ConfirmEmailChange { .. } => "confirm_email_change",
            Message::EmailChangeRequested { .. } => "email_change_requested",
            Message::ConfirmAccountDeletion { .. } => "confirm_account_deletion",
            Message::ConfirmEmailChangeCode { .. } => "confirm_email_change_code",
            Message::RegistrationAttempted => "registration_attempted",
            Message::MagicLink { .. } => "magic_link",
            Message::EmailCode { .. } => "email_code",
            Message::OrgInvitation { .. } => "org_invitation",
            Message::AccountsUnlinked { .. } => "accounts_unlinked",
            Message::SecondFactorChanged { .. } => "second_factor_changed",
            Message::RecoveryCodeUsed { .. } => "recovery_code_used",
            Message::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Message::PasskeyChanged { .. } => "passkey_changed",
        }
    }
}

/// Who a message goes to and the app it comes from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MessageContext<'a> {
    /// Recipient address.
    pub to: &'a str,
    /// The recipient's display name, when known.
    pub name: Option<&'a str>,
    /// Product name, from `email.app_name`.
    pub app_name: &'a str,
    /// The configured public base URL (no trailing slash).
    pub public_url: &'a str,
}

impl<'a> MessageContext<'a> {
    /// A context for `to`.
    pub fn new(to: &'a str, app_name: &'a str, public_url: &'a str) -> Self {
        Self {
            to,
            name: None,
            app_name,
            public_url,
        }
    }

    /// Sets the recipient's display name.
    pub fn with_name(mut self, name: Option<&'a str>) -> Self {
        self.name = name;
        self
    }
}

/// Renders each [`Message`] as an [`Email`] (text and HTML).
///
/// Override some messages and keep the rest by delegating to
/// [`DefaultTemplates`]:
///
/// ```
/// use portcullis::{DefaultTemplates, Email, EmailTemplates, Message, MessageContext};
///
/// #[derive(Debug)]
/// struct Branded;
///
/// impl EmailTemplates for Branded {
///     fn render(&self, message: &Message, cx: &MessageContext<'_>) -> Email {
///         match message {
///             Message::VerifyEmail { link, .. } => Email::new(
///                 cx.to,
///                 "Welcome to Acme!",
///                 format!("Confirm your address: {link}"),
///             ),
///             other => DefaultTemplates.render(other, cx),
///         }
///     }
/// }
/// ```
pub trait EmailTemplates: Send + Sync + std::fmt::Debug + 'static {
    /// The email for `message`, addressed to `cx.to`.
    fn render(&self, message: &Message, cx: &MessageContext<'_>) -> Email;
}

/// The built-in English templates: a short text body and the same content
/// as escaped HTML.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultTemplates;

impl EmailTemplates for DefaultTemplates {
    fn render(&self, message: &Message, cx: &MessageContext<'_>) -> Email {
        let app = cx.app_name;
        let (subject, lines, action): (String, Vec<String>, Option<(&str, &str)>) = match message {
            Message::VerifyEmail {
                link,
                expires_in_secs,
            } => (
                format!("Confirm your email address for {app}"),
                vec![
                    format!("Please confirm that this is your email address for {app}."),
                    format!(
                        "The link works once and expires in {}.",
                        duration(*expires_in_secs)
                    ),
                ],
                Some(("Confirm email address", link)),
            ),
            Message::ResetPassword {
                link,
                expires_in_secs,
            } => (
                format!("Reset your {app} password"),
                vec![
                    format!("Someone asked to reset the password of your {app} account."),
                    format!(
                        "The link works once and expires in {}. If it was not you, \
                         ignore this email: your password stays the same.",
                        duration(*expires_in_secs)
                    ),
                ],
                Some(("Choose a new password", link)),
            ),
            Message::PasswordChanged => (
                format!("Your {app} password was changed"),
                vec![
                    format!("The password of your {app} account was just changed."),
                    "If it was not you, reset your password at once and contact support.".into(),
                ],
                None,
            ),
            Message::ConfirmEmailChange {
                link,
                new_email,
                expires_in_secs,
            } => (
                format!("Confirm your new email address for {app}"),
                vec![
                    format!("Please confirm {new_email} as the new email address of your {app} account."),
                    format!(
                        "The link works once and expires in {}.",
                        duration(*expires_in_secs)
                    ),
                ],
                Some(("Confirm new address", link)),
            ),
            Message::EmailChangeRequested { new_email } => (
                format!("Email change requested for your {app} account"),
                vec![
                    format!(
                        "Someone asked to change the email address of your {app} account to {new_email}."
                    ),
                    "Nothing changes until the new address is confirmed. If it was not you, \
                     change or reset your password at once: that cancels the change."
                        .into(),
                ],
                None,
            ),
            Message::MagicLink {
                link,
                expires_in_secs,
            } => (
                format!("Your sign-in link for {app}"),
                vec![
                    format!("Use this link to sign in to {app}."),
                    format!(
                        "It works once and expires in {}. If you did not ask for it, ignore this email.",
                        duration(*expires_in_secs)
                    ),
                ],
                Some(("Sign in", link)),
            ),
            Message::OrgInvitation {
                link,
                org_name,
                inviter,
                expires_in_secs,
            } => (
                format!("You are invited to join {org_name} on {app}"),
                vec![
                    format!("{inviter} invited you to join the organization {org_name} on {app}."),
                    format!(
                        "Sign in with this address to accept. The link works once and expires \
                         in {}. If you do not know {inviter}, ignore this email.",
                        duration(*expires_in_secs)
                    ),
                ],
                Some(("Accept the invitation", link)),
            ),
            Message::EmailCode {
                code,
                expires_in_secs,
            } => (
                format!("Your {app} sign-in code: {code}"),
                vec![
                    format!("Your code to sign in to {app}:"),
                    code.clone(),
                    format!(
                        "It expires in {}. If you did not ask for it, ignore this email.",
                        duration(*expires_in_secs)
                    ),
                ],
                None,
            ),
            Message::AccountsUnlinked { providers } => (
                format!("Sign-in methods removed from your {app} account"),
                vec![
                    format!(
                        "You just proved that this address is yours, so we removed sign-in \
                         through {} from your {app} account: it had been added with this \
                         address without proof that it belonged to whoever added it.",
                        providers.join(", ")
                    ),
                    "If you added it yourself, sign in through it again once your address is \
                     verified there. If not, someone may have tried to get into your account \
                     before you: check your account and contact support."
                        .into(),
                ],
                None,
            ),
            Message::RegistrationAttempted => (
                format!("Someone tried to sign up for {app} with your address"),
                vec![
                    format!(
                        "Someone tried to create a {app} account with this address, which already has one."
                    ),
                    "If it was you, sign in, or reset your password if you forgot it. \
                     If it was not you, you can ignore this email: nothing changed."
                        .into(),
                ],
                None,
            ),
            Message::ConfirmEmailChangeCode {
                code,
                expires_in_secs,
            } => (
                format!("Confirm the email change of your {app} account"),
                vec![
                    format!("Your code to confirm changing the email address of your {app} account:"),
                    code.clone(),
                    format!(
                        "It works once and expires in {}. If it was not you, ignore this email: \
                         nothing changes without the code.",
                        duration(*expires_in_secs)
                    ),
                ],
                None,
            ),
            Message::SecondFactorChanged { enrolled: true } => (
                format!("A second factor was added to your {app} account"),
                vec![
                    format!(
                        "An authenticator app was just set up as the second factor of your {app} account."
                    ),
                    "If it was not you, reset your password at once and contact support.".into(),
                ],
                None,
            ),
            Message::SecondFactorChanged { enrolled: false } => (
                format!("The second factor of your {app} account was removed"),
                vec![
                    format!(
                        "The authenticator app and the recovery codes of your {app} account were \
                         just removed: signing in needs only your first factor now."
                    ),
                    "If it was not you, reset your password at once and contact support.".into(),
                ],
                None,
            ),
            Message::PasskeyChanged { passkey, added } => (
                if *added {
                    format!("A passkey was added to your {app} account")
                } else {
                    format!("A passkey was removed from your {app} account")
                },
                vec![
                    if *added {
                        format!(
                            "The passkey \"{passkey}\" was just added to your {app} account: \
                             it signs in without a password."
                        )
                    } else {
                        format!("The passkey \"{passkey}\" was just removed from your {app} account.")
                    },
                    "If it was not you, reset your password at once and contact support.".into(),
                ],
                None,
            ),
            Message::RecoveryCodesRegenerated => (
                format!("New recovery codes for your {app} account"),
                vec![
                    format!(
                        "A new set of recovery codes was just made for your {app} account; \
                         the old codes no longer work."
                    ),
                    "If it was not you, reset your password at once and contact support.".into(),
                ],
                None,
            ),
            Message::RecoveryCodeUsed { remaining } => (
                format!("A recovery code was used for your {app} account"),
                vec![
                    format!(
                        "A recovery code was just used to sign in to your {app} account; \
                         {remaining} unused codes are left."
                    ),
                    "If it was not you, someone has your password and your recovery codes: \
                     reset your password and make new recovery codes at once."
                        .into(),
                ],
                None,
            ),
            Message::ConfirmAccountDeletion {
                code,
                expires_in_secs,
            } => (
                format!("Confirm the deletion of your {app} account"),
                vec![
                    format!("Your code to confirm deleting your {app} account:"),
                    code.clone(),
                    format!(
                        "It works once and expires in {}. If it was not you, ignore this email.",
                        duration(*expires_in_secs)
                    ),
                ],
                None,
            ),
        };
        let greeting = match cx.name {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_owned(),
        };
        let mut text = format!("{greeting}\n\n");
        let mut html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>{}</p>",
            escape(&greeting)
        );
        for line in &lines {
            let _ = write!(text, "{line}\n\n");
            let _ = write!(html, "<p>{}</p>", escape(line));
        }
        if let Some((label, link)) = action {
            let _ = write!(text, "{label}: {link}\n\n");
            let _ = write!(
                html,
                "<p><a href=\"{}\">{}</a></p><p>{}</p>",
                escape(link),
                escape(label),
                escape(link)
            );
        }
        let _ = write!(text, "— {app}\n{}\n", cx.public_url);
        let _ = write!(
            html,
            "<p>— {}<br>{}</p></body></html>",
            escape(app),
            escape(cx.public_url)
        );
        Email::new(cx.to, subject, text).with_html(html)
    }
}

/// `secs` in words: "24 hours", "1 hour", "30 minutes", "45 seconds".
fn duration(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Escapes text for HTML bodies and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_text_carries_the_link() {
        let cx = MessageContext::new("a@example.com", "Acme <b>", "https://api.example.com")
            .with_name(Some("<script>x</script>"));
        let email = DefaultTemplates.render(
            &Message::VerifyEmail {
                link: "https://api.example.com/auth/verify-email?token=abc&x=1".into(),
                expires_in_secs: 86400,
            },
            &cx,
        );
        assert_eq!(email.to, "a@example.com");
        assert!(email
            .text
            .contains("https://api.example.com/auth/verify-email?token=abc&x=1"));
        let html = email.html.unwrap_or_default();
        assert!(html.contains("token=abc&amp;x=1"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("Acme &lt;b&gt;"));
        assert!(email.text.contains("expires in 24 hours"));
        assert_eq!(duration(1800), "30 minutes");
        assert_eq!(duration(3600), "1 hour");
    }
}
