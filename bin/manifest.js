// oclif command manifest (oclif.manifest.json at the package root). Without one, oclif imports every command module
// on each run just to list the commands (about 1 s of CPU: the services, the keystores, the codec); with one it
// imports only the command that runs. The manifest is derived from dist/commands: it is rewritten whenever a
// command module (or package.json) is newer than it, so a rebuild never leaves a stale one behind.
import { readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MANIFEST = 'oclif.manifest.json';

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.js')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Makes `<root>/oclif.manifest.json` current; returns false (oclif then works without one) when it cannot. */
export async function ensureManifest(root) {
  const file = join(root, MANIFEST);
  let newest;
  try {
    newest = Math.max(newestMtime(join(root, 'dist', 'commands')), statSync(join(root, 'package.json')).mtimeMs);
  } catch {
    return false; // not built
  }
  try {
    if (statSync(file).mtimeMs >= newest) return true;
  } catch {
    // no manifest yet
  }
  try {
    const { Plugin } = await import('@oclif/core');
    const plugin = new Plugin({ root, isRoot: true, ignoreManifest: true, errorOnManifestCreate: true });
    await plugin.load();
    // Written whole and renamed into place: concurrent runs each write their own and the last rename wins.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(plugin.manifest));
    renameSync(tmp, file);
    return true;
  } catch {
    return false;
  }
}
