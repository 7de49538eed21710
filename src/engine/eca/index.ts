export { Eca, EcaLimitCode, type EnrollmentIssued, type EnrollmentRefused, type EnrollmentResult } from './eca.js';
export { EcaStore, EcaStoreTx, ecaMigrations, ECA_COMPONENT, type EcaTables, type IssuedCertificate } from './store.js';
export { recoverSelfSignerKeys } from './canonical-key.js';
export type { EcaDeps, EcaIdentity, EcaOptions, DeviceRegistry, RegisteredDevice } from './deps.js';
export { registerEca, ENROLLMENT_CERTIFICATE_PATH } from './routes.js';
