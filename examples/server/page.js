"use strict";
const form = document.getElementById("sign-in");
const show = (id, text) => { document.getElementById(id).textContent = text; };
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
    const me = await fetch("/auth/me", { credentials: "include" });
    const user = await me.json();
    if (!me.ok) {
      show("status", `GET /auth/me: ${me.status} ${user.code}: ${user.message}`);
      return;
    }
    show("me", user.email);
    show("status", "Signed in.");
  } catch (err) {
    show("status", `Network error: ${err}`);
  }
});
