/**
 * Authentication: who is calling. An API key (from `Authorization: Bearer <key>` or the configured
 * header) is looked up in the consumer registry's replica (synchronous); a JWT (a Bearer token
 * with three dot-separated parts, when `auth.jwt` is configured) is verified with `jose` against
 * a shared secret (HS256/384/512) or a JWKS URL, and its claims become `sub`, `tier` and `data`.
 *
 * Credentials that are presented but wrong always get a 401, even on `auth: optional` routes: a
 * typo in a key must not silently demote a paying consumer to the anonymous limit.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { HttpUser } from '../http/request.js';
import type { GatewayConfig } from './config.js';
import type { ConsumerRegistry } from './consumers.js';

/** Result of authenticating one request. */
export type AuthResult =
  /** No credentials presented. */
  | { kind: 'anonymous' }
  | { kind: 'user'; user: HttpUser; keyId?: string }
  /** Credentials presented but invalid (401). */
  | { kind: 'invalid'; reason: string };

/** An authenticator: synchronous for API keys, a promise for JWTs. */
export type Authenticator = (headers: Record<string, string | string[] | undefined>) => AuthResult | Promise<AuthResult>;

const ANONYMOUS: AuthResult = { kind: 'anonymous' };

/** Build the authenticator of an `auth` block. */
export function createAuthenticator(auth: GatewayConfig['auth'], registry: ConsumerRegistry): Authenticator {
  const keyHeader = auth.apiKey?.header.toLowerCase() ?? 'x-api-key';
  const jwt = auth.jwt;
  let verify: ((token: string) => Promise<AuthResult>) | undefined;
  if (jwt !== undefined) {
    const key: Uint8Array | JWTVerifyGetKey = jwt.secret !== undefined ? new TextEncoder().encode(jwt.secret) : createRemoteJWKSet(new URL(jwt.jwksUrl as string));
    const algorithms = jwt.algorithms ?? (jwt.secret !== undefined ? ['HS256', 'HS384', 'HS512'] : ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']);
    const options = {
      algorithms,
      clockTolerance: jwt.clockToleranceSeconds,
      ...(jwt.issuer !== undefined ? { issuer: jwt.issuer } : {}),
      ...(jwt.audience !== undefined ? { audience: jwt.audience } : {}),
    };
    verify = async (token) => {
      let payload: JWTPayload;
      try {
        payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
      } catch (err) {
        return { kind: 'invalid', reason: `invalid token (${(err as { code?: string }).code ?? 'ERR_JWT_INVALID'})` };
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
    if (m === undefined) return { kind: 'invalid', reason: 'unknown or revoked API key' };
    const user: HttpUser = { sub: m.consumer.sub };
    if (m.consumer.tier !== undefined) user.tier = m.consumer.tier;
    if (m.consumer.metadata !== undefined) user.data = m.consumer.metadata;
    return { kind: 'user', user, keyId: m.key.id };
  };

  return (headers) => {
    const authz = headers.authorization;
    if (typeof authz === 'string' && authz.length > 0) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authz);
      if (m === null) return { kind: 'invalid', reason: 'Authorization must be "Bearer <token>"' };
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
