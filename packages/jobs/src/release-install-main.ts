// The root release installer (attache-release-install@.service, one instance per connection to its
// socket; stdin and stdout are the connection): `node release-install.mjs --root /opt/attache
// --store /usr/local/lib/attache/releases --key /var/lib/attache/trust/jobs-signing.pem
// --provisioning /var/lib/attache/provisioning.json`. The image ships it bundled, outside every
// release (image-build/stage-app.sh): root never runs a release's code to install one.
import { parseArgs } from 'node:util';
import { installReleaseAsRoot, type ReleaseInstallAnswer, readOwnFile } from './root-release-install.js';

const say = (line: string) => process.stderr.write(`attache-release-install: ${line}\n`);

async function main(): Promise<ReleaseInstallAnswer> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string', default: '/opt/attache' },
      store: { type: 'string', default: '/usr/local/lib/attache/releases' },
      key: { type: 'string', default: '/var/lib/attache/trust/jobs-signing.pem' },
      provisioning: { type: 'string', default: '/var/lib/attache/provisioning.json' },
    },
  });
  let publicKeyPem: string;
  let thingName: string;
  let thingGroups: string[];
  try {
    publicKeyPem = await readOwnFile(values.key);
    const provisioned = JSON.parse(await readOwnFile(values.provisioning)) as {
      gatewayId?: unknown;
      thingGroups?: unknown;
    };
    if (typeof provisioned.gatewayId !== 'string' || provisioned.gatewayId === '') {
      throw new Error(`${values.provisioning} names no gateway (gatewayId)`);
    }
    thingName = provisioned.gatewayId;
    thingGroups = Array.isArray(provisioned.thingGroups)
      ? provisioned.thingGroups.filter((g): g is string => typeof g === 'string')
      : [];
  } catch (err) {
    const reason = `no software update without the root-owned job-signing key and provisioning record: ${(err as Error).message}`;
    say(reason);
    return { ok: false, code: 'ATTACHE_JOB_REFUSED', reason };
  }
  return installReleaseAsRoot(process.stdin, {
    root: values.root,
    store: values.store,
    publicKeyPem,
    thingName,
    thingGroups,
    log: say,
  });
}

main().then(
  (answer) => {
    process.exitCode = answer.ok ? 0 : 1;
    process.stdout.write(`${JSON.stringify(answer)}\n`, () => process.stdin.destroy());
  },
  (err: unknown) => {
    say(`failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
