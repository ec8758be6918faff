/**
 * What `sluice check` does, as a function: load a config file and compile everything `serve`
 * would (policies, trustProxy, the authenticator, policies no route uses), without starting
 * anything. The docs test validates every YAML example through it.
 */
import { loadConfig } from '../gateway/config.js';
import { compileConfig } from '../gateway/state.js';

/** Validate `file`; rejects with `SluiceConfigError` (with the field path) when it is bad. */
export async function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const c = loadConfig(file, env);
  await compileConfig(c);
  return `${c.routes.length} routes, ${Object.keys(c.policies).length} policies, ${Object.keys(c.upstreams).length} upstreams`;
}
