// A gateway process for one connectivity window that installs a software update and is killed
// (SIGKILL, as a power cut or systemd's restart would end it) the moment it restarts onto the new
// release: the parent then checks what a crash in the middle of applying leaves behind.
// Run by the test with the parent's execArgv (tap's TypeScript loader); settings in ATTACHE_JOBS_CHILD.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '@attache/cache';
import { ArtifactSource, HttpsFetcher, JobsAgent, ReleaseInstaller } from '@attache/jobs';
import { type BrokerLogin, SdkMqttChannel } from './jobs-emulator.js';

interface ChildSettings {
  login: BrokerLogin;
  thingName: string;
  dataDir: string;
  root: string;
  publicKeyPem: string;
  caPem: string;
}

const settings = JSON.parse(process.env.ATTACHE_JOBS_CHILD ?? '{}') as ChildSettings;
const staging = new FileStore({ path: join(settings.dataDir, 'jobs', 'artifacts') });
await mkdir(join(settings.dataDir, 'jobs'), { recursive: true });
await staging.open();
const channel = await SdkMqttChannel.connect(settings.login);
const agent = new JobsAgent({
  thingName: settings.thingName,
  channel,
  stateFile: join(settings.dataDir, 'jobs', 'state.json'),
  artifacts: new ArtifactSource({
    store: staging,
    fetcher: new HttpsFetcher({ ca: settings.caPem }),
  }),
  publicKeyPem: settings.publicKeyPem,
  handlers: {
    'software-update': new ReleaseInstaller({
      root: settings.root,
      restart: async () => {
        process.kill(process.pid, 'SIGKILL');
      },
      healthCheck: async () => ({ healthy: true }),
    }),
  },
});
await agent.runWindow();
process.exit(3); // not reached: the restart kills the process
