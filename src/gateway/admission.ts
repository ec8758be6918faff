/**
 * What happens to a request between authentication and its answer, the same for the proxy and for
 * forward-auth decisions: a refused authentication is still charged (the route's limits apply to
 * it as an anonymous caller first, so guessing keys is rate limited and `failedAuth` counts the
 * 401), then the route's policies decide.
 */
import type { PolicyResult } from '../http/engine.js';
import type { AuthResult } from './auth.js';
import type { GatewayRequestInfo } from './policies.js';
import type { CompiledRoute } from './state.js';

/** The outcome of {@link admit}. */
export type Admission =
  /** Credentials could not be checked (JWKS unreachable): the gateway's failure, 503. */
  | { kind: 'unavailable'; reason: string }
  /** 401 with `detail`, after the limits were charged (`result`: the policies' headers, if any ran and allowed). */
  | { kind: 'unauthorized'; detail: string; result: PolicyResult | undefined }
  /** The policies' answer (undefined: the route has no policy; proceed). A `deny` result is the refusal to send. */
  | { kind: 'decided'; result: PolicyResult | undefined };

const REQUIRED = 'credentials are required (Authorization: Bearer <key or token>)';

/** Decide a request on `route` that authenticated as `auth`. Sets `info.user` / `info.keyId`. */
export function admit(route: CompiledRoute, info: GatewayRequestInfo, auth: AuthResult): Admission | Promise<Admission> {
  if (auth.kind === 'unavailable') return { kind: 'unavailable', reason: auth.reason };
  const refusal = auth.kind === 'invalid' ? auth.reason : auth.kind === 'anonymous' && route.requireUser ? REQUIRED : undefined;
  if (auth.kind === 'user') {
    info.user = auth.user;
    if (auth.keyId !== undefined) info.keyId = auth.keyId;
  }
  const engine = route.engine;
  if (engine === undefined) return refusal !== undefined ? { kind: 'unauthorized', detail: refusal, result: undefined } : { kind: 'decided', result: undefined };
  const after = (x: PolicyResult): Admission => (refusal !== undefined && x.action === 'allow' ? { kind: 'unauthorized', detail: refusal, result: x } : { kind: 'decided', result: x });
  const r = engine.evaluate(info);
  return r instanceof Promise ? r.then(after) : after(r);
}
