/**
 * Endpoint → group mapping: configured route patterns, and the endpoint key used to remember what
 * the server said (`X-Rate-Limit-Group`) about an endpoint.
 */
import { SluiceConfigError } from '../core/errors.js';

/** One configured route: requests matching `method` (any when absent) and `path` use `group`. */
export interface RouteGroup {
  method?: string;
  /** `/restapi/v1.0/account/:id/sms`, `*` for any rest; or a RegExp tested on the pathname. */
  path: string | RegExp;
  group: string;
}

export interface CompiledRoute {
  method: string | undefined;
  re: RegExp;
  group: string;
}

/** Compile routes at construction; bad patterns are config errors. */
export function compileRoutes(routes: readonly RouteGroup[] | undefined): CompiledRoute[] {
  if (routes === undefined) return [];
  if (!Array.isArray(routes)) throw new SluiceConfigError('routes', 'must be an array of { method?, path, group }');
  return routes.map((r, i) => {
    if (r === null || typeof r !== 'object') throw new SluiceConfigError(`routes[${i}]`, 'must be an object');
    if (typeof r.group !== 'string' || r.group.length === 0) throw new SluiceConfigError(`routes[${i}].group`, 'must be a non-empty string');
    let re: RegExp;
    if (r.path instanceof RegExp) re = r.path;
    else if (typeof r.path === 'string' && r.path.startsWith('/')) {
      const src = r.path
        .split('/')
        .map((seg: string) => (seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      re = new RegExp(`^${src}/?$`);
    } else throw new SluiceConfigError(`routes[${i}].path`, 'must be a path starting with "/" or a RegExp');
    return { method: r.method?.toUpperCase(), re, group: r.group.toLowerCase() };
  });
}

/** The configured group of a request, if any route matches. */
export function routeGroup(routes: readonly CompiledRoute[], method: string, pathname: string): string | undefined {
  for (const r of routes) if ((r.method === undefined || r.method === method) && r.re.test(pathname)) return r.group;
  return undefined;
}

/**
 * The key an endpoint's learned group is remembered under: method + path with ids (numbers,
 * UUIDs, long hex) replaced, so `/users/1` and `/users/2` are one endpoint.
 */
export function endpointKey(method: string, pathname: string): string {
  const path = pathname
    .split('/')
    .map((s) => (/^\d+$/.test(s) || /^[0-9a-f-]{16,}$/i.test(s) || /^~$/.test(s) ? ':id' : s))
    .join('/');
  return `${method} ${path}`;
}
