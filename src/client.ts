/**
 * `sluice/client`: call a rate-limited API at full speed without being throttled.
 *
 * @example
 * ```ts
 * import { createClient } from 'sluice/client';
 * const api = createClient({
 *   baseUrl: 'https://platform.ringcentral.com',
 *   groups: { light: { limit: 50, windowMs: 60_000 }, heavy: { limit: 10, windowMs: 60_000 } },
 *   routes: [{ method: 'POST', path: '/restapi/v1.0/account/~/extension/~/sms', group: 'medium' }],
 *   auth: { tokenUrl: '/restapi/oauth/token', clientId, clientSecret,
 *           grant: { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jwt } },
 * });
 * const res = await api.fetch('/restapi/v1.0/account/~/extension/~', { priority: 1 });
 * ```
 */
export { createClient, type Client, type ClientLogger, type ClientOptions, type ClientRequestInit } from './client/client.js';
export type { OAuthOptions } from './client/auth.js';
export type { GroupLimit } from './client/scheduler.js';
export type { RouteGroup } from './client/routes.js';
export type { RetryOptions } from './client/retry.js';
export { ClientEmitter, type ClientEvents, type ClientEventName } from './client/events.js';
export {
  parseRateLimitHeaders,
  parseRetryAfter,
  MAX_HEADER_COUNT,
  MAX_HEADER_WAIT_MS,
  type HeaderWarning,
  type RateLimitInfo,
} from './client/headers.js';
export {
  AuthenticationFailedError,
  AuthenticationUnavailableError,
  ClientClosedError,
  ClientError,
  DeadlineExceededError,
  QueueFullError,
  RateLimitWaitTooLongError,
  RequestAbortedError,
  RetryBudgetExceededError,
} from './client/errors.js';
export { progressBar, type ProgressBar, type ProgressBarOptions } from './client/progress.js';
export { createJobQueue, type JobQueue, type JobQueueOptions, type HttpJob } from './client/bullmq.js';
