/**
 * What `sluice check` does, as a function: load a config file and compile everything the gateway
 * would, without starting anything. The docs test validates every YAML example through it.
 */
import { loadConfig } from '../gateway/config.js';
import { ConsumerRegistry } from '../gateway/consumers.js';
import { compilePolicies } from '../gateway/policies.js';
import { MemoryStore } from '../stores/memory-store.js';

/** Validate `file`; throws `SluiceConfigError` (with the field path) when it is bad. */
export function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): string {
  const c = loadConfig(file, env);
  // Compile the policies too: option errors the schema cannot see (e.g. burst with a window algorithm).
  const registry = new ConsumerRegistry({ type: 'memory' });
  registry.setStatic(c.consumers);
  compilePolicies(c, registry, { store: new MemoryStore(), logger: false });
  return `${c.routes.length} routes, ${Object.keys(c.policies).length} policies, ${Object.keys(c.upstreams).length} upstreams`;
}
