// The MongoDB backend: spec/backends/mongodb.md (not yet written).
import { ConfigError } from '../errors.js';

export const NAME = 'mongodb';

export function parseUrl() {
  throw new ConfigError('the mongodb backend is not available yet');
}

export async function open() {
  throw new ConfigError('the mongodb backend is not available yet');
}
