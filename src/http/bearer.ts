/**
 * The one `Authorization: Bearer` parser (RFC 6750 §2.1): the scheme is case-insensitive (RFC 9110
 * §11.1), then spaces or tabs, then one token without whitespace. The gateway's consumer
 * authentication and every admin route read credentials through it, so a header one of them
 * accepts is never refused by another.
 */

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The token of a `Bearer` credential; `undefined` when the header is absent or not of that form. */
export function bearerToken(authorization: string | string[] | undefined): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  return BEARER.exec(authorization)?.[1];
}
