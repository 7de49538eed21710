#!/usr/bin/env node
import { execute } from '@oclif/core';
import { ensureManifest } from './manifest.js';

await ensureManifest(new URL('..', import.meta.url).pathname);
await execute({ dir: import.meta.url });
