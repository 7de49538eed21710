export * from './canonical.js';
export * from './format.js';
export * from './render.js';
