import { askSerialPort } from '@attache/adapter-rs232';

/** A device that answers when asked, and the config block that reads it. */
export interface AskedDevice {
  protocol: string;
  setting: { baudRate: number; dataBits: 8; parity: 'none' | 'even'; stopBits: 1 };
  snippet: Record<string, unknown>;
}

/** A protocol the probe may ask: its opening request, the settings to try, and how it recognizes a reply. */
interface Askable {
  protocol: string;
  kind: string;
  probeRequest: Buffer;
  probeSettings: readonly AskedDevice['setting'][];
  recognizes(bytes: Buffer): boolean;
}

/** How long to wait for each answer, ms. */
const answerMs = 1000;

/**
 * Sends each polled protocol's opening request (MEDIBUS ICC; an IntelliVue Association Request) at
 * its usual settings and returns the
 * first device that answers it correctly, or undefined. Only with `attache probe --ask`: a probe
 * otherwise transmits nothing.
 */
export async function askPolledDevices(path: string): Promise<AskedDevice | undefined> {
  const [medibus, intellivue] = await Promise.all([
    import('@attache/medibus'),
    import('@attache/intellivue'),
  ]);
  const askable: Askable[] = [
    { protocol: 'Dräger MEDIBUS', kind: 'medibus', ...medibus },
    { protocol: 'Philips IntelliVue Data Export', kind: 'intellivue', ...intellivue },
  ];
  for (const p of askable) {
    for (const setting of p.probeSettings) {
      const bytes = await askSerialPort({ path, setting, request: p.probeRequest, ms: answerMs });
      if (!p.recognizes(bytes)) continue;
      const port = { path, ...setting };
      return {
        protocol: p.protocol,
        setting,
        snippet: { id: 'device-1', adapter: 'rs232', port, format: { kind: p.kind } },
      };
    }
  }
  return undefined;
}
