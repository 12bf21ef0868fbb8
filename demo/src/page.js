"use strict";
const form = document.getElementById("sign-in");
const show = (id, text) => { document.getElementById(id).textContent = text; };

// WebAuthn's binary fields travel as URL-safe base64 in the API's JSON.
const bytes = (b64) =>
  Uint8Array.from(atob(b64.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const b64 = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** POSTs JSON with the cookies; the answer's JSON, or throws its error. */
async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    credentials: "include",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : {};
  if (!res.ok) throw new Error(`${path}: ${res.status} ${json.code}: ${json.message}`);
  return json;
}

/** Shows who GET /auth/me says is signed in. */
async function whoami() {
  const me = await fetch("/auth/me", { credentials: "include" });
  const user = await me.json();
  if (!me.ok) {
    show("status", `GET /auth/me: ${me.status} ${user.code}: ${user.message}`);
    return;
  }
  show("me", user.email);
  show("status", "Signed in.");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show("status", "Signing in…");
  try {
    const login = await fetch("/auth/login", {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        email: document.getElementById("email").value,
        password: document.getElementById("password").value,
      }),
    });
    const body = await login.json();
    if (!login.ok) {
      show("status", `Sign-in refused: ${login.status} ${body.code}: ${body.message}`);
      return;
    }
    show("login-fields", Object.keys(body).sort().join(", "));
    await whoami();
  } catch (err) {
    show("status", `Network error: ${err}`);
  }
});

document.getElementById("passkey-add").addEventListener("click", async () => {
  show("status", "Adding a passkey…");
  try {
    const { ceremony_id, options } = await post("/auth/passkeys/register/options", {});
    const publicKey = structuredClone(options.publicKey);
    publicKey.challenge = bytes(publicKey.challenge);
    publicKey.user.id = bytes(publicKey.user.id);
    publicKey.excludeCredentials = (publicKey.excludeCredentials || [])
      .map((c) => ({ ...c, id: bytes(c.id) }));
    const made = await navigator.credentials.create({ publicKey });
    const passkey = await post("/auth/passkeys/register", {
      ceremony_id,
      name: "This browser",
      credential: {
        id: made.id,
        rawId: b64(made.rawId),
        type: made.type,
        response: {
          clientDataJSON: b64(made.response.clientDataJSON),
          attestationObject: b64(made.response.attestationObject),
        },
        extensions: made.getClientExtensionResults(),
      },
    });
    show("status", `Passkey added: ${passkey.name}.`);
  } catch (err) {
    show("status", `Passkey not added: ${err}`);
  }
});

document.getElementById("passkey-sign-in").addEventListener("click", async () => {
  show("status", "Signing in with a passkey…");
  try {
    const { ceremony_id, options } = await post("/auth/passkeys/login/options", {});
    const publicKey = structuredClone(options.publicKey);
    publicKey.challenge = bytes(publicKey.challenge);
    publicKey.allowCredentials = (publicKey.allowCredentials || [])
      .map((c) => ({ ...c, id: bytes(c.id) }));
    const got = await navigator.credentials.get({ publicKey });
    const response = got.response;
    const body = await post("/auth/passkeys/login", {
      ceremony_id,
      credential: {
        id: got.id,
        rawId: b64(got.rawId),
        type: got.type,
        response: {
          clientDataJSON: b64(response.clientDataJSON),
          authenticatorData: b64(response.authenticatorData),
          signature: b64(response.signature),
          userHandle: response.userHandle ? b64(response.userHandle) : null,
        },
        extensions: got.getClientExtensionResults(),
      },
    });
    show("login-fields", Object.keys(body).sort().join(", "));
    await whoami();
  } catch (err) {
    show("status", `Passkey sign-in refused: ${err}`);
  }
});
