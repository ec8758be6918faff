/**
 * Typed errors of `sluice/client`. Callers switch on the class (or `code`) to decide what to do:
 * reschedule a job (`RateLimitWaitTooLongError.waitMs`), prompt for new credentials
 * (`AuthenticationFailedError`), or give up (`DeadlineExceededError`, `RetryBudgetExceededError`).
 */

/** Base class of every error the client throws on purpose. */
export class ClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The request would have to wait longer than the configured ceiling (`maxWaitMs`) before it may be
 * sent: the group is paused by a 429 (`Retry-After`) or its budget is spent. Nothing was sent.
 */
export class RateLimitWaitTooLongError extends ClientError {
  override readonly name = 'RateLimitWaitTooLongError';
  /** How long the request would have had to wait, in ms. */
  readonly waitMs: number;
  /** The rate-limit group (lane) that is paused or exhausted. */
  readonly group: string;
  constructor(group: string, waitMs: number, maxWaitMs: number) {
    super(
      'RATE_LIMIT_WAIT_TOO_LONG',
      `group "${group}" is rate limited for another ${Math.ceil(waitMs)} ms, above the ${maxWaitMs} ms ceiling (maxWaitMs)`,
    );
    this.waitMs = waitMs;
    this.group = group;
  }
}

/**
 * The credential was refused by the token endpoint (e.g. 400/401 `invalid_grant`: password changed,
 * user disabled, account locked). It is never retried: the credential's breaker is open and every
 * request using it fails with this error until new credentials are given (`client.setAuth`).
 */
export class AuthenticationFailedError extends ClientError {
  override readonly name = 'AuthenticationFailedError';
  /** Id of the credential whose breaker is open. */
  readonly credential: string;
  /** HTTP status of the token endpoint's answer (0 when the breaker was already open). */
  readonly status: number;
  /** OAuth `error` (e.g. `invalid_grant`) or vendor error code, when the endpoint gave one. */
  readonly error: string | undefined;
  constructor(credential: string, status: number, error: string | undefined, detail: string) {
    super(
      'AUTHENTICATION_FAILED',
      `authentication failed for credential "${credential}" (HTTP ${status}${error ? `, ${error}` : ''}): ${detail}. ` +
        'Not retried; requests on this credential fail until new credentials are set with client.setAuth().',
    );
    this.credential = credential;
    this.status = status;
    this.error = error;
  }
}

/** The token endpoint could not be reached or kept failing with 5xx/timeouts after its retries. */
export class AuthenticationUnavailableError extends ClientError {
  override readonly name = 'AuthenticationUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AUTHENTICATION_UNAVAILABLE', message, options);
  }
}

/** The call's deadline (`timeoutMs`) passed, or would pass before the next wait ends. */
export class DeadlineExceededError extends ClientError {
  override readonly name = 'DeadlineExceededError';
  /** The deadline that was exceeded, in ms from the start of the call. */
  readonly timeoutMs: number;
  constructor(timeoutMs: number, what: string, options?: { cause?: unknown }) {
    super('DEADLINE_EXCEEDED', `deadline of ${timeoutMs} ms exceeded ${what}`, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A retry was needed but the retry budget (retries as a share of requests) is spent: the API is
 * failing broadly and more retries would only add load. Carries the last failure.
 */
export class RetryBudgetExceededError extends ClientError {
  override readonly name = 'RetryBudgetExceededError';
  /** Status of the last response, or undefined after a network error (see `cause`). */
  readonly status: number | undefined;
  constructor(status: number | undefined, options?: { cause?: unknown }) {
    super(
      'RETRY_BUDGET_EXCEEDED',
      `retry budget exhausted; last attempt ${status === undefined ? 'failed with a network error' : `answered HTTP ${status}`}`,
      options,
    );
    this.status = status;
  }
}

/** The caller's AbortSignal fired. */
export class RequestAbortedError extends ClientError {
  override readonly name = 'RequestAbortedError';
  constructor(options?: { cause?: unknown }) {
    super('ABORTED', 'request aborted by the caller', options);
  }
}

/** The client was closed; queued requests are rejected with this. */
export class ClientClosedError extends ClientError {
  override readonly name = 'ClientClosedError';
  constructor() {
    super('CLIENT_CLOSED', 'the client was closed');
  }
}

/**
 * The client already holds `maxQueued` calls (queued, in flight or waiting to retry): this one was
 * refused before anything was sent. Back-pressure for producers that enqueue faster than the API
 * allows; wait for calls to finish or raise `maxQueued`.
 */
export class QueueFullError extends ClientError {
  override readonly name = 'QueueFullError';
  /** The high-water mark that was reached. */
  readonly maxQueued: number;
  constructor(maxQueued: number) {
    super('QUEUE_FULL', `the client already holds ${maxQueued} calls (maxQueued); this call was not queued`);
    this.maxQueued = maxQueued;
  }
}
