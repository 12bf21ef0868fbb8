// The scripted flow: drives the generated client through every account flow
// a front-end needs, against a running demo server whose mail goes to the
// test SMTP server, and checks each answer (status, body, key headers).
// Any mismatch throws, and the process exits non-zero.
//
//   PORTCULLIS_URL=http://127.0.0.1:8000 PORTCULLIS_TEST_SMTP_DIR=/path/to/mail node build/flow.js
//
// scripts/client.sh starts the server and the SMTP server and runs it.

import { AssertionError } from "node:assert";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";

import createClient from "openapi-fetch";
import * as OTPAuth from "otpauth";

import {
  type ApiError,
  createPortcullisClient,
  type PortcullisClient,
  type TokenPair,
  type User,
} from "./client.js";
import { Conformance } from "./conformance.js";
import { Mailbox } from "./mailbox.js";
import type { paths } from "./schema.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

const BASE = env("PORTCULLIS_URL");
const mailbox = new Mailbox(env("PORTCULLIS_TEST_SMTP_DIR"));

// --------------------------------------------------------------------------
// Assertions.

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError({ message });
}

function equal<T>(actual: T, expected: T, what: string): void {
  check(
    Object.is(actual, expected),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

/** An openapi-fetch answer: `data` on 2xx, the typed `error` otherwise. */
interface Answer<T> {
  data?: T;
  error?: ApiError;
  response: Response;
}

/** Asserts the status and returns the typed body of a success. */
function ok<T>(answer: Answer<T>, status: number, what: string): T {
  check(
    answer.response.status === status && answer.data !== undefined,
    `${what}: expected ${status} with a body, got ${answer.response.status} ${JSON.stringify(answer.error ?? answer.data)}`,
  );
  return answer.data;
}

/** Asserts a success without a body (204). */
function noContent(answer: Answer<unknown>, what: string): void {
  check(
    answer.response.status === 204 && answer.data === undefined && answer.error === undefined,
    `${what}: expected 204 without a body, got ${answer.response.status} ${JSON.stringify(answer.error ?? answer.data)}`,
  );
}

/** Asserts the documented error: status, `code`, and `field` when given. */
function fails(
  answer: Answer<unknown>,
  status: number,
  code: string,
  what: string,
  field?: string,
): ApiError {
  const { error, response } = answer;
  check(
    response.status === status && error !== undefined,
    `${what}: expected ${status} ${code}, got ${response.status} ${JSON.stringify(error ?? answer.data)}`,
  );
  equal(error.code, code, `${what}: code`);
  check(error.message.length > 0, `${what}: the error has a message`);
  if (field !== undefined) equal(error.field, field, `${what}: field`);
  check(
    response.headers.get("content-type")?.startsWith("application/json") === true,
    `${what}: the error is JSON (content-type ${response.headers.get("content-type")})`,
  );
  return error;
}

function tokenPair(pair: TokenPair, response: Response, what: string): TokenPair {
  equal(pair.token_type, "bearer", `${what}: token_type`);
  // Both are in the body unless the server runs cookie-only (this flow's
  // server does not).
  check((pair.access_token ?? "").split(".").length === 3, `${what}: the access token is a JWT`);
  check((pair.refresh_token ?? "").length >= 32, `${what}: the refresh token is long`);
  check(pair.expires_in > 0, `${what}: expires_in is positive`);
  equal(response.headers.get("cache-control"), "no-store", `${what}: Cache-Control`);
  return pair;
}

let steps = 0;
async function step(name: string, run: () => Promise<void>): Promise<void> {
  const started = Date.now();
  try {
    await run();
  } catch (err) {
    console.log(`FAIL ${name}`);
    console.log(`     ${err instanceof Error ? err.message : String(err)}`);
    console.log(`${steps} passed, 1 failed`);
    process.exit(1);
  }
  steps += 1;
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

// --------------------------------------------------------------------------
// The flow.

const run = randomBytes(4).toString("hex");
const alice = { email: `alice.${run}@example.com`, name: "Alice" };
const bob = { email: `bob.${run}@example.com` };
const passwords = {
  first: `first correct horse ${run}`,
  changed: `second battery staple ${run}`,
  reset: `third purple giraffe ${run}`,
  bob: `bob sets a passphrase ${run}`,
};

// Every answer any client of the flow gets is checked against the spec
// (status documented, body valid against its schema) and recorded as
// "METHOD /path STATUS", so the flow can check what the refresh-on-401
// helper did on the wire.
const conformance = new Conformance(fileURLToPath(new URL("../../../openapi.json", import.meta.url)));
const wire: string[] = [];
const checkedFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  const response = await fetch(request);
  wire.push(`${request.method} ${new URL(request.url).pathname} ${response.status}`);
  await conformance.check(request.method, request.url, response);
  return response;
};

// A client without tokens, as a page before sign-in (and to replay stale
// tokens by hand).
const anonymous = createClient<paths>({ baseUrl: BASE, fetch: checkedFetch });
const client: PortcullisClient = createPortcullisClient({ baseUrl: BASE, fetch: checkedFetch });
const { api } = client;
let aliceUser: User | undefined;

function bearer(token: string | null | undefined): { headers: { Authorization: string } } {
  return { headers: { Authorization: `Bearer ${token}` } };
}

await step("spec: every schema's example is valid against the schema", async () => {
  const invalid = conformance.invalidExamples();
  check(invalid.length === 0, `invalid examples in openapi/openapi.json:\n${invalid.join("\n")}`);
});

await step("providers: credentials, magic link and email code are enabled", async () => {
  const list = ok(await anonymous.GET("/auth/providers"), 200, "GET /auth/providers");
  const ids = list.providers.map((p) => `${p.id}:${p.kind}`);
  for (const id of ["credentials:password", "magic-link:passwordless", "email-code:passwordless"]) {
    check(ids.includes(id), `providers ${ids.join(", ")} include ${id}`);
  }
});

await step("register: 201 with the public user; a verification link is mailed", async () => {
  const mark = await mailbox.mark();
  const created = ok(
    await anonymous.POST("/auth/register", {
      body: { email: alice.email, password: passwords.first, name: alice.name },
    }),
    201,
    "POST /auth/register",
  );
  // 202 `{message}` instead only with enumeration-safe registration.
  if (!("id" in created)) throw new Error(`register: expected the user, got ${JSON.stringify(created)}`);
  const user = created;
  equal(user.email, alice.email, "email");
  equal(user.name, alice.name, "name");
  equal(user.has_password, true, "has_password");
  equal(user.email_verified, false, "email_verified");
  equal(user.is_active, true, "is_active");
  equal(user.is_superuser, false, "is_superuser");
  check(!Number.isNaN(Date.parse(user.created_at)), "created_at is a date");
  check(!("password" in user) && !("password_hash" in user), "no password in the user");
  aliceUser = user;
  const mail = await mailbox.next(mark, alice.email, /^Confirm your email address/);
  const verified = ok(
    await anonymous.POST("/auth/verify-email", { body: { token: Mailbox.token(mail) } }),
    200,
    "POST /auth/verify-email",
  );
  equal(verified.id, user.id, "verified user id");
  equal(verified.email_verified, true, "email_verified after the link");
});

await step("register errors: 409 EMAIL_TAKEN (any case), 422 with the field", async () => {
  // As a page would handle it: `error` is the typed ErrorBody.
  const { data, error, response } = await anonymous.POST("/auth/register", {
    body: { email: alice.email.toUpperCase(), password: passwords.changed },
  });
  if (error) {
    switch (error.code) {
      case "EMAIL_TAKEN": // offer to sign in or reset the password instead
        equal(response.status, 409, "EMAIL_TAKEN status");
        break;
      default:
        throw new AssertionError({ message: `expected EMAIL_TAKEN, got ${error.code}: ${error.message}` });
    }
  } else {
    throw new AssertionError({ message: `registered a taken email: ${JSON.stringify(data)}` });
  }
  fails(
    await anonymous.POST("/auth/register", {
      body: { email: `carol.${run}@example.com`, password: "password" },
    }),
    422,
    "PASSWORD_TOO_COMMON",
    "register with a common password",
    "password",
  );
  fails(
    await anonymous.POST("/auth/register", {
      body: { email: "not an email", password: passwords.changed },
    }),
    422,
    "INVALID_EMAIL",
    "register with a malformed email",
    "email",
  );
});

await step("login: 401 INVALID_CREDENTIALS for a wrong password, then a token pair", async () => {
  const wrong = fails(
    await client.login({ email: alice.email, password: "not the password at all" }),
    401,
    "INVALID_CREDENTIALS",
    "login with a wrong password",
  );
  check(wrong.field === undefined, "no field on a credentials error");
  check(client.tokens.get() === undefined, "a failed login keeps no tokens");
  const answer = await client.login({ email: alice.email, password: passwords.first });
  tokenPair(ok(answer, 200, "POST /auth/login"), answer.response, "login");
  check(client.tokens.get() !== undefined, "the client keeps the pair");
});

await step("me: the signed-in user with the bearer token; 401 UNAUTHENTICATED without", async () => {
  const me = ok(await api.GET("/auth/me"), 200, "GET /auth/me");
  equal(me.id, aliceUser?.id, "me.id");
  equal(me.email, alice.email, "me.email");
  equal(me.email_verified, true, "me.email_verified");
  const anon = await anonymous.GET("/auth/me");
  fails(anon, 401, "UNAUTHENTICATED", "GET /auth/me without a token");
  equal(anon.response.headers.get("www-authenticate"), "Bearer", "WWW-Authenticate");
});

await step("refresh: a new pair; the old refresh token is single use, and its reuse ends the session", async () => {
  const before = client.tokens.get();
  check(before !== undefined, "signed in");
  check(await client.refresh(), "client.refresh() succeeds");
  const after = client.tokens.get();
  check(after !== undefined, "a pair after refresh");
  check(after.refresh_token !== before.refresh_token, "the refresh token rotated");
  check(after.access_token !== before.access_token, "a new access token");
  ok(await api.GET("/auth/me"), 200, "GET /auth/me with the refreshed token");
  // Someone replays the old refresh token: refused, and the whole session
  // (the new pair too) ends, since one of the two holders is an attacker.
  fails(
    await anonymous.POST("/auth/refresh", { body: { refresh_token: before.refresh_token ?? null } }),
    401,
    "INVALID_REFRESH_TOKEN",
    "reuse of a used refresh token",
  );
  fails(
    await anonymous.POST("/auth/refresh", { body: { refresh_token: after.refresh_token ?? null } }),
    401,
    "INVALID_REFRESH_TOKEN",
    "the newest refresh token after the reuse",
  );
  // Through the client: its refresh-on-401 fails too, so it forgets the pair.
  wire.length = 0;
  fails(await api.GET("/auth/me"), 401, "UNAUTHENTICATED", "GET /auth/me after the reuse");
  equal(wire.join(", "), "GET /auth/me 401, POST /auth/refresh 401", "requests sent");
  check(client.tokens.get() === undefined, "the client forgot the dead pair");
});

await step("refresh on 401: a refused access token is refreshed once and the request retried", async () => {
  const login = await client.login({ email: alice.email, password: passwords.first });
  const pair = ok(login, 200, "login again");
  // Stand-in for an expired access token: same token, broken signature.
  const [header, payload, signature = ""] = (pair.access_token ?? "").split(".");
  const broken = `${header}.${payload}.${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
  client.tokens.set({ ...pair, access_token: broken });
  wire.length = 0;
  // Two requests at once: one refresh serves both (a second refresh with the
  // same, by then used, refresh token would end the session).
  const [me, sessions] = await Promise.all([api.GET("/auth/me"), api.GET("/auth/sessions")]);
  equal(ok(me, 200, "GET /auth/me after the refresh").email, alice.email, "me.email");
  const list = ok(sessions, 200, "GET /auth/sessions after the refresh");
  check(
    list.sessions.some((s) => s.current),
    "the session list marks the current session",
  );
  const sent = [...wire].sort();
  equal(
    sent.join(", "),
    "GET /auth/me 200, GET /auth/me 401, GET /auth/sessions 200, GET /auth/sessions 401, POST /auth/refresh 200",
    "requests sent (sorted)",
  );
  const now = client.tokens.get();
  check(now !== undefined && now.access_token !== broken, "the client keeps the new access token");
  check(now.refresh_token !== pair.refresh_token, "and the rotated refresh token");
});

await step("change password: 422 WRONG_PASSWORD, then a fresh pair; the old password and pair stop working", async () => {
  const before = client.tokens.get();
  check(before !== undefined, "signed in");
  fails(
    await api.POST("/auth/account/change-password", {
      body: { current_password: "not the password at all", new_password: passwords.changed },
    }),
    422,
    "WRONG_PASSWORD",
    "change password with a wrong current password",
    "current_password",
  );
  fails(
    await api.POST("/auth/account/change-password", {
      body: { current_password: passwords.first, new_password: "short" },
    }),
    422,
    "PASSWORD_TOO_SHORT",
    "change password to a short one",
    "new_password",
  );
  const answer = await api.POST("/auth/account/change-password", {
    body: { current_password: passwords.first, new_password: passwords.changed },
  });
  const pair = tokenPair(ok(answer, 200, "POST /auth/account/change-password"), answer.response, "change password");
  client.tokens.set(pair);
  ok(await api.GET("/auth/me"), 200, "GET /auth/me with the new pair");
  fails(await anonymous.GET("/auth/me", bearer(before.access_token)), 401, "UNAUTHENTICATED", "the old access token");
  fails(
    await anonymous.POST("/auth/refresh", { body: { refresh_token: before.refresh_token ?? null } }),
    401,
    "INVALID_REFRESH_TOKEN",
    "the old refresh token",
  );
  fails(
    await anonymous.POST("/auth/login", { body: { email: alice.email, password: passwords.first } }),
    401,
    "INVALID_CREDENTIALS",
    "login with the old password",
  );
  ok(
    await anonymous.POST("/auth/login", { body: { email: alice.email, password: passwords.changed } }),
    200,
    "login with the new password",
  );
});

await step("forgot / reset password: 202 for every email, the mailed token resets once, every session ends", async () => {
  const signedIn = client.tokens.get();
  check(signedIn !== undefined, "signed in");
  const unknown = ok(
    await anonymous.POST("/auth/forgot-password", { body: { email: `nobody.${run}@example.com` } }),
    202,
    "forgot password, unknown email",
  );
  const mark = await mailbox.mark();
  const known = ok(
    await anonymous.POST("/auth/forgot-password", { body: { email: alice.email } }),
    202,
    "forgot password, known email",
  );
  equal(known.message, unknown.message, "the same answer for a known and an unknown email");
  const mail = await mailbox.next(mark, alice.email, /^Reset your .* password$/);
  const token = Mailbox.token(mail);
  // A weak password is refused before the token is used: it still works.
  fails(
    await anonymous.POST("/auth/reset-password", { body: { token, password: "password" } }),
    422,
    "PASSWORD_TOO_COMMON",
    "reset to a common password",
    "password",
  );
  noContent(
    await anonymous.POST("/auth/reset-password", { body: { token, password: passwords.reset } }),
    "POST /auth/reset-password",
  );
  fails(
    await anonymous.POST("/auth/reset-password", { body: { token, password: passwords.reset } }),
    410,
    "TOKEN_GONE",
    "the same reset token again",
  );
  fails(
    await anonymous.GET("/auth/me", bearer(signedIn.access_token)),
    401,
    "UNAUTHENTICATED",
    "an access token from before the reset",
  );
  check(!(await client.refresh()), "the refresh token from before the reset is dead");
  check(client.tokens.get() === undefined, "so the client forgot it");
  fails(
    await client.login({ email: alice.email, password: passwords.changed }),
    401,
    "INVALID_CREDENTIALS",
    "login with the password from before the reset",
  );
  ok(await client.login({ email: alice.email, password: passwords.reset }), 200, "login with the reset password");
});

// Bob has no account: the magic link signs him up, without a password.
const bobClient = createPortcullisClient({ baseUrl: BASE, fetch: checkedFetch });

await step("magic link: 202, the mailed token signs a new address in once", async () => {
  const mark = await mailbox.mark();
  const accepted = ok(
    await anonymous.POST("/auth/magic-link", { body: { email: bob.email } }),
    202,
    "POST /auth/magic-link",
  );
  check(accepted.message.length > 0, "a message");
  const token = Mailbox.token(await mailbox.next(mark, bob.email, /^Your sign-in link/));
  const answer = await anonymous.POST("/auth/magic-link/verify", { body: { token } });
  bobClient.tokens.set(tokenPair(ok(answer, 200, "POST /auth/magic-link/verify"), answer.response, "magic link"));
  const me = ok(await bobClient.api.GET("/auth/me"), 200, "GET /auth/me as bob");
  equal(me.email, bob.email, "me.email");
  equal(me.has_password, false, "has_password");
  equal(me.email_verified, true, "email_verified (the link proved it)");
  fails(
    await anonymous.POST("/auth/magic-link/verify", { body: { token } }),
    410,
    "TOKEN_GONE",
    "the same magic link again",
  );
  fails(
    await anonymous.POST("/auth/magic-link", { body: { email: bob.email, redirect_to: "https://evil.example/" } }),
    422,
    "REDIRECT_NOT_ALLOWED",
    "a magic link to a redirect that is not allowed",
    "redirect_to",
  );
});

await step("set password: for a passwordless user once; 409 PASSWORD_NOT_SET / PASSWORD_ALREADY_SET", async () => {
  const { api: bobApi } = bobClient;
  fails(
    await bobApi.POST("/auth/account/change-password", {
      body: { current_password: "", new_password: passwords.bob },
    }),
    409,
    "PASSWORD_NOT_SET",
    "change password without one",
  );
  fails(
    await bobApi.POST("/auth/account/set-password", { body: { password: "12345678" } }),
    422,
    "PASSWORD_TOO_COMMON",
    "set a common password",
    "password",
  );
  const user = ok(
    await bobApi.POST("/auth/account/set-password", { body: { password: passwords.bob } }),
    200,
    "POST /auth/account/set-password",
  );
  equal(user.has_password, true, "has_password");
  equal(user.email, bob.email, "email");
  fails(
    await bobApi.POST("/auth/account/set-password", { body: { password: passwords.changed } }),
    409,
    "PASSWORD_ALREADY_SET",
    "set password again",
  );
  ok(
    await anonymous.POST("/auth/login", { body: { email: bob.email, password: passwords.bob } }),
    200,
    "bob signs in with his new password",
  );
});

await step("mfa: TOTP enrolment; then sign-in answers MFA_REQUIRED, a spent code is refused, a recovery code finishes it", async () => {
  const { api: bobApi } = bobClient;
  const setup = ok(await bobApi.POST("/auth/mfa/totp/setup"), 200, "POST /auth/mfa/totp/setup");
  check(setup.otpauth_uri.startsWith("otpauth://totp/"), `an otpauth URI: ${setup.otpauth_uri}`);
  // What the user's authenticator app computes from the secret.
  const app = new OTPAuth.TOTP({
    secret: OTPAuth.Secret.fromBase32(setup.secret),
    algorithm: "SHA1",
    digits: 6,
    period: 30,
  });
  const code = app.generate();
  const { recovery_codes } = ok(
    await bobApi.POST("/auth/mfa/totp/confirm", { body: { code } }),
    200,
    "POST /auth/mfa/totp/confirm",
  );
  equal(recovery_codes.length, 10, "recovery codes");
  const factors = ok(await bobApi.GET("/auth/mfa"), 200, "GET /auth/mfa");
  equal(factors.totp, true, "totp on");
  equal(factors.recovery_codes_left, 10, "recovery codes left");

  // The right password is only the first step now.
  const first = fails(
    await anonymous.POST("/auth/login", { body: { email: bob.email, password: passwords.bob } }),
    403,
    "MFA_REQUIRED",
    "bob signs in with TOTP on",
  );
  check(first.mfa !== undefined && first.mfa !== null, "the 403 carries the challenge");
  const challenge = first.mfa;
  check(challenge.methods.includes("totp") && challenge.methods.includes("recovery_code"), "both methods");
  // The code of the step that confirmed the setup is spent.
  fails(
    await anonymous.POST("/auth/mfa/verify", { body: { mfa_token: challenge.mfa_token, code } }),
    422,
    "INVALID_MFA_CODE",
    "a spent TOTP step",
    "code",
  );
  const answer = await anonymous.POST("/auth/mfa/verify", {
    body: { mfa_token: challenge.mfa_token, recovery_code: recovery_codes[0] ?? "" },
  });
  const pair = tokenPair(ok(answer, 200, "POST /auth/mfa/verify"), answer.response, "mfa verify");
  const me = ok(await anonymous.GET("/auth/me", bearer(pair.access_token)), 200, "me after the second factor");
  equal(me.email, bob.email, "me.email");
  fails(
    await anonymous.POST("/auth/mfa/verify", {
      body: { mfa_token: challenge.mfa_token, recovery_code: recovery_codes[1] ?? "" },
    }),
    410,
    "TOKEN_GONE",
    "the challenge works once",
  );
  // Turning it off takes a session that passed the second factor.
  fails(await bobApi.DELETE("/auth/mfa/totp"), 403, "SECOND_FACTOR_REQUIRED", "TOTP off from the old session");
  noContent(await anonymous.DELETE("/auth/mfa/totp", bearer(pair.access_token)), "DELETE /auth/mfa/totp");
});

/** The claims of a JWT (its middle part, base64url JSON), unverified: what a page may read. */
function jwtClaims(token: string | null | undefined): Record<string, unknown> {
  const parts = (token ?? "").split(".");
  check(parts.length === 3, `a JWT has three parts: ${token}`);
  const claims: unknown = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString("utf8"));
  check(typeof claims === "object" && claims !== null && !Array.isArray(claims), "the JWT payload is an object");
  return claims as Record<string, unknown>;
}

await step("orgs: create, invite by mail, accept, members, switch the active org (org claims), leave, delete", async () => {
  const { api: bobApi } = bobClient;
  const bobMe = ok(await bobApi.GET("/auth/me"), 200, "GET /auth/me as bob");
  equal(bobMe.email_verified, true, "bob's email is verified (the magic link proved it)");

  // Alice creates an organization: she is its owner.
  const name = `Acme ${run}`;
  const org = ok(await api.POST("/orgs", { body: { name } }), 201, "POST /orgs");
  equal(org.name, name, "org.name");
  equal(JSON.stringify(org.roles), JSON.stringify(["owner"]), "org.roles of its creator");
  check(org.id.length > 0, "org.id");
  check(!Number.isNaN(Date.parse(org.created_at)), "org.created_at is a date");
  check(!Number.isNaN(Date.parse(org.updated_at)), "org.updated_at is a date");
  const mine = ok(await api.GET("/orgs"), 200, "GET /orgs as alice");
  check(
    mine.items.some((o) => o.id === org.id && o.name === name && o.roles.includes("owner")),
    `GET /orgs lists the new org with alice as owner: ${JSON.stringify(mine.items)}`,
  );
  const path = { params: { path: { id: org.id } } };

  // She invites bob's address; the invitation is mailed to it.
  const mark = await mailbox.mark();
  const invitation = ok(
    await api.POST("/orgs/{id}/invitations", { ...path, body: { email: bob.email, roles: ["member"] } }),
    201,
    "POST /orgs/{id}/invitations",
  );
  equal(invitation.email, bob.email, "invitation.email");
  equal(JSON.stringify(invitation.roles), JSON.stringify(["member"]), "invitation.roles");
  equal(invitation.inviter, aliceUser?.id, "invitation.inviter");
  check(Date.parse(invitation.expires_at) > Date.now(), "the invitation expires in the future");
  fails(
    await api.POST("/orgs/{id}/invitations", { ...path, body: { email: bob.email, roles: ["member"] } }),
    409,
    "INVITATION_PENDING",
    "a second invitation to the same address",
  );
  const mail = await mailbox.next(mark, bob.email, /^You are invited to join /);
  check(mail.subject.includes(name), `the subject names the org: ${mail.subject}`);
  const link = (mail.text.match(/https?:\/\/\S+/g) ?? []).find((l) => new URL(l).searchParams.has("token"));
  check(
    link !== undefined && new URL(link).pathname.endsWith("/orgs/invitations/accept"),
    `the mail links to /orgs/invitations/accept?token=…: ${link}`,
  );
  const token = Mailbox.token(mail);

  // Only the invited address can accept it; bob does, once.
  fails(
    await api.POST("/orgs/invitations/accept", { body: { token } }),
    403,
    "INVITATION_NOT_FOR_YOU",
    "alice accepts bob's invitation",
  );
  const joined = ok(await bobApi.POST("/orgs/invitations/accept", { body: { token } }), 200, "POST /orgs/invitations/accept");
  equal(joined.id, org.id, "joined.id");
  equal(joined.name, name, "joined.name");
  equal(JSON.stringify(joined.roles), JSON.stringify(["member"]), "joined.roles");
  fails(
    await bobApi.POST("/orgs/invitations/accept", { body: { token } }),
    410,
    "TOKEN_GONE",
    "the same invitation again",
  );

  // Alice sees bob among the members, as a member.
  const members = ok(await api.GET("/orgs/{id}/members", path), 200, "GET /orgs/{id}/members");
  equal(members.items.length, 2, `members: ${JSON.stringify(members.items)}`);
  const bobMember = members.items.find((m) => m.user_id === bobMe.id);
  check(bobMember !== undefined, `bob (${bobMe.id}) is a member: ${JSON.stringify(members.items)}`);
  equal(JSON.stringify(bobMember.roles), JSON.stringify(["member"]), "bob's roles");
  const aliceMember = members.items.find((m) => m.user_id === aliceUser?.id);
  equal(JSON.stringify(aliceMember?.roles), JSON.stringify(["owner"]), "alice's roles");

  // Bob makes it his session's active org: a new access token says so.
  const answer = await bobApi.PUT("/auth/session/org", { body: { org_id: org.id } });
  const switched = ok(answer, 200, "PUT /auth/session/org");
  equal(switched.token_type, "bearer", "token_type");
  check(switched.expires_in > 0, "expires_in is positive");
  check(!switched.refresh_token, "no refresh token: the session's stays as it was");
  equal(answer.response.headers.get("cache-control"), "no-store", "Cache-Control");
  const claims = jwtClaims(switched.access_token);
  equal(claims.sub, bobMe.id, "claim sub");
  equal(claims.org, org.id, "claim org");
  equal(JSON.stringify(claims.org_roles), JSON.stringify(["member"]), "claim org_roles");
  const me = ok(await anonymous.GET("/auth/me", bearer(switched.access_token)), 200, "GET /auth/me with the switched token");
  equal(me.id, bobMe.id, "me.id with the switched token");
  fails(
    await bobApi.PUT("/auth/session/org", { body: { org_id: `no-such-org-${run}` } }),
    404,
    "NOT_FOUND",
    "switch to an org bob is not in",
  );

  // Bob leaves; the owner cannot, she deletes it instead.
  noContent(await anonymous.POST("/orgs/{id}/leave", { ...path, ...bearer(switched.access_token) }), "POST /orgs/{id}/leave");
  fails(await bobApi.GET("/orgs/{id}/members", path), 404, "NOT_FOUND", "members after leaving");
  const afterLeave = ok(await api.GET("/orgs/{id}/members", path), 200, "GET /orgs/{id}/members after bob left");
  equal(JSON.stringify(afterLeave.items.map((m) => m.user_id)), JSON.stringify([aliceUser?.id]), "members after bob left");
  fails(await api.POST("/orgs/{id}/leave", path), 409, "LAST_OWNER", "the only owner leaves");
  noContent(await api.DELETE("/orgs/{id}", path), "DELETE /orgs/{id}");
  fails(await api.GET("/orgs/{id}", path), 404, "NOT_FOUND", "the deleted org");
  const left = ok(await api.GET("/orgs"), 200, "GET /orgs after the delete");
  check(!left.items.some((o) => o.id === org.id), "GET /orgs no longer lists it");
});

await step("logout: 204; the client forgets the pair, and neither token works any more", async () => {
  const pair = client.tokens.get();
  check(pair !== undefined, "signed in");
  const { error, response } = await client.logout();
  equal(response.status, 204, "POST /auth/logout status");
  check(error === undefined, "no error");
  equal(response.headers.get("cache-control"), "no-store", "Cache-Control");
  check(client.tokens.get() === undefined, "the client forgot the pair");
  fails(await anonymous.GET("/auth/me", bearer(pair.access_token)), 401, "UNAUTHENTICATED", "the access token after logout");
  fails(
    await anonymous.POST("/auth/refresh", { body: { refresh_token: pair.refresh_token ?? null } }),
    401,
    "INVALID_REFRESH_TOKEN",
    "the refresh token after logout",
  );
  fails(await anonymous.POST("/auth/logout", bearer(pair.access_token)), 401, "UNAUTHENTICATED", "logout again");
  ok(await bobClient.api.GET("/auth/me"), 200, "bob's session is not affected");
  equal((await bobClient.logout()).response.status, 204, "bob logs out");
});

console.log(`every answer (${conformance.checked}) matched the spec: documented status, content type and schema`);
console.log(`${steps} passed, 0 failed`);
