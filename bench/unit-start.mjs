// How the appliance's systemd unit starts `attache run`: the Node flags of its ExecStart= and the
// MALLOC_* settings of its Environment=, so that benchmarks measure the service as it runs.
import { readFile } from 'node:fs/promises';

const unit = new URL('../image-build/overlay/usr/lib/systemd/system/attache.service', import.meta.url);

/**
 * This process's environment as the box gives it to the service, with `extra` on top: without
 * NODE_EXTRA_CA_CERTS, which a development machine may set and the box does not (every Node process
 * would parse those certificates and the whole root store at start: ~400 M instructions and several
 * MB of memory in each process of a benchmark).
 */
export function boxEnv(extra = {}) {
  const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
  return { ...env, ...extra };
}

/** `{ flags, env }`: e.g. `['--v8-pool-size=1', '--max-semi-space-size=4']`, `{ MALLOC_MMAP_THRESHOLD_: '131072' }`. */
export async function unitStart() {
  const text = await readFile(unit, 'utf8');
  const exec = /^ExecStart=\S*node (.*?) \S*bin\.js run/m.exec(text)?.[1] ?? '';
  const env = {};
  for (const line of text.matchAll(/^Environment=(.*)$/gm)) {
    for (const pair of line[1].split(' ')) {
      const [k, v] = pair.split('=');
      if (k.startsWith('MALLOC_')) env[k] = v;
    }
  }
  return { flags: exec.split(' ').filter(Boolean), env };
}
