/**
 * Tokens that cannot loop. One manager per credential:
 * - proactive refresh `refreshBeforeMs` before expiry (not on 401: that doubles the requests);
 * - single flight: concurrent callers share one token request;
 * - the token endpoint has its own lane (own limiter, one request at a time, not counted in the
 *   client's concurrency), so calls waiting for a token can never starve the token request;
 * - 400/401/403 from the token endpoint (invalid_grant, invalid_client...) are final: the breaker
 *   opens and every request on the credential fails until new credentials are set. A refused
 *   refresh token falls back to the primary grant once (a stale refresh token is normal); a refused
 *   primary grant is never repeated;
 * - 429/503 wait `Retry-After` in the lane; 5xx/408/network get `attempts` tries `retryDelayMs` apart;
 * - a token the API refuses (401) is replaced once; if the API refuses the replacement too (access
 *   revoked, app disabled: the token is granted but useless) the breaker opens instead of fetching
 *   a token per call;
 * - an `access_token` that cannot travel in a header (CR/LF, control or non-ASCII characters) is
 *   refused when received, and no error message carries a token or a secret;
 * - with a shared store, an open breaker is seen by every process using the credential.
 */
import { createHash } from 'node:crypto';
import { SluiceConfigError } from '../core/errors.js';
import { CredentialBreaker } from './breaker.js';
import { AuthenticationFailedError, AuthenticationUnavailableError, DeadlineExceededError } from './errors.js';
import type { ClientEmitter } from './events.js';
import { parseRateLimitHeaders, type HeaderWarning } from './headers.js';
import type { GroupLimit, Lane, Scheduler } from './scheduler.js';
import type { SharedPauses } from './shared-pause.js';

/** OAuth 2 token endpoint settings (RFC 6749 §4.3 password, §4.4 client credentials, RFC 7523 JWT). */
export interface OAuthOptions {
  /** Token endpoint, absolute or relative to `baseUrl` (e.g. `/restapi/oauth/token`). */
  tokenUrl: string;
  /**
   * Form fields of the primary grant, e.g. `{ grant_type: 'password', username, password }` or
   * `{ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }`.
   */
  grant: Record<string, string>;
  /** Client id/secret, sent as HTTP Basic authentication. */
  clientId?: string;
  clientSecret?: string;
  /**
   * Id of the credential: keys its lanes (budgets) and its breaker. Default `user:<username>` for a
   * password grant, else a hash of the grant (never the secret itself).
   */
  credentialId?: string;
  /** Refresh this long before `expires_in` runs out. Default 60 000 (RingCentral SDK). */
  refreshBeforeMs?: number;
  /** Pace of the token endpoint. Default 5 per 60 s (RingCentral's Auth group). */
  tokenLimit?: GroupLimit;
  /** Tries for 5xx, 408 and network errors on the token endpoint. Default 3. */
  attempts?: number;
  /** Delay between those tries. Default 10 000 (RingCentral guidance). */
  retryDelayMs?: number;
}

interface TokenState {
  accessToken: string;
  expiresAt: number;
  refreshToken: string | undefined;
  refreshExpiresAt: number;
  /** The API accepted it at least once. */
  confirmed: boolean;
  /** Fetched because the API refused the previous token. */
  afterRefusal: boolean;
}

/** Characters an access token may carry in `Authorization: Bearer` (visible ASCII, no spaces). */
const HEADER_SAFE = /^[\x21-\x7e]+$/;
const DAY_MS = 86_400_000;

/** What the token manager needs from the client. */
export interface TokenDeps {
  fetch: typeof globalThis.fetch;
  scheduler: Scheduler;
  emitter: ClientEmitter;
  baseUrl: string | undefined;
  maxWaitMs: number;
  warn: (w: HeaderWarning) => void;
  /** Breakers shared with other processes through the store (undefined: this process only). */
  shared?: SharedPauses | undefined;
  keyPrefix?: string;
}

/** Validate OAuth options at construction. */
export function checkOAuth(o: OAuthOptions, baseUrl: string | undefined): void {
  if (o === null || typeof o !== 'object') throw new SluiceConfigError('auth', 'must be an object');
  if (typeof o.tokenUrl !== 'string' || o.tokenUrl.length === 0) throw new SluiceConfigError('auth.tokenUrl', 'must be a URL');
  try {
    new URL(o.tokenUrl, baseUrl);
  } catch {
    throw new SluiceConfigError('auth.tokenUrl', `not a valid URL (relative URLs need baseUrl): ${o.tokenUrl}`);
  }
  if (o.grant === null || typeof o.grant !== 'object' || typeof o.grant.grant_type !== 'string') {
    throw new SluiceConfigError('auth.grant', 'must be an object of form fields with a grant_type');
  }
  for (const [k, v] of [['refreshBeforeMs', o.refreshBeforeMs], ['retryDelayMs', o.retryDelayMs]] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new SluiceConfigError(`auth.${k}`, `must be a non-negative number of ms, got ${String(v)}`);
    }
  }
  if (o.attempts !== undefined && (!Number.isInteger(o.attempts) || o.attempts < 1 || o.attempts > 10)) {
    throw new SluiceConfigError('auth.attempts', `must be an integer 1-10, got ${String(o.attempts)}`);
  }
}

/** The credential id of OAuth options. */
export function credentialIdOf(o: OAuthOptions): string {
  if (o.credentialId !== undefined) return o.credentialId;
  if (o.grant.username !== undefined) return `user:${o.grant.username}`;
  const h = createHash('sha256').update(JSON.stringify([o.tokenUrl, o.clientId ?? '', o.grant])).digest('hex');
  return `cred:${h.slice(0, 12)}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Tokens of one credential. */
export class TokenManager {
  readonly credential: string;
  readonly breaker = new CredentialBreaker();
  private state: TokenState | undefined;
  private inflight: Promise<string> | undefined;
  private readonly lane: Lane;
  private readonly url: string;
  private readonly refreshBeforeMs: number;
  private readonly breakerKey: string;
  /** Clearing a shared breaker left by earlier credentials (set by `setAuth`). */
  private ready: Promise<void> = Promise.resolve();
  private nextAfterRefusal = false;
  /** Token requests sent (for tests and metrics). */
  requests = 0;

  constructor(
    private readonly o: OAuthOptions,
    private readonly d: TokenDeps,
  ) {
    this.credential = credentialIdOf(o);
    this.url = new URL(o.tokenUrl, d.baseUrl).toString();
    this.refreshBeforeMs = o.refreshBeforeMs ?? 60_000;
    this.lane = d.scheduler.lane(this.credential, 'token-endpoint', true);
    this.lane.maxInFlight = 1;
    d.scheduler.setLimit(this.lane, o.tokenLimit ?? { limit: 5, windowMs: 60_000 }, 'config');
    this.breakerKey = `${d.keyPrefix ?? ''}${this.credential}|auth-breaker`;
  }

  /** New credentials: close the breaker other processes may see too. */
  clearSharedBreaker(): void {
    const shared = this.d.shared;
    if (shared !== undefined) this.ready = shared.clear(this.breakerKey).catch(() => undefined);
  }

  /** Replace every known secret in `text` (an endpoint's error description may echo one). */
  private redact(text: string): string {
    const secrets = [this.state?.accessToken, this.state?.refreshToken, this.o.clientSecret, ...Object.entries(this.o.grant).filter(([k]) => k !== 'grant_type' && k !== 'username').map(([, v]) => v)];
    let out = text;
    for (const s of secrets) if (s !== undefined && s.length >= 4) out = out.split(s).join('[redacted]');
    return out;
  }

  private openBreaker(err: AuthenticationFailedError): AuthenticationFailedError {
    this.state = undefined;
    this.breaker.open(err);
    this.d.scheduler.failCredential(this.credential, err);
    this.d.emitter.emit('auth-failed', { credential: this.credential, error: err });
    this.d.shared?.extend(this.breakerKey, DAY_MS).catch(() => undefined);
    return err;
  }

  /** The API accepted `token`: a later 401 on it is a revocation, worth one new token. */
  confirm(token: string): void {
    if (this.state?.accessToken === token) this.state.confirmed = true;
  }

  /**
   * The API answered 401 to `token`. Returns the breaker's error when the API refused a token that
   * was fetched because the previous one was refused (granted but useless: no more fetching).
   * Otherwise the token is forgotten (once) so the next call fetches a new one.
   */
  refused(token: string): AuthenticationFailedError | undefined {
    if (this.breaker.failure !== undefined) return this.breaker.failure;
    const s = this.state;
    if (s === undefined || s.accessToken !== token) return undefined;
    if (s.afterRefusal && !s.confirmed) {
      return this.openBreaker(
        new AuthenticationFailedError(this.credential, 401, 'invalid_token', 'the API refused a token fresh from the token endpoint (access revoked or the app disabled?)'),
      );
    }
    if (s.expiresAt !== 0) {
      s.expiresAt = 0;
      this.nextAfterRefusal = true;
    }
    return undefined;
  }

  /** A valid access token (cached, refreshed ahead of expiry, or fetched). */
  async token(deadline: number, timeoutMs: number): Promise<string> {
    const failure = this.breaker.failure;
    if (failure !== undefined) throw failure;
    const now = Date.now();
    const s = this.state;
    if (s !== undefined && now < s.expiresAt) {
      if (now >= s.expiresAt - this.refreshBeforeMs) this.refresh().catch(() => undefined);
      return s.accessToken;
    }
    const p = this.refresh();
    if (!Number.isFinite(deadline)) return p;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceededError(timeoutMs, 'while waiting for an access token')), Math.max(0, deadline - now));
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Single-flight refresh. */
  refresh(): Promise<string> {
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchToken(): Promise<string> {
    await this.ready;
    if (this.d.shared !== undefined && (await this.d.shared.remaining(this.breakerKey)) > 0) {
      throw this.openBreaker(new AuthenticationFailedError(this.credential, 0, undefined, 'another process sharing the store found the credentials refused'));
    }
    let useRefresh = this.state?.refreshToken !== undefined && Date.now() < (this.state?.refreshExpiresAt ?? 0);
    const attempts = this.o.attempts ?? 3;
    let transient = 0;
    let throttled = 0;
    for (;;) {
      const grant = useRefresh
        ? { grant_type: 'refresh_token', refresh_token: this.state?.refreshToken as string }
        : this.o.grant;
      const permit = await this.d.scheduler.acquire(this.lane, {
        priority: 0,
        deadline: Infinity,
        timeoutMs: Infinity,
        maxWaitMs: this.d.maxWaitMs,
        endpoint: `POST ${this.url}`,
      });
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      if (this.o.clientId !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${this.o.clientId}:${this.o.clientSecret ?? ''}`).toString('base64')}`;
      }
      let res: Response;
      try {
        this.requests++;
        res = await this.d.fetch(this.url, { method: 'POST', headers, body: new URLSearchParams(grant).toString() });
      } catch (err) {
        this.d.scheduler.release(permit);
        if (++transient >= attempts) {
          throw new AuthenticationUnavailableError(`token endpoint unreachable after ${transient} tries`, { cause: err });
        }
        await sleep(this.o.retryDelayMs ?? 10_000);
        continue;
      }
      const info = parseRateLimitHeaders(res.headers, Date.now(), this.d.warn);
      await this.d.scheduler.observe(permit, this.lane, info, res.status);
      this.d.scheduler.release(permit);
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (res.ok && typeof body.access_token === 'string' && body.access_token.length > 0) {
        if (!HEADER_SAFE.test(body.access_token)) {
          // A CR/LF would split the Authorization header; undici's error would quote the token.
          throw new AuthenticationUnavailableError('the token endpoint returned an access_token with characters a header cannot carry (CR/LF, control or non-ASCII); refused');
        }
        const now = Date.now();
        const exp = numberOf(body.expires_in);
        const rexp = numberOf(body.refresh_token_expires_in);
        this.state = {
          accessToken: body.access_token,
          // Unknown lifetime: assume an hour (RingCentral's), the 401 path covers a shorter one.
          expiresAt: now + (exp ?? 3600) * 1000,
          refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
          refreshExpiresAt: now + (rexp ?? 7 * 86_400) * 1000,
          confirmed: false,
          afterRefusal: this.nextAfterRefusal,
        };
        this.nextAfterRefusal = false;
        this.d.emitter.emit('token-refreshed', {
          credential: this.credential,
          grantType: grant.grant_type ?? '',
          expiresInMs: exp === undefined ? undefined : exp * 1000,
        });
        return body.access_token;
      }
      if (res.status === 400 || res.status === 401 || res.status === 403) {
        if (useRefresh) {
          // A refresh token that expired or was rotated elsewhere: fall back to the primary grant, once.
          useRefresh = false;
          this.state = undefined;
          continue;
        }
        const code = str(body.error) ?? str(body.errorCode) ?? str((body.errors as { errorCode?: unknown }[] | undefined)?.[0]?.errorCode);
        const detail = str(body.error_description) ?? str(body.message) ?? 'the token endpoint refused the credentials';
        throw this.openBreaker(new AuthenticationFailedError(this.credential, res.status, code && this.redact(code).slice(0, 100), this.redact(detail).slice(0, 200)));
      }
      if (res.status === 429 || res.status === 503) {
        // The lane is paused for Retry-After by observe(); the next acquire waits it out.
        if (++throttled > attempts) {
          throw new AuthenticationUnavailableError(`token endpoint kept answering ${res.status} (${throttled} times)`);
        }
        continue;
      }
      if (res.ok) {
        throw new AuthenticationUnavailableError('token endpoint answered without an access_token');
      }
      if (++transient >= attempts) {
        throw new AuthenticationUnavailableError(`token endpoint answered HTTP ${res.status} ${transient} times`);
      }
      await sleep(this.o.retryDelayMs ?? 10_000);
    }
  }
}

function numberOf(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 && n < 1e9 ? n : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
