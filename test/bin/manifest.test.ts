// bin/manifest.js: the oclif command manifest is written from dist/commands, kept while current, and rewritten when a
// command module or package.json is newer (a rebuild never runs on a stale manifest).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JS module of bin/
import { ensureManifest } from '../../bin/manifest.js';

const repo = new URL('../..', import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), 'scms-manifest-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('oclif manifest', () => {
  it('written with every command and its flags, kept while current, rewritten when package.json is newer', async () => {
    const root = join(base, 'pkg');
    mkdirSync(root);
    copyFileSync(join(repo, 'package.json'), join(root, 'package.json'));
    symlinkSync(join(repo, 'dist'), join(root, 'dist'));
    symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
    const file = join(root, 'oclif.manifest.json');

    expect(await ensureManifest(root)).toBe(true);
    const m = JSON.parse(readFileSync(file, 'utf8')) as { version: string; commands: Record<string, { flags: Record<string, unknown> }> };
    expect(m.version).toBe(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version);
    for (const id of ['serve:all', 'ee:simulate', 'provision:batch', 'manager:init', 'codec:decode', 'cert:show']) expect(Object.keys(m.commands)).toContain(id);
    expect(Object.keys(m.commands['ee:simulate']!.flags)).toContain('look-ahead');

    const first = statSync(file).mtimeMs;
    expect(await ensureManifest(root)).toBe(true);
    expect(statSync(file).mtimeMs).toBe(first); // current: not rewritten

    // The manifest older than package.json (as after an edit of package.json): rewritten.
    const old = new Date(statSync(join(root, 'package.json')).mtimeMs - 10_000);
    utimesSync(file, old, old);
    expect(await ensureManifest(root)).toBe(true);
    expect(statSync(file).mtimeMs).toBeGreaterThan(old.getTime() + 5_000);
  }, 60_000);

  it('a package that is not built: no manifest, oclif runs without one', async () => {
    const root = join(base, 'unbuilt');
    mkdirSync(root);
    copyFileSync(join(repo, 'package.json'), join(root, 'package.json'));
    expect(await ensureManifest(root)).toBe(false);
  });
});
