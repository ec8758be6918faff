/**
 * Authentication: who is calling. An API key (from `Authorization: Bearer <key>` or the configured
 * header) is looked up in the consumer registry's replica (synchronous); a JWT (a Bearer token
 * with three dot-separated parts, when `auth.jwt` is configured) is verified with `jose` against
 * a shared secret (HS256/384/512) or a JWKS URL, and its claims become `sub`, `tier` and `data`.
 *
 * Credentials that are presented but wrong always get a 401, even on `auth: optional` routes: a
 * typo in a key must not silently demote a paying consumer to the anonymous limit. Without
 * `auth.apiKey` or `auth.jwt` (no `auth:` block) the gateway does not judge credentials: a key it
 * issued still identifies its consumer, anything else (`Basic`, an upstream's own bearer token)
 * passes through untouched as an anonymous request.
 *
 * A JWKS endpoint that cannot be reached is the gateway's problem, not the caller's: `unavailable`
 * (503), so clients do not throw away good tokens.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { HttpUser } from '../http/request.js';
import type { GatewayConfig } from './config.js';
import type { ConsumerRegistry } from './consumers.js';

/** Result of authenticating one request. */
export type AuthResult =
  /** No credentials presented. */
  | { kind: 'anonymous' }
  | { kind: 'user'; user: HttpUser; keyId?: string }
  /** Credentials presented but invalid (401). */
  | { kind: 'invalid'; reason: string }
  /** Credentials could not be checked (JWKS endpoint unreachable or broken): 503. */
  | { kind: 'unavailable'; reason: string };

/** An authenticator: synchronous for API keys, a promise for JWTs. */
export type Authenticator = (headers: Record<string, string | string[] | undefined>) => AuthResult | Promise<AuthResult>;

const ANONYMOUS: AuthResult = { kind: 'anonymous' };

/** The key set could not be fetched (network error, timeout, non-200, not a JWKS), as opposed to a bad token. */
function jwksFailure(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  return err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JWKS_INVALID' || err.code === 'ERR_JOSE_GENERIC';
}

/** Build the authenticator of an `auth` block. */
export function createAuthenticator(auth: GatewayConfig['auth'], registry: ConsumerRegistry): Authenticator {
  const keyHeader = auth.apiKey?.header.toLowerCase() ?? 'x-api-key';
  const jwt = auth.jwt;
  // No auth configured: credentials the gateway does not know are none of its business.
  const judging = auth.apiKey !== undefined || jwt !== undefined;
  const unknownKey: AuthResult = judging ? { kind: 'invalid', reason: 'unknown or revoked API key' } : ANONYMOUS;
  let verify: ((token: string) => Promise<AuthResult>) | undefined;
  if (jwt !== undefined) {
    const key: Uint8Array | JWTVerifyGetKey = jwt.secret !== undefined ? new TextEncoder().encode(jwt.secret) : createRemoteJWKSet(new URL(jwt.jwksUrl as string));
    const algorithms = jwt.algorithms ?? (jwt.secret !== undefined ? ['HS256', 'HS384', 'HS512'] : ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']);
    const options = {
      algorithms,
      clockTolerance: jwt.clockToleranceSeconds,
      ...(jwt.issuer !== undefined ? { issuer: jwt.issuer } : {}),
      ...(jwt.audience !== undefined ? { audience: jwt.audience } : {}),
      ...(jwt.requireExp ? { requiredClaims: ['exp'] } : {}),
    };
    verify = async (token) => {
      let payload: JWTPayload;
      try {
        payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (typeof key === 'function' && jwksFailure(err)) return { kind: 'unavailable', reason: `JWKS ${jwt.jwksUrl as string} unavailable (${code ?? (err as Error).message})` };
        return { kind: 'invalid', reason: `invalid token (${code ?? 'ERR_JWT_INVALID'})` };
      }
      const sub = payload[jwt.subClaim];
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > 200) return { kind: 'invalid', reason: `token has no usable "${jwt.subClaim}" claim` };
      const tier = payload[jwt.tierClaim];
      const user: HttpUser = { sub, data: payload as Record<string, unknown> };
      if (typeof tier === 'string') user.tier = tier;
      return { kind: 'user', user };
    };
  }

  const byKey = (key: string): AuthResult => {
    const m = registry.byKey(key);
    if (m === undefined) return unknownKey;
    const user: HttpUser = { sub: m.consumer.sub };
    if (m.consumer.tier !== undefined) user.tier = m.consumer.tier;
    if (m.consumer.metadata !== undefined) user.data = m.consumer.metadata;
    return { kind: 'user', user, keyId: m.key.id };
  };

  return (headers) => {
    const authz = headers.authorization;
    if (typeof authz === 'string' && authz.length > 0) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authz);
      if (m === null) return judging ? { kind: 'invalid', reason: 'Authorization must be "Bearer <token>"' } : ANONYMOUS;
      const token = m[1] as string;
      if (verify !== undefined && token.split('.').length === 3) return verify(token);
      return byKey(token);
    }
    const h = headers[keyHeader];
    const v = typeof h === 'string' ? h : h?.[0];
    if (v !== undefined && v.length > 0) return byKey(v);
    return ANONYMOUS;
  };
}
