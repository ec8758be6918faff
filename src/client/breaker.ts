/**
 * The per-credential breaker. Unlike a classic circuit breaker it has no timed half-open state:
 * a refused credential (wrong password, disabled user, locked account) does not heal with time, and
 * probing it is exactly the auth retry loop that gets apps rate limited or locked out. Only new
 * credentials (`client.setAuth`) close it.
 */
import type { AuthenticationFailedError } from './errors.js';

export class CredentialBreaker {
  private error: AuthenticationFailedError | undefined;
  /** Open with the error every later request will fail with. */
  open(error: AuthenticationFailedError): void {
    this.error ??= error;
  }
  /** The error to fail with, or undefined when closed. */
  get failure(): AuthenticationFailedError | undefined {
    return this.error;
  }
  get isOpen(): boolean {
    return this.error !== undefined;
  }
  /** Close: only called when new credentials are given. */
  close(): void {
    this.error = undefined;
  }
}
