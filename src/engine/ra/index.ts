// The RA component plugin: device registration (operator + internal APIs) and trust distribution.
// Mounted by `scms serve ra|all` (src/engine/serve.ts) through ScmsServer.registerComponent.
import type { FastifyInstance } from 'fastify';
import type { TokenSource } from '../http/auth.js';
import { registerDistribution, type DistributionDeps } from './distribution.js';
import { registerRegistrationRoutes } from './registration-routes.js';
import type { RegistrationStore } from './registration-store.js';

export interface RaDeps extends DistributionDeps {
  store: RegistrationStore;
  /** Operator API bearer token (unset: operator routes answer 403). */
  operatorToken: TokenSource;
  /** Internal API token (unset: internal routes answer 403). */
  componentToken: TokenSource;
}

export async function registerRa(app: FastifyInstance, deps: RaDeps): Promise<void> {
  await registerRegistrationRoutes(app, { store: deps.store, operatorToken: deps.operatorToken, componentToken: deps.componentToken });
  await registerDistribution(app, deps);
}

export { registerDistribution, type DistributionDeps } from './distribution.js';
