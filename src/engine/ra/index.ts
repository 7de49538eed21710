// The RA component plugin: device registration (operator + internal APIs), trust distribution and, when its
// dependencies are given, the authorization interface (POST/GET /v3/authorization-certificate).
// Mounted by `scms serve ra|all` (src/engine/serve.ts) through ScmsServer.registerComponent; under `serve ra` the
// authorization deps reach LA1, LA2 and the ACA over HTTP (--peer la1=/la2=/aca=URL).
import type { FastifyInstance } from 'fastify';
import { registerRevocationRoutes } from '../crl/routes.js';
import type { CrlService } from '../crl/service.js';
import type { CrlStore } from '../crl/store.js';
import type { TokenSource } from '../http/auth.js';
import { registerAuthorization, type AuthorizationDeps } from './authorization.js';
import { registerDistribution, type DistributionDeps } from './distribution.js';
import { registerRegistrationRoutes } from './registration-routes.js';
import type { RegistrationStore } from './registration-store.js';

export interface RaDeps extends DistributionDeps {
  store: RegistrationStore;
  /** Operator API bearer token (unset: operator routes answer 403). */
  operatorToken: TokenSource;
  /** Internal API token (unset: internal routes answer 403). */
  componentToken: TokenSource;
  /** Authorization interface deps (LAs / ACA reachable); absent: the routes are not mounted. */
  authorization?: AuthorizationDeps;
  /** CRL generation (crl/service.ts): the operator revocation routes; give the service as `crl` too to distribute. */
  revocation?: { service: CrlService; store: CrlStore };
}

export async function registerRa(app: FastifyInstance, deps: RaDeps): Promise<void> {
  await registerRegistrationRoutes(app, { store: deps.store, operatorToken: deps.operatorToken, componentToken: deps.componentToken });
  await registerDistribution(app, deps);
  if (deps.revocation) await registerRevocationRoutes(app, { crl: deps.revocation.service, store: deps.revocation.store, operatorToken: deps.operatorToken });
  if (deps.authorization) await registerAuthorization(app, deps.authorization);
}

export { registerDistribution, type DistributionDeps } from './distribution.js';
export { registerSuccessorEnrollment, successorWorker, SUCCESSOR_ENROLLMENT_PATH, SUCCESSOR_QUEUE, type SuccessorDeps } from './successor.js';
