#!/usr/bin/env node
// make image-test: boots the built image in qemu-system-aarch64 -M virt (TCG) and tests the appliance
// end to end. Prints one `ok`/`not ok` line per check and the measured figures; exits 1 on a failure.
//   node image-build/boot-test.mjs [IMAGE]     (default: the newest image-build/out/attache-*-arm64.img)
// The host plays the technician and the cloud: a provisioning bundle goes onto the boot partition
// (mcopy, no mount), a pty-backed FTDI adapter is plugged in through the QEMU monitor after boot, a
// local mosquitto with mutual TLS stands in for AWS IoT Core (reached through a guestfwd: the user
// network is restricted to it and to the ssh port forward). Every wait reads the console, the broker
// or the guest's answers, with a deadline; nothing sleeps blindly.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  createTestPki,
  getFreePort,
  LineDeviceSimulator,
  openPtyPair,
  profileFormat,
  startMosquitto,
  subscribeTopic,
} from '@attache/devkit';

/** Writes a line to stdout (a command-line tool: its output is the report). */
const say = (line) => process.stdout.write(`${line}\n`);

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')).version;
const thingName = 'attache-qemu';
const brokerName = 'broker.attache.test';
const brokerGuestIp = '10.0.2.100';
const adapterSerial = 'ATT0001';
const stableName = `/dev/attache/ftdi-${adapterSerial}-if00`;
const guestConfig = '/var/lib/attache/config/config.json';
// Added to firewall.sshFrom on the box (TEST-NET-1: nothing there) to see the ruleset follow the config.
const addedSshFrom = '192.0.2.0/24';
const started = Date.now();
const deadline = started + 20 * 60_000;
const results = [];
// Terminal colour and cursor sequences in systemd's status lines.
const ansiEscape = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g');

function findImage() {
  const out = join(here, 'out');
  const images = readdirSync(out)
    .filter((f) => /^attache-.*-arm64\.img$/.test(f))
    .map((f) => join(out, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (images.length === 0) throw new Error(`no image in ${out}: run make image first`);
  return images[0];
}

function check(name, ok, detail = '') {
  results.push(ok);
  say(`${ok ? 'ok' : 'not ok'} ${results.length} - ${name}${detail ? ` (${detail})` : ''}`);
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** The guest's serial console: every line is kept; waitFor resolves on the first (new) match. */
class Console {
  lines = [];
  #waiters = new Set();
  constructor(stream, logFile) {
    const rl = createInterface({ input: stream });
    rl.on('line', (raw) => {
      const line = raw.replace(ansiEscape, '');
      this.lines.push({ at: Date.now(), line });
      writeFileSync(logFile, `${line}\n`, { flag: 'a' });
      for (const w of this.#waiters) w();
    });
  }
  waitFor(pattern, timeoutMs, from = 0) {
    return new Promise((resolveWait, reject) => {
      const test = () => {
        const hit = this.lines.slice(from).find((l) => pattern.test(l.line));
        if (!hit) return;
        cleanup();
        resolveWait(hit);
      };
      const timer = setTimeout(
        () => {
          cleanup();
          reject(new Error(`console: no line matching ${pattern} within ${seconds(timeoutMs)}`));
        },
        Math.min(timeoutMs, deadline - Date.now()),
      );
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(test);
      };
      this.#waiters.add(test);
      test();
    });
  }
}

/** HMP over the monitor's unix socket: one command, resolves with its output. */
async function monitor(socketPath, command) {
  const sock = connect(socketPath);
  await once(sock, 'connect');
  let text = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    text += d;
  });
  const prompt = async () => {
    while (!text.endsWith('(qemu) ')) await once(sock, 'data');
  };
  await prompt();
  text = '';
  sock.write(`${command}\n`);
  await prompt();
  sock.end();
  // HMP echoes the command with cursor movements; the answer is what follows the echoed line.
  return text.replace('(qemu) ', '').split('\n').slice(1).join('\n').trim();
}

async function main() {
  const image = resolve(process.argv[2] ?? findImage());
  const work = mkdtempSync(join(tmpdir(), 'attache-image-test-'));
  const cleanups = [];
  try {
    // The PKI: the devkit's CA and client certificate; a server certificate also valid for the name
    // the guest uses (resolved through its /etc/hosts to the guestfwd address).
    const pki = await createTestPki(join(work, 'pki'), { thingName });
    const serverCertFile = join(work, 'pki', 'server-guest.crt');
    writeFileSync(
      join(work, 'pki', 'server-guest.ext'),
      `subjectAltName=DNS:localhost,DNS:${brokerName},IP:127.0.0.1,IP:${brokerGuestIp}\nextendedKeyUsage=serverAuth\n`,
    );
    await run('openssl', [
      'req',
      '-new',
      '-key',
      pki.serverKeyFile,
      '-subj',
      `/CN=${brokerName}`,
      '-out',
      join(work, 'pki', 'server-guest.csr'),
    ]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      join(work, 'pki', 'server-guest.csr'),
      '-CA',
      pki.caFile,
      '-CAkey',
      join(work, 'pki', 'ca.key'),
      '-CAcreateserial',
      '-days',
      '30',
      '-sha256',
      '-extfile',
      join(work, 'pki', 'server-guest.ext'),
      '-out',
      serverCertFile,
    ]);
    const broker = await startMosquitto({ dir: join(work, 'broker'), pki: { ...pki, serverCertFile } });
    cleanups.push(() => broker.stop());
    const topic = `dt/attache/${thingName}/telemetry`;
    const dashboard = await subscribeTopic({ broker, pki, topic });
    cleanups.push(() => dashboard.stop());

    // The disk: a sparse copy of the image with the provisioning bundle on its boot partition.
    const disk = join(work, 'disk.img');
    await run('cp', ['--sparse=always', image, disk]);
    const { stdout: table } = await run('sfdisk', ['--json', disk]);
    const parts = JSON.parse(table).partitiontable.partitions;
    const fat = `${disk}@@${parts[0].start * 512}`;
    const bundle = join(work, 'attache');
    await run('mkdir', ['-p', bundle]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'id_ed25519')]);
    await run('cp', [join(work, 'id_ed25519.pub'), join(bundle, 'authorized_keys')]);
    await run('cp', [pki.clientCertFile, join(bundle, 'device.crt')]);
    await run('cp', [pki.clientKeyFile, join(bundle, 'device.key')]);
    await run('cp', [pki.caFile, join(bundle, 'ca.pem')]);
    const config = {
      version: 1,
      gateway: { id: thingName },
      log: { level: 'info' },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: stableName, baudRate: 9600, delimiter: '\r\n' },
          format: profileFormat('nonin'),
        },
      ],
      uplink: {
        endpoint: brokerName,
        port: 8883,
        certFile: 'device.crt',
        keyFile: 'device.key',
        caFile: 'ca.pem',
        window: { everySeconds: 0, maxDurationSeconds: 120 },
      },
      // QEMU's user networking: the host's ssh through the hostfwd arrives from 10.0.2.2.
      firewall: { sshFrom: ['10.0.2.0/24'] },
      // The page on the USB gadget link (QEMU has none: it waits for usb0); provisioning then leaves
      // the page's address and the box secret on the card.
      technician: { listen: ['usb0'] },
    };
    writeFileSync(join(bundle, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await run('mcopy', ['-s', '-i', fat, bundle, '::/']);
    const kernel = (await run('mdir', ['-b', '-i', fat, '::/'])).stdout
      .split('\n')
      .map((l) => l.trim().replace(/^::\//, ''));
    const vmlinuz = kernel.find((f) => f.startsWith('vmlinuz-'));
    const initrd = kernel.find((f) => f.startsWith('initrd.img-'));
    await run('mcopy', ['-n', '-i', fat, `::/${vmlinuz}`, `::/${initrd}`, work]);

    const sshPort = await getFreePort();
    const monitorSocket = join(work, 'monitor.sock');
    const qemuArgs = [
      '-M',
      'virt',
      '-cpu',
      'cortex-a72',
      '-smp',
      '2',
      '-m',
      '1024',
      '-display',
      'none',
      '-kernel',
      join(work, vmlinuz),
      '-initrd',
      join(work, initrd),
      '-append',
      'console=ttyAMA0 root=LABEL=RASPIROOT rw net.ifnames=0',
      '-drive',
      `file=${disk},format=raw,if=virtio`,
      '-netdev',
      `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22,guestfwd=tcp:${brokerGuestIp}:8883-cmd:socat - TCP:127.0.0.1:${broker.port}`,
      '-device',
      'virtio-net-pci,netdev=n0,romfile=',
      '-device',
      'qemu-xhci,id=xhci',
      '-monitor',
      `unix:${monitorSocket},server=on,wait=off`,
      '-serial',
      'stdio',
    ];
    const bootAt = Date.now();
    const qemu = spawn('qemu-system-aarch64', qemuArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => {
      if (qemu.exitCode === null) {
        qemu.kill('SIGKILL');
        await once(qemu, 'exit');
      }
    });
    const guestConsole = new Console(qemu.stdout, join(work, 'console.log'));
    say(`# image ${image}, work dir ${work}, console log ${join(work, 'console.log')}`);

    const ssh = async (command) => {
      const { stdout } = await run(
        'ssh',
        [
          '-i',
          join(work, 'id_ed25519'),
          '-p',
          String(sshPort),
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'LogLevel=ERROR',
          '-o',
          'ConnectTimeout=10',
          'root@127.0.0.1',
          command,
        ],
        { timeout: 120_000, maxBuffer: 1 << 22 },
      );
      return stdout;
    };
    const sshReady = async () => {
      for (;;) {
        try {
          return await ssh('true');
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await guestConsole.waitFor(/./, 15_000, guestConsole.lines.length).catch(() => undefined);
        }
      }
    };
    // The test's own readings of the gateway run as attache: run as root, every command that switches
    // to the data directory's owner fails on the image (Debian's Node 20 on its system libuv refuses
    // setuid/setgroups: CVE-2024-22017); the root view is checked once below, as a technician sees it.
    const status = async () => JSON.parse(await ssh('cd / && runuser -u attache -- attache status --json'));
    // The loaded table, or nft's message when there is none.
    const ruleset = () => ssh('nft list table inet attache 2>&1; true');
    // attache-firewall.service runs as attache (the release is attache's to change: no code of it runs
    // as root): its last run succeeded and left the ruleset it made, attache's, 0600.
    const firewallRun = async () =>
      (
        await ssh(
          'systemctl is-active attache-firewall.service; systemctl show -p User --value attache-firewall.service; stat -c "%U %a" /run/attache-firewall/attache.nft 2>&1; true',
        )
      ).trim();
    const firewallMadeByAttache = (run) => run === 'active\nattache\nattache 600';
    // What the unit said, where a check of the firewall failed.
    const firewallJournal = async () =>
      say(
        (
          await ssh(
            'systemctl status --no-pager attache-firewall.path attache-firewall-reload.service attache-firewall.service 2>&1; journalctl -b --no-pager -n 30 -u attache-firewall-reload -u attache-firewall 2>&1; true',
          ).catch((err) => err.message)
        )
          .trimEnd()
          .replace(/^/gm, '#   '),
      );
    // Where a boot's time went: kernel / userspace, and the chain that delayed the service.
    const bootAnalysis = async () => {
      const analysis = await ssh(
        'systemd-analyze time; systemd-analyze critical-chain --no-pager attache.service; systemd-analyze blame --no-pager | head -12',
      ).catch((err) => `systemd-analyze failed: ${err.message}`);
      say(analysis.trimEnd().replace(/^/gm, '#   '));
    };
    // Resolves with the guest's uptime (s) when attache.service became active (after READY=1) in a
    // boot other than `previousBoot`.
    const serviceReady = async (previousBoot) => {
      for (;;) {
        const out = await ssh(
          'cat /proc/sys/kernel/random/boot_id; systemctl show -p ActiveState -p ActiveEnterTimestampMonotonic attache',
        ).catch(() => '');
        const [bootId] = out.split('\n');
        if (bootId && bootId !== previousBoot && /ActiveState=active/.test(out)) {
          return { bootId, uptime: Number(/ActiveEnterTimestampMonotonic=(\d+)/.exec(out)?.[1]) / 1e6 };
        }
        if (Date.now() > deadline) throw new Error('attache.service did not become active');
        await guestConsole.waitFor(/./, 5000, guestConsole.lines.length).catch(() => undefined);
      }
    };
    // The guest has no network time here (restrict=on): set its clock as timesyncd would in a window.
    const setClock = () => ssh(`date -u -s @${Math.floor(Date.now() / 1000)} >/dev/null`);

    // 1. Boot, provisioning, service ready.
    const provisioned = await guestConsole.waitFor(/attache-provision: (OK|FAILED|NOT PROVISIONED)/, 300_000);
    check(
      'first boot provisioned from the boot partition',
      /: OK/.test(provisioned.line),
      provisioned.line.trim(),
    );
    await sshReady();
    check('ssh with the provisioned key only', true);
    const ready = await serviceReady('');
    const bootToReady = ready.uptime * 1000;
    check(
      'attache.service reached ready (Type=notify)',
      true,
      `${seconds(bootToReady)} of guest uptime; ${seconds(Date.now() - bootAt)} wall since QEMU started`,
    );
    await bootAnalysis();
    // The image's own systemd scores the units (test/image.test.ts does it offline with the host's).
    const exposure = await ssh(
      'for u in attache attache-console attache-code-cache attache-code-cache-refresh attache-provision attache-hotplug@ttyUSB0 attache-ssh-hostkeys attache-firewall attache-firewall-reload; do systemd-analyze security --no-pager $u.service | tail -1; done',
    );
    const scores = Object.fromEntries(
      [...exposure.matchAll(/exposure level for ([\w@-]+)\.service: ([\d.]+)/g)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    check(
      'systemd-analyze security: attache, attache-console, attache-code-cache, attache-code-cache-refresh and attache-firewall <= 2.0, root helpers <= 5.0',
      scores.attache <= 2 &&
        scores['attache-console'] <= 2 &&
        scores['attache-code-cache'] <= 2 &&
        scores['attache-code-cache-refresh'] <= 2 &&
        scores['attache-firewall'] <= 2 &&
        Object.keys(scores).length === 9 &&
        Object.values(scores).every((v) => v <= 5),
      JSON.stringify(scores),
    );
    const firewall = await ruleset();
    const bootRun = await firewallRun();
    check(
      'the firewall is loaded: SSH only from the management network',
      /tcp dport 22 ip saddr 10\.0\.2\.0\/24 accept/.test(firewall),
      firewall.trim().split('\n')[0],
    );
    check(
      'attache-firewall.service made it as attache (the ruleset attache 0600), nft loaded it',
      firewallMadeByAttache(bootRun),
      bootRun.replace(/\n/g, '; '),
    );
    if (!/tcp dport 22 ip saddr 10\.0\.2\.0\/24 accept/.test(firewall) || !firewallMadeByAttache(bootRun)) {
      await firewallJournal();
    }
    // Short commands start from the CLI's bundle with the code cache the image build made (under
    // qemu-user, by the image's Node): packages/cli/src/compiled-start.ts, image-build/README.md.
    const startedHow = await ssh(
      'NODE_DEBUG=attache-start attache config validate --config /var/lib/attache/config/config.json 2>&1 >/dev/null | grep ATTACHE-START; stat -c "%U %a %n" /opt/attache/current/packages/cli/dist/*.cache; true',
    );
    check(
      "the CLI starts from its bundle with the image's code cache (four caches, root's, 0644)",
      /bundle, code cache accepted/.test(startedHow) && (startedHow.match(/^root 644 /gm) ?? []).length === 4,
      startedHow.trim().replace(/\n/g, '; '),
    );
    // After `apt upgrade` of nodejs the caches name the old Node: apt's DPkg::Post-Invoke starts
    // attache-code-cache-refresh.service, which makes them again, as root, for the image's release
    // (root's alone, outside /opt/attache). Simulated by caches that name another Node, then the unit
    // started as the hook starts it (not waited for) and watched until its job is done (slow under TCG).
    const cacheDir = '/opt/attache/current/packages/cli/dist';
    const startLine = `NODE_DEBUG=attache-start attache config validate --config ${guestConfig} 2>&1 >/dev/null | grep ATTACHE-START`;
    const stale = await ssh(
      [
        'apt-config dump | grep -c "attache-code-cache-refresh.service"',
        'readlink -f /opt/attache/current',
        `sed -i '1s/ node-[0-9.]* / node-0.0.0 /' ${cacheDir}/*.cache`,
        startLine,
        'systemctl --no-block start attache-code-cache-refresh.service',
        'true',
      ].join('; '),
    );
    const refreshing = () =>
      ssh(
        'systemctl list-jobs --no-legend attache-code-cache-refresh.service; systemctl is-active attache-code-cache-refresh.service; true',
      ).then((out) => /attache-code-cache-refresh|^activating/m.test(out));
    for (const until = Date.now() + 600_000; (await refreshing()) && Date.now() < until; )
      await guestConsole.waitFor(/./, 5000, guestConsole.lines.length).catch(() => undefined);
    const refreshed = await ssh(
      [
        // This run's lines only (the unit ran at boot too): its invocation's journal.
        'journalctl -b -o cat --no-pager _SYSTEMD_INVOCATION_ID="$(systemctl show -p InvocationID --value attache-code-cache-refresh.service)"',
        startLine,
        `stat -c "%U %a %n" ${cacheDir}/*.cache`,
        'true',
      ].join('; '),
    );
    check(
      "after a Node upgrade apt's hook makes the image's code cache again, as root (attache-code-cache-refresh)",
      /^1$/m.test(stale) &&
        /^\/usr\/local\/lib\/attache\/releases\/[^/\n]+$/m.test(stale) &&
        /ES modules: .*made by another Node/.test(stale) &&
        /is root's alone: making its code cache/.test(refreshed) &&
        /bundle, code cache accepted/.test(refreshed) &&
        (refreshed.match(/^root 644 /gm) ?? []).length === 4,
      `${stale}${refreshed}`.trim().replace(/\n/g, '; '),
    );
    await setClock();
    const stateFile = JSON.parse(await ssh('cat /var/lib/attache/provisioning.json'));
    check(
      'state file says provisioned',
      stateFile.state === 'provisioned' && stateFile.gatewayId === thingName,
      JSON.stringify(stateFile),
    );
    const card = await ssh(
      'grep -c "^Box secret: " /boot/firmware/attache-RESULT.txt; grep -q "^Box secret: $(attache technician secret)$" /boot/firmware/attache-RESULT.txt && echo same; stat -c "%U %a" /var/lib/attache/gateway/technician/secret; true',
    );
    check(
      'the box secret is on the card (attache-RESULT.txt), made as attache, the same the box gives',
      /^1\nsame\nattache 600$/.test(card.trim()),
      card.trim().replace(/\n/g, '; '),
    );
    const creds = await ssh(
      'stat -c "%a %U %n" /var/lib/attache/credentials /var/lib/attache/credentials/*; ls /boot/firmware/attache 2>&1 || true',
    );
    check(
      'credentials root-only on the data partition, bundle gone from the boot partition',
      /^700 root/m.test(creds) && /600 root .*device\.key/.test(creds) && /No such file/.test(creds),
      creds.replace(/\n/g, '; '),
    );
    const identity = await ssh(
      'cat /etc/machine-id; ls /etc/ssh/ssh_host_ed25519_key; findmnt -no SOURCE,OPTIONS /var/lib/attache',
    );
    check(
      'machine-id and ssh host keys made on this box; data partition mounted',
      /^[0-9a-f]{32}$/m.test(identity) && /ATTACHEDATA|vda3/.test(identity),
      identity.replace(/\n/g, '; '),
    );
    const verify = await ssh(
      'systemd-analyze verify /usr/lib/systemd/system/attache*.service 2>&1; echo "rc=$?"',
    );
    check(
      'systemd-analyze verify of the installed units (systemd of the image)',
      verify.trim() === 'rc=0',
      verify.trim().replace(/\n/g, '; '),
    );
    const mainPid = (await ssh('systemctl show -p MainPID --value attache')).trim();
    await ssh(`echo "${brokerGuestIp} ${brokerName}" >> /etc/hosts`);

    // The release: the esbuild bundle stage-app.sh installed, run by the units and the technician's shell.
    const release = await ssh(
      [
        'attache --version',
        'readlink -f /opt/attache/current',
        'ls /opt/attache/current/packages',
        'ls -d /opt/attache/current/node_modules/@attache 2>&1 || true',
        `tr '\\0' ' ' < /proc/${mainPid}/cmdline; echo`,
        `tr '\\0' '\\n' < /proc/${mainPid}/environ | grep '^MALLOC_' || true`,
      ].join('; '),
    );
    const [versionLine, currentDir, shippedPackages, workspaceModules, cmdline, malloc] = release.split('\n');
    check(
      "attache --version on the box is the release the image was built from (root's, outside /opt/attache)",
      versionLine === version && currentDir === `/usr/local/lib/attache/releases/${version}`,
      `${versionLine}, current -> ${currentDir}`,
    );
    check(
      'the release is the bundle: packages/cli only, no workspace packages in node_modules',
      shippedPackages === 'cli' && /No such file/.test(workspaceModules),
      `packages: ${shippedPackages}; ${workspaceModules}`,
    );
    check(
      "attache.service runs the bundle with the unit's Node flags and malloc setting",
      cmdline.includes('/opt/attache/current/packages/cli/dist/bin.js run') &&
        cmdline.includes('--max-semi-space-size=4') &&
        cmdline.includes('--no-sparkplug') &&
        malloc === 'MALLOC_MMAP_THRESHOLD_=131072',
      `${cmdline.trim()}; ${malloc}`,
    );
    // Software updates: the releases are root's, the root installer listens for attache only.
    const installRoot = (
      await ssh(
        'stat -c "%U %a" /opt/attache /opt/attache/releases /usr/local/lib/attache/releases; stat -L -c "%U:%G %a" /run/attache-release-install.sock; systemctl is-active attache-release-install.socket; runuser -u attache -- touch /opt/attache/x 2>&1 | grep -c "Permission denied"; true',
      )
    ).trim();
    check(
      "the install root is root's, and attache may only ask the root release installer",
      installRoot === 'root 755\nroot 755\nroot 755\nroot:attache 660\nactive\n1',
      installRoot.replace(/\n/g, '; '),
    );
    const statusText = await ssh('attache status 2>&1').catch((err) => err.message);
    check(
      'attache status (text) on the box reaches the running gateway',
      statusText.startsWith(`gateway ${thingName}: running since`) && statusText.includes('spo2-bed1'),
      statusText.trim().split('\n').slice(0, 4).join('; '),
    );

    // 2. Plug the USB-serial adapter in, as a technician would.
    const pty = await openPtyPair(join(work, 'pty'));
    cleanups.push(() => pty.close());
    const ptyPath = (await run('readlink', ['-f', pty.gatewayPath])).stdout.trim();
    const mark = guestConsole.lines.length;
    const plugAt = Date.now();
    const plugged = [
      await monitor(monitorSocket, `chardev-add serial,id=ser0,path=${ptyPath}`),
      await monitor(
        monitorSocket,
        `device_add usb-serial,id=usbser0,bus=xhci.0,chardev=ser0,serial=${adapterSerial}`,
      ),
    ].join(' ');
    check(
      'QEMU monitor: chardev-add and device_add of the usb-serial adapter',
      !/error/i.test(plugged),
      plugged,
    );
    const detected = await guestConsole.waitFor(/serial adapter \/dev\/ttyUSB\d+ detected/, 120_000, mark);
    check(
      'the plugged adapter got its stable name',
      detected.line.includes(stableName),
      detected.line.trim(),
    );
    const rescan = await guestConsole
      .waitFor(
        /gateway retried the ports of|no adapter was waiting for a port|the gateway is not running|attache: .*(error|invalid)/i,
        60_000,
        mark,
      )
      .catch(() => ({ line: 'no answer from attache ports --rescan on the console within 60 s' }));
    // Either answer means the unit reached the gateway: the adapter's own back-off retry may open the
    // new port before the rescan arrives (seen once in a boot of 2026-12-05), and then none waits.
    check(
      'the hot-plug unit told the gateway (attache ports --rescan)',
      /gateway retried the ports of spo2-bed1|no adapter was waiting for a port/.test(rescan.line),
      rescan.line.trim(),
    );
    const link = await ssh(`stat -L -c '%G %a' ${stableName}; readlink -f ${stableName}`);
    check('stable name is a dialout 0660 tty', /^dialout 660/.test(link), link.replace(/\n/g, '; '));
    const simulator = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', intervalMs: 500 });
    await simulator.open();
    cleanups.push(() => simulator.close());
    simulator.start();
    let adapter;
    for (;;) {
      adapter = (await status()).adapters.find((a) => a.deviceId === 'spo2-bed1');
      if (adapter && adapter.stored > 0) break;
      if (Date.now() - plugAt > 120_000) break;
      await guestConsole.waitFor(/./, 5000, guestConsole.lines.length).catch(() => undefined);
    }
    check(
      'readings stored without a service restart',
      adapter?.stored > 0 && (await ssh('systemctl show -p MainPID --value attache')).trim() === mainPid,
      `${adapter?.stored} stored, ${seconds(Date.now() - plugAt)} after the plug, MainPID ${mainPid}`,
    );

    // 3. attache sync: the backlog reaches the broker.
    const syncOut = await ssh('cd / && runuser -u attache -- attache sync --json || true');
    const batches = await dashboard.waitFor(1, 60_000).catch(() => dashboard.messages);
    check(
      'a reading reached the broker after attache sync',
      batches.length > 0 && batches[0].toString().includes('spo2-bed1'),
      syncOut.trim().slice(0, 300),
    );
    const rss = (await ssh('ps -o rss= -p $(systemctl show -p MainPID --value attache)')).trim();
    say(`# RSS of the service: ${Math.round(Number(rss) / 1024)} MB`);

    // 4. The firewall follows a replaced config at once: the config is rewritten as a config-update
    // job writes it (as attache: a new file fsynced and renamed over the old), and
    // attache-firewall.path + attache-firewall-reload.service load the new table.
    const sshRule = (table) =>
      table
        .split('\n')
        .find((l) => /tcp dport 22 /.test(l))
        ?.trim() ?? '(no SSH rule)';
    const fwBefore = await ruleset();
    const pathUnit = (
      await ssh('systemctl is-enabled attache-firewall.path; systemctl is-active attache-firewall.path')
    )
      .trim()
      .replace(/\n/g, ' ');
    const replaceConfig = [
      'const fs = require("node:fs");',
      `const p = "${guestConfig}";`,
      'const c = JSON.parse(fs.readFileSync(p, "utf8"));',
      `c.firewall.sshFrom.push("${addedSshFrom}");`,
      'const t = p + "." + process.pid + ".tmp";',
      'const fd = fs.openSync(t, "wx", 0o600);',
      'fs.writeSync(fd, JSON.stringify(c, null, 2) + "\\n");',
      'fs.fsyncSync(fd);',
      'fs.closeSync(fd);',
      'fs.renameSync(t, p);',
    ].join(' ');
    const replacedAt = Date.now();
    await ssh(`cd / && runuser -u attache -- node -e '${replaceConfig}'`);
    let fwAfter = fwBefore;
    while (!fwAfter.includes(addedSshFrom) && Date.now() - replacedAt < 90_000) {
      await guestConsole.waitFor(/./, 2000, guestConsole.lines.length).catch(() => undefined);
      fwAfter = await ruleset();
    }
    const followed = fwAfter.includes(addedSshFrom);
    // The reload restarts the unit: a new run, as attache again (a job still running shows as
    // activating: waited for with the same deadline).
    let reloadRun = await firewallRun();
    while (!firewallMadeByAttache(reloadRun) && Date.now() - replacedAt < 90_000) {
      await guestConsole.waitFor(/./, 2000, guestConsole.lines.length).catch(() => undefined);
      reloadRun = await firewallRun();
    }
    check(
      'a replaced config re-applies the firewall at once (attache-firewall.path, under systemd)',
      pathUnit === 'enabled active' &&
        !fwBefore.includes(addedSshFrom) &&
        followed &&
        fwAfter.includes('10.0.2.0/24'),
      `path unit ${pathUnit}; before: ${sshRule(fwBefore)}; after ${seconds(Date.now() - replacedAt)}: ${sshRule(fwAfter)}`,
    );
    check(
      'the reload made it as attache too',
      firewallMadeByAttache(reloadRun),
      reloadRun.replace(/\n/g, '; '),
    );
    if (!followed || !firewallMadeByAttache(reloadRun)) await firewallJournal();

    // 5. Reboot keeps the cache: readings stored after the sync survive and are uploaded after it.
    simulator.stop();
    let before = (await status()).backlog.records;
    for (let i = 0; before === 0 && i < 5; i++) {
      await simulator.sendReading();
      await guestConsole.waitFor(/./, 3000, guestConsole.lines.length).catch(() => undefined);
      before = (await status()).backlog.records;
    }
    const rebootMark = guestConsole.lines.length;
    await ssh('systemctl reboot').catch(() => undefined);
    const rebootAt = Date.now();
    await guestConsole.waitFor(/Booting Linux|Linux version/, 300_000, rebootMark);
    await sshReady();
    const again = await serviceReady(ready.bootId);
    say(
      `# reboot: ready at ${seconds(again.uptime * 1000)} of guest uptime, ${seconds(Date.now() - rebootAt)} wall`,
    );
    await bootAnalysis();
    await setClock();
    const fwRebooted = await ruleset();
    const rebootRun = await firewallRun();
    check(
      'after the reboot the firewall is made from the replaced config, as attache',
      fwRebooted.includes(addedSshFrom) && firewallMadeByAttache(rebootRun),
      `${sshRule(fwRebooted)}; ${rebootRun.replace(/\n/g, '; ')}`,
    );
    if (!fwRebooted.includes(addedSshFrom) || !firewallMadeByAttache(rebootRun)) await firewallJournal();
    const after = (await status()).backlog.records;
    check(
      'the cache survived the reboot',
      before > 0 && after >= before,
      `${before} records before, ${after} after`,
    );
    // 6. The technician's root commands whose data-directory part runs as attache in a child process
    // under setpriv (Debian's Node refuses id changes in a running process): cache export with the
    // gateway running and stopped, cache import, files export; the data directory stays attache's.
    const onBox = '--config /var/lib/attache/config/config.json';
    const keys = (
      await ssh(
        `k=$(mktemp -d) && node -e 'const c = require("node:crypto"); const fs = require("node:fs"); const p = c.generateKeyPairSync("ec", { namedCurve: "P-256" }); fs.writeFileSync(process.argv[1] + "/r.pem", p.privateKey.export({ type: "pkcs8", format: "pem" })); fs.writeFileSync(process.argv[1] + "/r.pub", p.publicKey.export({ type: "spki", format: "pem" }));' "$k" && echo "$k"`,
      )
    ).trim();
    const asRoot = (command) => ssh(`cd / && ${command} 2>&1; echo "rc=$?"`);
    const technician = [
      await asRoot(`attache cache export --out ${keys}/running.attache --recipient ${keys}/r.pub ${onBox}`),
      await ssh('systemctl stop attache && echo stopped'),
      await asRoot(`attache cache export --out ${keys}/stopped.attache --recipient ${keys}/r.pub ${onBox}`),
      await asRoot(`attache cache import ${keys}/stopped.attache --key ${keys}/r.pem ${onBox}`),
      await asRoot(`attache files export --out ${keys}/files ${onBox}`),
      await ssh(
        `stat -c '%U %a' ${keys}/stopped.attache; echo "not attache's: $(find /var/lib/attache/gateway ! -user attache | wc -l)"`,
      ),
    ].join('');
    await ssh('systemctl start attache');
    check(
      "the technician's root commands run their data-directory part as attache (export running and stopped, import, files export)",
      (technician.match(/rc=0/g) ?? []).length === 4 &&
        /^root 600$/m.test(technician) &&
        /not attache's: 0/.test(technician),
      technician.trim().replace(/\n/g, '; '),
    );
    await ssh(`grep -q ${brokerName} /etc/hosts || echo "${brokerGuestIp} ${brokerName}" >> /etc/hosts`);
    const count = dashboard.messages.length;
    await ssh('cd / && runuser -u attache -- attache sync --json || true');
    await dashboard.waitFor(count + 1, 60_000).catch(() => undefined);
    check('the cached readings were uploaded after the reboot', dashboard.messages.length > count);
    const restarts = (
      await ssh(
        'systemctl show -p NRestarts --value attache; systemctl is-failed attache-provision attache || true',
      )
    ).trim();
    say(`# NRestarts / failed units: ${restarts.replace(/\n/g, ' ')}`);
    await ssh('systemctl poweroff').catch(() => undefined);
    await Promise.race([once(qemu, 'exit'), new Promise((r) => setTimeout(r, 120_000))]);
    say(
      `# boot-to-ready ${seconds(bootToReady)}, RSS ${Math.round(Number(rss) / 1024)} MB, total ${seconds(Date.now() - started)}`,
    );
  } catch (err) {
    check('test ran to the end', false, err.message);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!process.env.ATTACHE_KEEP_TEST) rmSync(work, { recursive: true, force: true });
  }
  const failed = results.filter((ok) => !ok).length;
  say(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

await main();
