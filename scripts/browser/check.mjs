// Drives a real browser (Debian's chromium, through playwright-core) against
// two demo servers that scripts/browser.sh started:
//
// 1. SWAGGER_URL (bearer transport): registers a user through the API, then
//    in Swagger UI at /docs clicks Authorize, fills the OAuth2 password flow
//    (username, password), authorizes, closes the dialog, expands
//    GET /auth/me, clicks "Try it out" and "Execute", and checks that the
//    answer shown is 200 with the user's email.
// 2. COOKIE_URL (cookie-only mode): registers a user, opens the demo's
//    /demo page, fills its form and submits; checks that the page shows the
//    user's email, that the login answer carried no token, that the tokens
//    are HttpOnly cookies the browser holds, and that document.cookie
//    cannot read them.
// 3. PASSKEY_URL (cookie-only, served as http://localhost: WebAuthn needs a
//    domain): with a CDP virtual authenticator (CTAP2, internal, resident
//    keys, user verification), signs in on the /demo page by password,
//    clicks "Add a passkey" (navigator.credentials.create with the API's
//    options), signs out, clicks "Sign in with a passkey" (no email typed:
//    a discoverable credential), and checks GET /auth/me, that no token
//    reached the page, and the session's amr (hwk, user, mfa).
//
// Screenshots go to OUT_DIR (swagger-*.png, cookie-*.png). Exits non-zero
// on the first failed check, with a screenshot of the page at that moment.
//
//   SWAGGER_URL=http://127.0.0.1:8000 COOKIE_URL=http://127.0.0.1:8001 \
//     OUT_DIR=target/browser CHROMIUM=/usr/bin/chromium node check.mjs

import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const SWAGGER_URL = required("SWAGGER_URL");
const COOKIE_URL = required("COOKIE_URL");
const PASSKEY_URL = required("PASSKEY_URL");
// A user with a verified address (a passkey needs one): the server's superuser.
const PASSKEY_EMAIL = required("PASSKEY_EMAIL");
const PASSKEY_PASSWORD = required("PASSKEY_PASSWORD");
const OUT_DIR = resolve(process.env.OUT_DIR || "target/browser");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 15_000;
const PASSWORD = `browser-${randomBytes(9).toString("base64url")}`;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`check.mjs: set ${name}`);
    process.exit(2);
  }
  return value.replace(/\/+$/, "");
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`  ok: ${what}`);
}

const shots = [];
/** A screenshot of the viewport, or of `element` alone. */
async function shot(page, name, element) {
  const path = join(OUT_DIR, `${name}.png`);
  await (element ? element.screenshot({ path }) : page.screenshot({ path }));
  shots.push(path);
  console.log(`  screenshot: ${path}`);
}

/** Registers a fresh user through the API (as any client would). */
async function register(base, label) {
  const email = `${label}-${randomBytes(4).toString("hex")}@example.com`;
  const res = await fetch(`${base}/auth/register`, {
    method: "POST",
    // The server's own origin, as a browser on its pages would send.
    headers: { "Content-Type": "application/json", Origin: base },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const body = await res.text();
  if (res.status !== 201) {
    throw new Error(`POST ${base}/auth/register: ${res.status} ${body}`);
  }
  check(JSON.parse(body).email === email, `registered ${email} on ${base}`);
  return email;
}

async function swagger(browser) {
  console.log(`== Swagger UI at ${SWAGGER_URL}/docs: Authorize (password flow), then GET /auth/me`);
  const email = await register(SWAGGER_URL, "swagger");
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  try {
    await page.goto(`${SWAGGER_URL}/docs`);
    const authorize = page.locator(".scheme-container .btn.authorize");
    await authorize.waitFor();
    await shot(page, "swagger-docs");

    await authorize.click();
    const dialog = page.locator(".dialog-ux .modal-ux");
    await dialog.waitFor();
    // One .auth-container per scheme, headed by the scheme's name.
    const oauth = dialog.locator(".auth-container", {
      has: page.locator("h4", { hasText: "OAuth2Password" }),
    });
    check((await oauth.count()) === 1, "the Authorize dialog has one OAuth2Password scheme");
    check((await oauth.locator("#oauth_username").count()) === 1, "… with a username field");
    await oauth.locator("#oauth_username").fill(email);
    await oauth.locator("#oauth_password").fill(PASSWORD);
    await shot(page, "swagger-authorize", oauth);
    const token = page.waitForResponse(
      (r) => r.url() === `${SWAGGER_URL}/auth/token` && r.request().method() === "POST",
    );
    // Swagger UI gives Authorize and Logout the same classes: by label.
    await oauth.locator(".auth-btn-wrapper .btn.modal-btn.authorize", { hasText: "Authorize" }).click();
    const tokenResponse = await token;
    check(tokenResponse.status() === 200, `POST /auth/token from the dialog: ${tokenResponse.status()}`);
    // Signed in, the form turns into "Authorized" with a Logout button.
    await oauth.locator(".auth-btn-wrapper .btn.modal-btn", { hasText: "Logout" }).waitFor();
    check(
      (await oauth.locator("h6", { hasText: "Authorized" }).count()) === 1,
      "the dialog says Authorized",
    );
    await shot(page, "swagger-authorized", oauth);
    await oauth.locator(".auth-btn-wrapper .btn-done").click();
    await dialog.waitFor({ state: "detached" });
    check(
      (await page.locator(".scheme-container .btn.authorize.locked").count()) === 1,
      "the Authorize button shows the lock closed",
    );

    const me = page.locator(".opblock.opblock-get", {
      has: page.locator('.opblock-summary-path[data-path="/auth/me"]'),
    });
    check((await me.count()) === 1, "one GET /auth/me operation");
    await me.locator(".opblock-summary-control").click();
    await me.locator(".try-out__btn").click();
    const answer = page.waitForResponse(
      (r) => r.url() === `${SWAGGER_URL}/auth/me` && r.request().method() === "GET",
    );
    await me.locator(".btn.execute").click();
    const meResponse = await answer;
    check(
      /^Bearer .+/.test((await meResponse.request().allHeaders()).authorization || ""),
      "Swagger UI sent the token from the dialog as Authorization: Bearer",
    );
    const live = me.locator(".live-responses-table .response");
    await live.first().waitFor();
    const status = (await live.first().locator(".response-col_status").innerText()).trim();
    check(status === "200", `the response shown has status ${status} (want 200)`);
    const shown = await live.first().locator(".response-col_description").innerText();
    check(shown.includes(`"email": "${email}"`), `the response shown has "email": "${email}"`);
    await shot(page, "swagger-me", me);
  } catch (err) {
    await page.screenshot({ path: join(OUT_DIR, "swagger-failure.png"), fullPage: true })
      .then(() => shots.push(join(OUT_DIR, "swagger-failure.png")), () => {});
    throw err;
  } finally {
    await context.close();
  }
}

async function cookiePage(browser) {
  console.log(`== the cookie-only sign-in page at ${COOKIE_URL}/demo`);
  const email = await register(COOKIE_URL, "cookie");
  const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  try {
    const opened = await page.goto(`${COOKIE_URL}/demo`);
    check(opened.status() === 200, "GET /demo: 200");
    const csp = opened.headers()["content-security-policy"] || "";
    check(/script-src 'sha256-/.test(csp), "the page's script runs by hash (CSP script-src)");
    check((await context.cookies()).length === 0, "no cookie before sign-in");
    await page.fill("#email", email);
    await page.fill("#password", PASSWORD);
    await shot(page, "cookie-form");
    const login = page.waitForResponse(
      (r) => r.url() === `${COOKIE_URL}/auth/login` && r.request().method() === "POST",
    );
    await page.click("#submit");
    const loginResponse = await login;
    check(loginResponse.status() === 200, `POST /auth/login from the page: ${loginResponse.status()}`);
    const loginBody = await loginResponse.json();
    check(
      !("access_token" in loginBody) && !("refresh_token" in loginBody),
      `the login answer carries no token (fields: ${Object.keys(loginBody).join(", ")})`,
    );
    await page.locator("#me", { hasText: email }).waitFor();
    check((await page.innerText("#me")) === email, `the page shows the signed-in email ${email}`);
    check((await page.innerText("#status")) === "Signed in.", "the page says Signed in.");
    check(
      (await page.innerText("#login-fields")) === "expires_in, token_type",
      "the page saw only expires_in and token_type in the login answer",
    );

    // All of the context's (a URL filter would drop Secure cookies of http://127.0.0.1).
    const cookies = await context.cookies();
    const access = cookies.find((c) => c.name === "portcullis_access");
    const refresh = cookies.find((c) => c.name === "portcullis_refresh");
    check(access && access.httpOnly && access.path === "/", "the browser holds portcullis_access, HttpOnly, path /");
    check(
      refresh && refresh.httpOnly && refresh.path === "/auth/refresh",
      "the browser holds portcullis_refresh, HttpOnly, path /auth/refresh",
    );
    const visible = await page.evaluate(() => document.cookie);
    check(
      !visible.includes("portcullis_access") && !visible.includes("portcullis_refresh") &&
        !visible.includes(access.value),
      `document.cookie cannot read the tokens (it reads ${JSON.stringify(visible)})`,
    );
    check(problems.length === 0, `no script or CSP error on the page ${JSON.stringify(problems)}`);
    await shot(page, "cookie-page");
  } catch (err) {
    await page.screenshot({ path: join(OUT_DIR, "cookie-failure.png"), fullPage: true })
      .then(() => shots.push(join(OUT_DIR, "cookie-failure.png")), () => {});
    throw err;
  } finally {
    await context.close();
  }
}

/** The claims of a JWT (read, not verified). */
function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

async function passkeys(browser) {
  console.log(`== passkeys on ${PASSKEY_URL}/demo (cookie-only): a virtual authenticator adds one, then signs in with it alone`);
  const email = PASSKEY_EMAIL;
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("pageerror", (err) => problems.push(String(err)));
  try {
    // The device: CTAP2, built in, keeps discoverable keys, verifies the user.
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    await page.goto(`${PASSKEY_URL}/demo`);
    await page.fill("#email", email);
    await page.fill("#password", PASSKEY_PASSWORD);
    await page.click("#submit");
    await page.locator("#status", { hasText: "Signed in." }).waitFor();
    check((await page.innerText("#me")) === email, `signed in by password as ${email} (a verified address)`);

    await page.click("#passkey-add");
    await page.locator("#status", { hasText: /^Passkey / }).waitFor();
    const added = await page.innerText("#status");
    check(added === "Passkey added: This browser.", `the page says ${JSON.stringify(added)}`);
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    check(
      credentials.length === 1 && credentials[0].isResidentCredential,
      "the authenticator holds one discoverable (resident) credential",
    );

    // Signed out (no cookies), a fresh page: the passkey alone, no email.
    await context.clearCookies();
    await page.reload();
    check((await page.innerText("#me")) === "", "signed out: the page shows no one");
    await page.click("#passkey-sign-in");
    await page.locator("#status", { hasText: "Signed in." }).waitFor({ timeout: TIMEOUT }).catch(async () => {
      throw new Error(`the passkey sign-in did not finish: ${await page.innerText("#status")}`);
    });
    check((await page.innerText("#me")) === email, `GET /auth/me after the passkey sign-in answers ${email}`);
    check(
      (await page.innerText("#login-fields")) === "expires_in, token_type",
      "the passkey sign-in answer held no token (cookie-only)",
    );
    const access = (await context.cookies()).find((c) => c.name === "portcullis_access");
    check(access && access.httpOnly, "the session is in the HttpOnly access cookie");
    const amr = claimsOf(access.value).amr;
    check(JSON.stringify(amr) === JSON.stringify(["hwk", "user", "mfa"]), `the session's amr is ${JSON.stringify(amr)}`);
    const after = (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
    check(after[0].signCount >= 1, `the authenticator counted the signature (${after[0].signCount})`);
    check(problems.length === 0, `no script or CSP error on the page ${JSON.stringify(problems)}`);
    await shot(page, "passkey-page");
  } catch (err) {
    await page.screenshot({ path: join(OUT_DIR, "passkey-failure.png"), fullPage: true })
      .then(() => shots.push(join(OUT_DIR, "passkey-failure.png")), () => {});
    throw err;
  } finally {
    await context.close();
  }
}

mkdirSync(OUT_DIR, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox"],
});
console.log(`== ${CHROMIUM} ${browser.version()} (playwright-core, headless)`);
let failed = false;
try {
  await swagger(browser);
  await cookiePage(browser);
  await passkeys(browser);
} catch (err) {
  failed = true;
  console.error(String(err && err.stack ? err.stack : err));
} finally {
  await browser.close();
}
console.log("== screenshots");
for (const path of shots) console.log(`  ${path}`);
process.exit(failed ? 1 : 0);
