import { Flags } from '@oclif/core';
import { ScmsCommand } from '../../cli/base.js';
import { ConfigError } from '../../engine/config.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../engine/http/logger.js';
import { serve, type ServeTarget } from '../../engine/serve.js';

/** Flags shared by `scms serve ra|eca|all` (environment fallbacks in src/engine/config.ts). */
export const serveFlags = {
  trust: Flags.string({ description: 'trust directory written by `scms manager init` [env SCMS_TRUST_DIR; default ./trust]' }),
  data: Flags.string({ description: 'data directory: one SQLite file per component [env SCMS_DATA_DIR; default ./data]' }),
  host: Flags.string({ description: 'address to listen on [env SCMS_HOST; default 127.0.0.1]' }),
  port: Flags.integer({ description: 'port to listen on, 0 = any free port [env SCMS_PORT; default 8080]', min: 0, max: 65535 }),
  'operator-token': Flags.string({ description: 'bearer token of the operator API (device registration) [env SCMS_OPERATOR_TOKEN]' }),
  'operator-token-file': Flags.string({ description: 'file holding the operator token [env SCMS_OPERATOR_TOKEN_FILE]' }),
  'component-token': Flags.string({ description: 'shared token of the internal APIs between components [env SCMS_COMPONENT_TOKEN]' }),
  'component-token-file': Flags.string({ description: 'file holding the component token [env SCMS_COMPONENT_TOKEN_FILE]' }),
  db: Flags.string({ description: 'database URL (postgres://... or sqlite:FILE) instead of SQLite files in --data [env SCMS_DB]' }),
  peer: Flags.string({ description: 'URL of a component run elsewhere, name=url (repeatable) [env SCMS_PEER_<NAME>]', multiple: true }),
  config: Flags.string({ description: 'JSON configuration file [env SCMS_CONFIG]' }),
  'log-level': Flags.string({ description: 'fatal, error, warn, info, debug, trace or silent [env SCMS_LOG_LEVEL; default info]' }),
};

type ServeFlagValues = { [K in keyof typeof serveFlags]?: unknown } & { json?: boolean };

/** A valid level or 'info' (an invalid one is reported by the configuration check). */
function logLevelOf(v: unknown): LogLevel {
  return (LOG_LEVELS as readonly unknown[]).includes(v) ? (v as LogLevel) : 'info';
}

/** Runs a serve target for a command; returns what --json prints (the bound address). */
export async function runServe(cmd: ScmsCommand & { failWith(m: string, exit: number): never }, target: ServeTarget, flags: ServeFlagValues) {
  const json = flags.json === true;
  try {
    const result = await serve(target, {
      flags: {
        trustDir: flags.trust as string | undefined,
        dataDir: flags.data as string | undefined,
        host: flags.host as string | undefined,
        port: flags.port as number | undefined,
        operatorToken: flags['operator-token'] as string | undefined,
        operatorTokenFile: flags['operator-token-file'] as string | undefined,
        componentToken: flags['component-token'] as string | undefined,
        componentTokenFile: flags['component-token-file'] as string | undefined,
        db: flags.db as string | undefined,
        peer: flags.peer as string[] | undefined,
        config: flags.config as string | undefined,
        logLevel: flags['log-level'] as string | undefined,
      },
      // With --json stdout carries only the address; the logs go to stderr.
      ...(json ? { logger: createLogger({ level: logLevelOf(flags['log-level'] ?? process.env.SCMS_LOG_LEVEL), destination: process.stderr }) } : {}),
    });
    const out = { url: result.address.url, host: result.address.host, port: result.address.port, components: result.config.components, warnings: result.warnings };
    if (!json) {
      cmd.log(`scms serve ${target}: ${out.components.join(' + ')} listening on ${out.url} (Ctrl-C to stop)`);
      for (const w of result.warnings) cmd.log(`warning: ${w}`);
    }
    return out;
  } catch (e) {
    if (e instanceof ConfigError) cmd.failWith(e.message, 2);
    throw e;
  }
}

export default class ServeAll extends ScmsCommand {
  static override description =
    'Run the SCMS components in one process on one port: the RA (device registration, trust distribution: CTL, CCF, ' +
    'composite CRL, CA/RA certificates, policy files, signed info status) and the ECA (POST /v3/enrollment-certificate), ' +
    'with SQLite files in the data directory. Keys come from the trust directory\'s keystore (SCMS_KEYSTORE_PASSPHRASE, ' +
    'or SCMS_PKCS11_PIN for PKCS#11). Stops gracefully on SIGINT/SIGTERM.';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> serve all --trust ./scms --data ./data',
    '<%= config.bin %> serve all --trust ./scms --data ./data --port 0 --json',
    'SCMS_OPERATOR_TOKEN=$(openssl rand -hex 24) <%= config.bin %> serve all --trust ./scms --host 0.0.0.0 --port 8080',
  ];
  static override flags = serveFlags;

  failWith(message: string, exit: number): never {
    return this.fail(message, exit);
  }

  async run() {
    const { flags } = await this.parse(ServeAll);
    return runServe(this, 'all', flags);
  }
}
