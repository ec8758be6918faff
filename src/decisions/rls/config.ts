/**
 * The envoyproxy/ratelimit configuration format, read unchanged: one YAML file per `domain`, a tree
 * of `descriptors` (`key`, optional `value`, optional `rate_limit`, nested `descriptors`), and the
 * validation errors of the Go service (src/config/config_impl.go), message for message, each
 * prefixed with the file and the YAML path of the offending node.
 *
 * One Sluice extension: `algorithm` inside `rate_limit` picks the counting algorithm of that
 * descriptor (default: `rls.algorithm` of sluice.yaml, itself `gcra` by default).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { SluiceConfigError } from '../../core/errors.js';
import { compileRule, type Rule } from '../../core/rule.js';
import { RLS_ALGORITHMS, type RlsAlgorithm, type RlsConfig } from './settings.js';

/** The time units of `rate_limit.unit` (envoyproxy/ratelimit's, upper-cased like its enum). */
export type Unit = 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY' | 'WEEK' | 'MONTH' | 'YEAR';

/** Window of each unit in ms; a month is 30 days and a year 365, as in the Go service. */
export const UNIT_MS: Readonly<Record<Unit, number>> = {
  SECOND: 1000,
  MINUTE: 60_000,
  HOUR: 3_600_000,
  DAY: 86_400_000,
  WEEK: 7 * 86_400_000,
  MONTH: 30 * 86_400_000,
  YEAR: 365 * 86_400_000,
};

/** One `rate_limit` of the tree. */
export interface ConfiguredLimit {
  /** The descriptor's place in the tree, as the Go service names it: `domain.key_value.subkey`. */
  readonly path: string;
  readonly requestsPerUnit: number;
  /** Undefined only for `unlimited` limits. */
  readonly unit: Unit | undefined;
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
  /** `rate_limit.name`, '' when absent (only named limits can be replaced). */
  readonly name: string;
  /** Names of the limits this one replaces when both match one request. */
  readonly replaces: readonly string[];
  readonly detailedMetric: boolean;
  /** The compiled rule; undefined when unlimited or when `requests_per_unit` is 0 (refuse every hit). */
  readonly rule: Rule | undefined;
}

/** A `*` pattern among a node's children, split once at load time. */
export interface WildcardEntry {
  /** The child's map key, e.g. `path_/api/*`. */
  readonly key: string;
  readonly parts: readonly string[];
}

/** One level of the descriptor tree. */
export interface DescriptorNode {
  readonly limit: ConfiguredLimit | undefined;
  /** Children by `key` or `key_value`. */
  readonly children: Map<string, DescriptorNode>;
  /** Children whose `key_value` contains `*`, in file order. */
  readonly wildcards: WildcardEntry[];
  /** `share_threshold`: every value matching this wildcard shares one counter. */
  readonly shareThreshold: boolean;
}

/** Every loaded domain. */
export interface RateLimitConfig {
  readonly domains: ReadonlyMap<string, DescriptorNode>;
}

/** Options of {@link loadRateLimitConfigs}. */
export interface LoadOptions {
  /** Algorithm of descriptors that do not name one. Default `gcra`. */
  algorithm?: RlsAlgorithm;
  /** Merge files that share a domain instead of refusing the second one. Default false. */
  mergeDomains?: boolean;
}

/** A config file's name (for messages) and text. */
export interface ConfigSource {
  readonly name: string;
  readonly text: string;
}

/** Every key the Go service accepts anywhere in a file, plus Sluice's `algorithm`. */
const VALID_KEYS = new Set([
  'domain',
  'key',
  'value',
  'descriptors',
  'rate_limit',
  'unit',
  'requests_per_unit',
  'unlimited',
  'shadow_mode',
  'quota_mode',
  'name',
  'replaces',
  'detailed_metric',
  'value_to_metric',
  'share_threshold',
  'metadata',
  'algorithm',
]);

const MAX_UINT32 = 4_294_967_295;

const fail = (file: string, path: string, reason: string): never => {
  throw new SluiceConfigError(path ? `${file} ${path}` : file, reason);
};

/** The Go service's key check: every key a known string, lists hold maps, leaves are string/int/bool/null. */
function validateKeys(file: string, node: Node, path: string): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    const k = pair.key as Node | null;
    const keyValue = isScalar(k) ? k.value : k;
    if (typeof keyValue !== 'string') fail(file, path, `config error, key is not of type string: ${isScalar(k) ? String(k.source ?? k.value) : 'a collection'}`);
    const key = keyValue as string;
    if (!VALID_KEYS.has(key)) fail(file, path, `config error, unknown key '${key}'`);
    // Metadata is free-form (the Go service converts it to a protobuf Struct).
    if (key === 'metadata') continue;
    const at = path ? `${path}.${key}` : key;
    const v = pair.value as Node | null;
    if (v === null) continue;
    if (isSeq(v)) {
      v.items.forEach((e, i) => {
        if (!isMap(e)) fail(file, `${at}[${i}]`, `config error, yaml file contains list of type other than map: ${isScalar(e) ? String((e as { source?: string }).source ?? (e as { value: unknown }).value) : 'a list'}`);
        validateKeys(file, e as Node, `${at}[${i}]`);
      });
    } else if (isMap(v)) {
      validateKeys(file, v, at);
    } else if (isScalar(v)) {
      const t = typeof v.value;
      if (!(t === 'string' || t === 'boolean' || v.value === null || (t === 'number' && Number.isInteger(v.value)))) fail(file, at, 'error checking config');
    } else {
      fail(file, at, 'error checking config');
    }
  }
}

/** Field readers over one YAML map, with Go yaml.v2's coercions (a scalar into a string field keeps its text). */
class Fields {
  constructor(
    private readonly file: string,
    private readonly node: Node | null,
    readonly path: string,
  ) {}
  private get(key: string): Node | null | undefined {
    if (!isMap(this.node)) return undefined;
    return this.node.get(key, true) as Node | null | undefined;
  }
  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }
  string(key: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) return '';
    if (isScalar(v)) return v.value === null ? '' : typeof v.value === 'string' ? v.value : String(v.source ?? v.value);
    return fail(this.file, this.at(key), `error loading config file: ${key} must be a string`);
  }
  bool(key: string): boolean {
    const v = this.get(key);
    if (v === undefined || v === null || (isScalar(v) && v.value === null)) return false;
    if (isScalar(v) && typeof v.value === 'boolean') return v.value;
    return fail(this.file, this.at(key), `error loading config file: ${key} must be true or false, got ${isScalar(v) ? JSON.stringify(v.source ?? v.value) : 'a collection'}`);
  }
  uint32(key: string): number {
    const v = this.get(key);
    if (v === undefined || v === null || (isScalar(v) && v.value === null)) return 0;
    if (isScalar(v) && typeof v.value === 'number' && Number.isInteger(v.value) && v.value >= 0 && v.value <= MAX_UINT32) return v.value;
    return fail(this.file, this.at(key), `error loading config file: ${key} must be an integer from 0 to ${MAX_UINT32}, got ${isScalar(v) ? JSON.stringify(v.source ?? v.value) : 'a collection'}`);
  }
  /** A list of maps (already checked by validateKeys), as field readers. */
  list(key: string): Fields[] {
    const v = this.get(key);
    if (v === undefined || v === null || (isScalar(v) && v.value === null)) return [];
    if (!isSeq(v)) return fail(this.file, this.at(key), `error loading config file: ${key} must be a list`);
    return v.items.map((e, i) => new Fields(this.file, e as Node, `${this.at(key)}[${i}]`));
  }
  /** A nested map, or undefined when the key is absent or null. */
  map(key: string): Fields | undefined {
    const v = this.get(key);
    if (v === undefined || v === null || (isScalar(v) && v.value === null)) return undefined;
    if (!isMap(v)) return fail(this.file, this.at(key), `error loading config file: ${key} must be a mapping`);
    return new Fields(this.file, v, this.at(key));
  }
}

const newNode = (limit: ConfiguredLimit | undefined, shareThreshold: boolean): DescriptorNode => ({ limit, children: new Map(), wildcards: [], shareThreshold });

/** Rule names stay under the 200-character cap of compileRule: long paths are hashed. */
function ruleName(path: string): string {
  const name = `rls:${path}`;
  return name.length <= 200 ? name : `rls:${path.slice(0, 150)}#${createHash('sha256').update(path).digest('hex').slice(0, 32)}`;
}

/** Compile the rule of a limit (undefined when nothing needs counting). */
export function ruleOf(path: string, requestsPerUnit: number, unit: Unit, algorithm: RlsAlgorithm, field: string): Rule | undefined {
  if (requestsPerUnit === 0) return undefined;
  try {
    return compileRule({ name: ruleName(path), algorithm, limit: requestsPerUnit, windowMs: UNIT_MS[unit] });
  } catch (err) {
    if (err instanceof SluiceConfigError) throw new SluiceConfigError(field, err.message.replace(/^Invalid option "[^"]*": /, ''));
    throw err;
  }
}

function loadDescriptors(file: string, parent: DescriptorNode, parentKey: string, list: Fields[], algorithm: RlsAlgorithm): void {
  for (const d of list) {
    const key = d.string('key');
    if (key === '') fail(file, d.path, 'descriptor has empty key');
    const value = d.string('value');
    // The value is optional: without it the entry matches every value of the key (one counter per value).
    const finalKey = value === '' ? key : `${key}_${value}`;
    const path = parentKey + finalKey;
    if (parent.children.has(finalKey)) fail(file, d.path, `duplicate descriptor composite key '${path}'`);

    let limit: ConfiguredLimit | undefined;
    const rl = d.map('rate_limit');
    if (rl !== undefined) {
      const unlimited = rl.bool('unlimited');
      const unitText = rl.string('unit').toUpperCase();
      const unit = Object.hasOwn(UNIT_MS, unitText) ? (unitText as Unit) : undefined;
      if (unlimited) {
        if (unit !== undefined) fail(file, rl.path, 'should not specify rate limit unit when unlimited');
      } else if (unit === undefined) {
        fail(file, `${rl.path}.unit`, `invalid rate limit unit '${rl.string('unit')}'`);
      }
      const requestsPerUnit = rl.uint32('requests_per_unit');
      const name = rl.string('name');
      const replaces = rl.list('replaces').map((r) => r.string('name'));
      for (const r of replaces) {
        if (r === '') fail(file, `${rl.path}.replaces`, 'should not have an empty replaces entry');
        if (r === name) fail(file, `${rl.path}.replaces`, 'replaces should not contain name of same descriptor');
      }
      const algorithmText = rl.string('algorithm');
      if (algorithmText !== '' && !(RLS_ALGORITHMS as readonly string[]).includes(algorithmText)) {
        fail(file, `${rl.path}.algorithm`, `unknown algorithm '${algorithmText}' (Sluice extension; one of ${RLS_ALGORITHMS.join(', ')})`);
      }
      limit = {
        path,
        requestsPerUnit,
        unit,
        unlimited,
        shadowMode: d.bool('shadow_mode'),
        name,
        replaces,
        detailedMetric: d.bool('detailed_metric'),
        rule: unlimited || unit === undefined ? undefined : ruleOf(path, requestsPerUnit, unit, (algorithmText || algorithm) as RlsAlgorithm, `${file} ${rl.path}`),
      };
    }
    if (d.bool('quota_mode')) fail(file, `${d.path}.quota_mode`, 'quota_mode is not supported by Sluice (remove it, or keep envoyproxy/ratelimit for this domain)');
    const shareThreshold = d.bool('share_threshold');
    if (shareThreshold && !finalKey.includes('*')) {
      fail(file, d.path, `share_threshold can only be used with wildcard values (containing '*'), but found key '${finalKey}'`);
    }
    // Checked for its type only: value_to_metric and metadata shape the Go service's stats and
    // dynamic metadata, which Sluice does not emit.
    d.bool('value_to_metric');
    if (finalKey.includes('*')) parent.wildcards.push({ key: finalKey, parts: finalKey.split('*') });
    const node = newNode(limit, shareThreshold);
    loadDescriptors(file, node, `${path}.`, d.list('descriptors'), algorithm);
    parent.children.set(finalKey, node);
  }
}

/**
 * Load envoyproxy/ratelimit config files (in order). Throws SluiceConfigError naming the file and
 * the YAML path, with the Go service's message (e.g. `duplicate domain 'x' in config file`).
 */
export function loadRateLimitConfigs(sources: readonly ConfigSource[], options: LoadOptions = {}): RateLimitConfig {
  const algorithm = options.algorithm ?? 'gcra';
  const domains = new Map<string, DescriptorNode>();
  for (const { name: file, text } of sources) {
    const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: false });
    const first = doc.errors[0];
    if (first !== undefined) fail(file, '', `error loading config file: ${first.message.split('\n')[0]}`);
    const root = doc.contents as Node | null;
    if (root !== null && !isMap(root) && !(isScalar(root) && root.value === null)) fail(file, '', 'error loading config file: the document must be a mapping');
    if (root !== null) validateKeys(file, root, '');
    const top = new Fields(file, root, '');
    const domain = top.string('domain');
    if (domain === '') fail(file, '', 'config file cannot have empty domain');
    let node = domains.get(domain);
    if (node !== undefined && options.mergeDomains !== true) fail(file, 'domain', `duplicate domain '${domain}' in config file`);
    if (node === undefined) {
      node = newNode(undefined, false);
      domains.set(domain, node);
    }
    loadDescriptors(file, node, `${domain}.`, top.list('descriptors'), algorithm);
  }
  return { domains };
}

/** Read and load config files named relative to `baseDir` (the directory of sluice.yaml). */
export function readRateLimitConfigs(files: readonly string[], baseDir: string, options: LoadOptions = {}): RateLimitConfig {
  const sources = files.map((f, i) => {
    try {
      return { name: f, text: readFileSync(resolve(baseDir, f), 'utf8') };
    } catch (err) {
      throw new SluiceConfigError(`rls.configs[${i}]`, `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
  return loadRateLimitConfigs(sources, options);
}

/** Load the envoyproxy/ratelimit files of an `rls:` section (what `sluice check` and startup run). */
export function loadRlsConfigs(config: RlsConfig, baseDir: string): RateLimitConfig {
  return readRateLimitConfigs(config.configs, baseDir, { algorithm: config.algorithm, mergeDomains: config.mergeDomains });
}
