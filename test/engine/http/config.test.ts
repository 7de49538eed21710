import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, describeServiceConfig, loadServiceConfig, requirePeer } from '../../../src/engine/config.js';

const dir = mkdtempSync(join(tmpdir(), 'scms-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = 'a-very-secret-operator-token';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('loadServiceConfig', () => {
  it('defaults: SQLite file per component in ./data, 127.0.0.1:8080, no tokens', () => {
    const c = loadServiceConfig(['ra', 'eca'], {}, { env: {}, cwd: '/srv/scms' });
    expect(c).toMatchObject({
      components: ['ra', 'eca'],
      trustDir: '/srv/scms/trust',
      dataDir: '/srv/scms/data',
      host: '127.0.0.1',
      port: 8080,
      databases: { ra: 'sqlite:/srv/scms/data/ra.db', eca: 'sqlite:/srv/scms/data/eca.db' },
      operatorToken: undefined,
      componentToken: undefined,
      logLevel: 'info',
      errorMode: 'fine',
    });
  });

  it('precedence: flags > env > file; file paths relative to the file, token from a file', () => {
    const tokenFile = join(dir, 'op-token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const cfg = join(dir, 'scms.json');
    writeFileSync(
      cfg,
      JSON.stringify({ dataDir: 'state', trustDir: 'trust', port: 9000, host: '0.0.0.0', logLevel: 'debug', operatorTokenFile: 'op-token', peers: { aca: 'http://aca:8080/' } }),
    );
    const fromFile = loadServiceConfig(['ra'], { config: cfg }, { env: {}, cwd: '/elsewhere' });
    expect(fromFile).toMatchObject({ dataDir: join(dir, 'state'), trustDir: join(dir, 'trust'), port: 9000, host: '0.0.0.0', logLevel: 'debug', operatorToken: TOKEN, peers: { aca: 'http://aca:8080' } });
    expect(fromFile.databases.ra).toBe(`sqlite:${join(dir, 'state', 'ra.db')}`);

    const env = { SCMS_CONFIG: cfg, SCMS_PORT: '9100', SCMS_OPERATOR_TOKEN: 'env-token-env-token-env', SCMS_PEER_ACA: 'https://aca.example' };
    const withEnv = loadServiceConfig(['ra'], {}, { env, cwd: '/elsewhere' });
    expect(withEnv).toMatchObject({ port: 9100, operatorToken: 'env-token-env-token-env', peers: { aca: 'https://aca.example' } });

    const withFlags = loadServiceConfig(['ra'], { port: '0', operatorToken: 'flag-token-flag-token', peer: ['aca=http://127.0.0.1:7000'] }, { env, cwd: '/elsewhere' });
    expect(withFlags).toMatchObject({ port: 0, operatorToken: 'flag-token-flag-token', peers: { aca: 'http://127.0.0.1:7000' } });
    expect(requirePeer(withFlags, 'aca')).toBe('http://127.0.0.1:7000');
    expect(() => requirePeer(withFlags, 'la1')).toThrow(/--peer la1=URL or SCMS_PEER_LA1/);
  });

  it('a shared PostgreSQL URL gives each component its own schema; passwords are masked in descriptions', () => {
    const c = loadServiceConfig(['ra', 'eca'], { db: 'postgres://scms:hunter2@db:5432/scms', operatorToken: TOKEN }, { env: {} });
    expect(c.databases).toEqual({ ra: 'postgres://scms:hunter2@db:5432/scms?schema=ra', eca: 'postgres://scms:hunter2@db:5432/scms?schema=eca' });
    const d = JSON.stringify(describeServiceConfig(c));
    expect(d).not.toContain('hunter2');
    expect(d).not.toContain(TOKEN);
    expect(d).toContain('"operatorToken":"set"');
    const own = loadServiceConfig(['ra'], {}, { env: { SCMS_DB_RA: 'postgres://db/x?schema=ra_prod' } });
    expect(own.databases.ra).toBe('postgres://db/x?schema=ra_prod');
  });

  it('collects every problem with a clear message', () => {
    const issues = issuesOf(() =>
      loadServiceConfig(['ra', 'eca'], { port: '70000', logLevel: 'loud', errorMode: 'medium', operatorToken: 'short', db: 'sqlite:/tmp/one.db', peer: ['eca', 'xx=http://a', 'la1=ftp://x'] }, { env: {} }),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/invalid port "70000"/),
        expect.stringMatching(/invalid log level "loud"/),
        expect.stringMatching(/invalid error mode "medium"/),
        expect.stringMatching(/operator token too short/),
        expect.stringMatching(/one SQLite database cannot hold several components/),
        expect.stringMatching(/--peer "eca": use name=url/),
        expect.stringMatching(/unknown component "xx"/),
        expect.stringMatching(/invalid URL for la1/),
      ]),
    );
    expect(issuesOf(() => loadServiceConfig(['ra', 'eca'], {}, { env: { SCMS_DB_RA: 'postgres://h/d?schema=s', SCMS_DB_ECA: 'postgres://h/d?schema=s' } }))).toEqual([
      expect.stringMatching(/ra and eca would share the database/),
    ]);
  });

  it('the JSON file may not hold secrets or unknown keys', () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ operatorToken: TOKEN, prot: 80, port: '80' }));
    const issues = issuesOf(() => loadServiceConfig(['ra'], { config: cfg }, { env: {} }));
    expect(issues).toEqual([
      expect.stringMatching(/operatorToken must not be in the file/),
      expect.stringMatching(/unknown key "prot"/),
      expect.stringMatching(/port must be a number/),
    ]);
    writeFileSync(cfg, '{ not json');
    expect(issuesOf(() => loadServiceConfig(['ra'], { config: cfg }, { env: {} }))[0]).toMatch(/config file .*bad\.json/);
    expect(issuesOf(() => loadServiceConfig(['ra'], { operatorTokenFile: join(dir, 'missing') }, { env: {} }))[0]).toMatch(/operator token file: ENOENT/);
  });
});
