#!/usr/bin/env node
// Entry point: the compiled CLI (npm ci runs `prepare`, which compiles it).
import('../dist/src/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    console.error('podwall: not built yet; run `npm ci` (or `npm run build`) in the checkout first');
    process.exit(2);
  }
  throw err;
});
