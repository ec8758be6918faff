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
 * - 429/503 wait `Retry-After` in the lane; 5xx/408/network get `attempts` tries `retryDelayMs` apart.
 */
import { createHash } from 'node:crypto';
import { SluiceConfigError } from '../core/errors.js';
import { CredentialBreaker } from './breaker.js';
import { AuthenticationFailedError, AuthenticationUnavailableError, DeadlineExceededError } from './errors.js';
import type { ClientEmitter } from './events.js';
import { parseRateLimitHeaders, type HeaderWarning } from './headers.js';
import type { GroupLimit, Lane, Scheduler } from './scheduler.js';

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
}

/** What the token manager needs from the client. */
export interface TokenDeps {
  fetch: typeof globalThis.fetch;
  scheduler: Scheduler;
  emitter: ClientEmitter;
  baseUrl: string | undefined;
  maxWaitMs: number;
  warn: (w: HeaderWarning) => void;
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

  /** The API answered 401 to `token`: forget it (once) so the next call refreshes. */
  invalidate(token: string): boolean {
    if (this.state?.accessToken !== token) return false;
    this.state.expiresAt = 0;
    return true;
  }

  /** Single-flight refresh. */
  refresh(): Promise<string> {
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchToken(): Promise<string> {
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
        const now = Date.now();
        const exp = numberOf(body.expires_in);
        const rexp = numberOf(body.refresh_token_expires_in);
        this.state = {
          accessToken: body.access_token,
          // Unknown lifetime: assume an hour (RingCentral's), the 401 path covers a shorter one.
          expiresAt: now + (exp ?? 3600) * 1000,
          refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
          refreshExpiresAt: now + (rexp ?? 7 * 86_400) * 1000,
        };
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
        this.state = undefined;
        const code = str(body.error) ?? str(body.errorCode) ?? str((body.errors as { errorCode?: unknown }[] | undefined)?.[0]?.errorCode);
        const detail = str(body.error_description) ?? str(body.message) ?? 'the token endpoint refused the credentials';
        const err = new AuthenticationFailedError(this.credential, res.status, code, detail.slice(0, 200));
        this.breaker.open(err);
        this.d.scheduler.failCredential(this.credential, err);
        this.d.emitter.emit('auth-failed', { credential: this.credential, error: err });
        throw err;
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
