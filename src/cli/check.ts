/**
 * What `sluice check` does, as a function: load a config file and compile everything `serve`
 * would (policies, trustProxy, the authenticator, policies no route uses), without starting
 * anything (and, with an `rls:` section, load its envoyproxy/ratelimit files). The docs test validates every YAML example through it.
 */
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../gateway/config.js';
import { compileConfig } from '../gateway/state.js';

/** Validate `file`; rejects with `SluiceConfigError` (with the field path) when it is bad. */
export async function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const c = loadConfig(file, env);
  await compileConfig(c);
  // The rls: section's envoyproxy/ratelimit files, with the Go service's validation errors.
  const domains = c.rls === undefined ? undefined : (await import('../decisions/rls/config.js')).loadRlsConfigs(c.rls, dirname(resolve(file))).domains.size;
  return `${c.routes.length} routes, ${Object.keys(c.policies).length} policies, ${Object.keys(c.upstreams).length} upstreams${domains === undefined ? '' : `, rls: ${domains} domains`}`;
}
