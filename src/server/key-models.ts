// A client key's model allowlist (its policy's `models`): the model and alias names it may ask for,
// by the name in the request (an alias's targets are not implied). Another name is 403
// model_not_allowed in the route's shape; GET /v1/models lists only what the key may use.
import type { Credential } from '../auth/index.js';
import { RelayError } from '../core/index.js';
import { modelValueSpans } from '../protocol/index.js';

const NAMES_IN_ERRORS = 10;

/** The names a key may use, or undefined for any. */
export function allowedModels(key: Credential | undefined): readonly string[] | undefined {
  const m = key?.policy.models;
  return Array.isArray(m) ? m : undefined;
}

/** Throws 403 unless the key may ask for `model`. With an allowlist, a body with a second top-level
 * `model` is refused too: the relay reads the last, and a backend might read the first. */
export function checkKeyModel(key: Credential | undefined, model: string, raw: Buffer): void {
  const allowed = allowedModels(key);
  if (!allowed) return;
  if (!allowed.includes(model)) throw notAllowed(model, allowed);
  // Only for keys with an allowlist: one scan of the body.
  const spans = modelValueSpans(raw.toString('latin1'), true);
  if (spans && spans.length > 2) throw new RelayError('invalid_request', "The request body has more than one top-level 'model'.");
}

export function notAllowed(model: string, allowed: readonly string[]): RelayError {
  const shown = allowed.length > NAMES_IN_ERRORS ? `${allowed.slice(0, NAMES_IN_ERRORS).join(', ')} and ${allowed.length - NAMES_IN_ERRORS} more` : allowed.join(', ');
  return new RelayError('model_not_allowed', `This API key may not use the model '${model}'; it may use: ${shown}.`);
}
