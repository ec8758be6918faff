/**
 * Typed errors. Upper layers switch on the class (or `code`) to choose fail-open or fail-closed,
 * to answer 400 for a bad key, or to stop startup on a bad option.
 */

/**
 * An option is invalid. Thrown at construction, never at the first request. The message is built
 * from `field` and `reason`, so code that re-homes an error under a longer path (a policy inside
 * a config file) uses {@link SluiceConfigError.under} instead of parsing the message.
 */
export class SluiceConfigError extends Error {
  override readonly name = 'SluiceConfigError';
  /** Stable code: switch on it rather than on the message. */
  readonly code = 'SLUICE_CONFIG';
  /** Dotted path of the offending option, e.g. `limits[1].windowMs`. */
  readonly field: string;
  /** What is wrong with it, without the field (`must be a positive number, got -1`). */
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(`Invalid option "${field}": ${reason}`);
    this.field = field;
    this.reason = reason;
  }

  /** The same error with its field placed under `prefix` (`p` + `burst` -> `p.burst`); no prefix is added twice. */
  under(prefix: string): SluiceConfigError {
    if (this.field === prefix || this.field.startsWith(`${prefix}.`) || this.field.startsWith(`${prefix}[`)) return this;
    return new SluiceConfigError(this.field === '' ? prefix : `${prefix}.${this.field}`, this.reason);
  }
}

/** A key cannot be used (wrong type, too long, or not well-formed Unicode). */
export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError';
  readonly code = 'SLUICE_INVALID_KEY';
  constructor(reason: string) {
    super(`Invalid rate-limit key: ${reason}`);
  }
}

/** The store could not decide (Redis down, timeout, script error). No state was changed by us. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: 'STORE_UNAVAILABLE' | 'STORE_TIMEOUT' | 'STORE_FAILURE';
  constructor(code: StoreError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
