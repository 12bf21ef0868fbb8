// A typed client for the Portcullis HTTP API, to copy into a front-end.
//
// `api` is an openapi-fetch client over the types that openapi-typescript
// generates from openapi/openapi.json (src/schema.d.ts): every path, body,
// query, answer and error body is checked by the compiler. This file adds
// what every front-end writes next: where the token pair is kept, the
// `Authorization: Bearer …` header, and one refresh-and-retry when the
// access token has expired or been revoked.

import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

/**
 * A token pair, as every sign-in and refresh answers it; a server in
 * cookie-only mode leaves both tokens out (the HttpOnly cookies carry
 * them), and then the client has none to send.
 */
export type TokenPair = components["schemas"]["TokenBody"];
/** Every error answer: `{code, message}`, plus `field` for validation errors. */
export type ApiError = components["schemas"]["ErrorBody"];
/** A user as the API shows it. */
export type User = components["schemas"]["PublicUser"];

/**
 * Where the client keeps the token pair. The default keeps it in memory (it
 * dies with the page); a web app that wants sessions to survive a reload
 * keeps the refresh token somewhere it trusts, or turns on the server's
 * cookie transport instead and keeps nothing.
 */
export interface TokenStore {
  get(): TokenPair | undefined;
  set(pair: TokenPair | undefined): void;
}

export function memoryTokenStore(initial?: TokenPair): TokenStore {
  let pair = initial;
  return {
    get: () => pair,
    set: (next) => {
      pair = next;
    },
  };
}

export interface PortcullisClientOptions {
  /** The server, e.g. `https://auth.example.com` (no trailing `/auth`). */
  baseUrl: string;
  tokens?: TokenStore;
  /** A custom fetch (tests, instrumentation); default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
}

export interface PortcullisClient {
  /** The typed client: `api.GET("/auth/me")`, `api.POST("/auth/login", { body })`, … */
  api: Client<paths>;
  tokens: TokenStore;
  /** Sign in with email and password; keeps the pair on success. */
  login(body: components["schemas"]["LoginRequest"]): Promise<Result<TokenPair>>;
  /**
   * Trades the refresh token for a new pair (the old refresh token dies:
   * they are single use). Concurrent callers share one request, since
   * presenting an already-used refresh token ends the whole session.
   * Resolves false when it could not: after a 401 (the session is over)
   * it also forgets the pair; after a 429 or 503 it keeps it. Rejects on a
   * network error.
   */
  refresh(): Promise<boolean>;
  /** Ends this session on the server, then forgets the pair. */
  logout(): Promise<{ error?: ApiError | undefined; response: Response }>;
}

/** What openapi-fetch answers: the typed body of a success, or the error body. */
export type Result<T> =
  | { data: T; error?: never; response: Response }
  | { data?: never; error: ApiError; response: Response };

/** True when `value` has the shape of the API's error body. */
export function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

export function createPortcullisClient(options: PortcullisClientOptions): PortcullisClient {
  const tokens = options.tokens ?? memoryTokenStore();
  const fetch = options.fetch ?? globalThis.fetch;
  // The refresh call goes through a client without the middleware below,
  // so it is never itself retried.
  const bare = createClient<paths>({ baseUrl: options.baseUrl, fetch });
  const api = createClient<paths>({ baseUrl: options.baseUrl, fetch });

  let refreshing: Promise<boolean> | undefined;
  async function refreshOnce(): Promise<boolean> {
    const pair = tokens.get();
    // Nothing to send (none kept, or a cookie-only server gave none).
    if (!pair?.refresh_token) return false;
    const { data, response } = await bare.POST("/auth/refresh", {
      body: { refresh_token: pair.refresh_token },
    });
    if (data) {
      tokens.set(data);
      return true;
    }
    // 401 INVALID_REFRESH_TOKEN: the session ended (logout, password
    // change or reset, reuse, expiry). Anything else (429, 503) is
    // transient: keep the pair, the caller may try again later.
    if (response.status === 401) tokens.set(undefined);
    return false;
  }
  function refresh(): Promise<boolean> {
    refreshing ??= refreshOnce().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  // A copy of each request that carried our access token, kept until its
  // answer: a body can only be sent once, so the retry sends the copy.
  const retryable = new Map<string, Request>();
  const auth: Middleware = {
    onRequest({ request, id }) {
      const pair = tokens.get();
      if (!pair?.access_token || request.headers.has("Authorization")) return undefined;
      request.headers.set("Authorization", `Bearer ${pair.access_token}`);
      retryable.set(id, request.clone());
      return request;
    },
    async onResponse({ response, id }) {
      const copy = retryable.get(id);
      retryable.delete(id);
      if (!copy || response.status !== 401) return undefined;
      // Refresh only when the token was refused (UNAUTHENTICATED), not
      // for other 401s such as wrong credentials.
      const body: unknown = await response
        .clone()
        .json()
        .catch(() => undefined);
      if (!isApiError(body) || body.code !== "UNAUTHENTICATED") return undefined;
      const sent = copy.headers.get("Authorization");
      const current = tokens.get();
      // Another request may have refreshed meanwhile: use its pair.
      // A network error while refreshing leaves the original answer.
      const fresh =
        current !== undefined && sent !== `Bearer ${current.access_token}`
          ? true
          : await refresh().catch(() => false);
      const pair = tokens.get();
      if (!fresh || !pair) return undefined;
      copy.headers.set("Authorization", `Bearer ${pair.access_token}`);
      return fetch(copy);
    },
    onError({ id }) {
      retryable.delete(id);
      return undefined;
    },
  };
  api.use(auth);

  return {
    api,
    tokens,
    async login(body) {
      const answer = await bare.POST("/auth/login", { body });
      if (answer.data) tokens.set(answer.data);
      return answer;
    },
    refresh,
    async logout() {
      const { error, response } = await api.POST("/auth/logout");
      // 204, or 401 when the session had already ended: forget it either way.
      if (response.status === 204 || response.status === 401) tokens.set(undefined);
      return { error, response };
    },
  };
}
